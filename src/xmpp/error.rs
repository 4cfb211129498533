//! Why the component connection could not be made or ended. Each error says which step failed;
//! the text of the underlying error is kept (not the error itself) because one loss is reported
//! to every sender waiting on it.

/// A failure of the component connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("cannot resolve {server}: {reason}")]
    Resolve { server: String, reason: String },
    #[error("{0} resolves to no address")]
    NoAddress(String),
    #[error("component JID {jid}: {reason}")]
    BadJid { jid: String, reason: String },
    #[error("connect: {0}")]
    Connect(String),
    #[error("handshake: {0}")]
    Handshake(String),
    #[error("server refused the component (wrong secret or domain?): {0}")]
    Refused(String),
    #[error("server sent no stream id")]
    NoStreamId,
    #[error("server closed the connection during the handshake")]
    ClosedInHandshake,
    #[error("stream closed")]
    StreamClosed,
    #[error("server closed the stream")]
    ServerClosed,
    #[error("stream error from server: {0}")]
    StreamError(String),
    /// Reading or writing the socket failed.
    #[error("{0}")]
    Io(String),
    /// The connection went away before the server confirmed the stanza.
    #[error("XMPP connection lost{0}")]
    Lost(&'static str),
}

impl Error {
    pub fn io(e: impl std::fmt::Display) -> Self {
        Error::Io(e.to_string())
    }
}
