//! The protocol-neutral core: identifiers, identity mapping, the actions the bridge performs
//! and the outbox's retry rules. Nothing in here knows ruma, xmpp-parsers, sqlx or axum.

pub mod access;
pub mod action;
pub mod adopt;
pub mod backoff;
pub mod bridge_info;
pub mod budget;
pub mod chat_turn;
pub mod coalesce;
pub mod conversation;
pub mod delay;
pub mod ids;
pub mod inbound;
pub mod journal;
pub mod link_watch;
pub mod mapping;
pub mod mentions;
pub mod menus;
pub mod metrics;
pub mod muc_features;
pub mod notify_choice;
pub mod outbox;
pub mod phone;
pub mod phone_presence;
pub mod picture;
pub mod presence;
pub mod reactions;
pub mod refusal;
pub mod room;
pub mod setup;
pub mod size;
pub mod txn_gaps;
pub mod watch;
pub mod xmpp_in;
