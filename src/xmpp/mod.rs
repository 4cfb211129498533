//! The XMPP side: the XEP-0114 component connection (with reconnect), the handling of stanzas
//! addressed to the component and the escaped addresses under it, and stanza building.
//! xmpp-parsers and tokio-xmpp types stay inside this module.

pub mod access;
pub mod adhoc;
pub mod assistant;
pub mod connection;
pub mod content;
pub mod depth;
pub mod dispatch;
pub mod error;
pub mod gateway;
pub mod hosted_muc;
pub mod hosted_muc_out;
pub mod inbound;
pub mod linked_muc;
pub mod mam;
pub mod out;
pub mod outbound;
pub mod reply;
pub mod search;
pub mod xep;
pub mod xml_text;
