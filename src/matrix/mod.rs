//! The Matrix side: the appservice API the homeserver pushes to (inbound), client-server calls
//! with identity assertion (outbound, behind the bridge's `MatrixOut` port), the registration file, and the translation of Matrix
//! events into the core's terms. ruma types stay inside this module.

pub mod appservice;
pub mod client;
pub mod events;
pub mod out;
pub mod registration;
