//! Missed-call notifications (tracker issue 5): a library the bridge starts with itself as the
//! [`service::CallsHost`] (`bridge::calls`).
//!
//! Its settings are its section of the config file ([`config`]), handed over by the caller.
//! Telephony events come in through a signed JSON webhook ([`webhook`]) or an Asterisk AMI
//! connection ([`ami`]), both normalised to [`event::CallEvent`]. A [`model::CallTracker`] folds
//! them into one [`model::CallSummary`] per call; [`rules`] decides who is told and why;
//! [`mail`] renders the notices and [`mailer`] sends the e-mails; the caller's name and card come
//! from the contact store (`crate::contacts`). [`service`] runs the module: it stores the events,
//! and for each finished call writes the journal ([`journal`]) and the notices' outbox rows
//! ([`notices`]) in one transaction, with the settings in effect ([`live`], [`settings`]); local
//! times and midnights come from [`zone`]. [`phone`] tells the bridge who is on the phone
//! (presence from the phone) and which calls ring at whom (pickup alerts, [`pickup`]).
//! See DESIGN.md, section "Missed calls".

pub mod ami;
pub mod chat_mail;
pub mod config;
pub mod event;
mod journal;
pub mod live;
pub mod mail;
pub mod mailer;
pub mod model;
mod notices;
pub mod phone;
pub mod pickup;
pub mod rules;
pub mod service;
pub mod settings;
pub mod webhook;
pub mod zone;
