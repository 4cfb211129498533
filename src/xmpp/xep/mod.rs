//! Typed payloads (xso) for the XEPs xmpp-parsers 0.23 lacks, one file per XEP, so that content
//! is read and written as values instead of hand-built elements. Reading is lenient (unknown
//! attributes and children are ignored), as with any client's extensions.

pub mod fallback;
pub mod gateway;
pub mod hints;
pub mod reference;
pub mod reply;
pub mod retract;
pub mod search;
