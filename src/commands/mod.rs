//! Commands people send to the bridge: Matrix users in their direct chat with the bridge bot,
//! XMPP users as messages to the component. One clap command tree: the doc comments are the
//! help text, and the parser is unit-tested.

pub mod admin;
pub mod user;
