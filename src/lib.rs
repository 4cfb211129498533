//! ucbridge: a Matrix application service and XMPP component that carries the chat rules of
//! a unified-communications suite between Matrix and XMPP users. See `ARCHITECTURE.md`.

pub mod app;
pub mod bridge;
pub mod calls;
pub mod chatbot;
pub mod commands;
pub mod config;
pub mod contacts;
pub mod core;
pub mod http;
pub mod links;
pub mod matrix;
pub mod sms;
pub mod store;
pub mod xmpp;
