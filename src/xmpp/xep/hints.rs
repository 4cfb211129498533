//! XEP-0334 Message Processing Hints: `<store/>`, so that servers archive a message without a
//! body (reactions, retractions).

use xmpp_parsers::message::MessagePayload;
use xso::{AsXml, FromXml};

pub const NS: &str = "urn:xmpp:hints";

/// Ask the server to store the message (in MAM and offline storage).
#[derive(FromXml, AsXml, PartialEq, Eq, Debug, Clone)]
#[xml(namespace = NS, name = "store")]
pub struct Store;

impl MessagePayload for Store {}
