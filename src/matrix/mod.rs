//! The Matrix side: the appservice API the homeserver pushes to (inbound), client-server calls
//! with identity assertion (outbound), the registration file, and the translation of Matrix
//! events into the core's terms. ruma types stay inside this module.

pub mod appservice;
pub mod client;
pub mod events;
pub mod registration;
