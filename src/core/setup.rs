//! Why a module (missed calls, SMS) cannot start or reload with the configuration it was given:
//! which key or file, and the underlying reason. A library error, so that `anyhow` stays at the
//! edge (`app.rs`, `main.rs`).

use std::error::Error;
use std::fmt;

type Reason = Box<dyn Error + Send + Sync>;

/// A start-up or reload failure: what was being set up, and why it failed. The reason is part
/// of the message (admins see it in the control room's `reload` answer and on stderr).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The configuration says something that cannot work; the text names the key.
    #[error("{0}")]
    Invalid(String),
    /// Setting up `context` failed for an underlying reason.
    #[error("{context}: {reason}")]
    Failed { context: String, reason: Reason },
}

impl SetupError {
    pub fn new(context: impl Into<String>, reason: impl Into<Reason>) -> Self {
        Self::Failed { context: context.into(), reason: reason.into() }
    }

    /// A failure that is only a message (no underlying error), e.g. a missing key.
    pub fn msg(message: impl fmt::Display) -> Self {
        Self::Invalid(message.to_string())
    }
}

/// `.setup("key")` on a `Result`: the error becomes a [`SetupError`] naming what was set up.
pub trait SetupContext<T> {
    fn setup(self, context: impl Into<String>) -> Result<T, SetupError>;
    fn with_setup(self, context: impl FnOnce() -> String) -> Result<T, SetupError>;
}

impl<T, E: Into<Reason>> SetupContext<T> for Result<T, E> {
    fn setup(self, context: impl Into<String>) -> Result<T, SetupError> {
        self.map_err(|e| SetupError::new(context, e))
    }

    fn with_setup(self, context: impl FnOnce() -> String) -> Result<T, SetupError> {
        self.map_err(|e| SetupError::new(context(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_key_and_the_reason() {
        let e = "x".parse::<u8>().setup("sms.limit").unwrap_err();
        assert_eq!(e.to_string(), "sms.limit: invalid digit found in string");
    }
}
