//! Missed-call notifications (tracker issue 5), the pure core.
//!
//! Telephony events come in through a signed JSON webhook ([`webhook`]) or an Asterisk AMI
//! connection ([`ami`]), both normalised to [`event::CallEvent`]. A [`model::CallTracker`] folds
//! them into one [`model::CallSummary`] per call; [`rules`] decides who is told and why;
//! [`mail`] renders the e-mail; [`contacts`] finds the caller's name and card. Only the AMI
//! client does I/O; wiring into the running bridge (storage, HTTP route, outbox) lives elsewhere.
//! See DESIGN.md, section "Missed calls".

pub mod ami;
pub mod contacts;
pub mod event;
pub mod import;
pub mod mail;
pub mod model;
pub mod rules;
pub mod service;
pub mod settings;
pub mod webhook;
