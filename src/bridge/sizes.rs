//! The size checks of messages at intake (refused while the sender is there to be told) and
//! the HTML decision at delivery, over `core::size` and the configured limits.

use crate::bridge::Bridge;
use crate::core::action::Text;
use crate::core::ids::{BareJid, MatrixUserId};
use crate::core::size::{Fit, MatrixText, fit_matrix, xmpp_stanza_bytes};

/// The longest sender id, for checks where the sender is not known (the HTML decision).
const LONGEST_SENDER: &str = "@_______________________________________________________________________________________________________________________________________________________________________________________________________________________________________________________________:x";

impl Bridge {
    /// Why `body` is refused as longer than the bridge's body limit (`limits.max_message_bytes`).
    pub(in crate::bridge) fn body_too_long(&self, body: &str) -> Option<String> {
        let max = self.current_config().limits.max_message_bytes();
        (body.len() > max)
            .then(|| format!("Message too long: {} bytes; the bridge carries at most {max} bytes.", body.len()))
    }

    /// Why `text`, to be sent by `sender` to Matrix, is refused for its size: longer than the
    /// bridge's body limit, or too large for the homeserver even without its HTML (which
    /// delivery drops when only the plain body fits). `None`: it is carried.
    pub(in crate::bridge) fn too_large_for_matrix(
        &self,
        text: &Text,
        sender: &MatrixUserId,
        reply: bool,
        replaces: bool,
    ) -> Option<String> {
        if let Some(why) = self.body_too_long(&text.body) {
            return Some(why);
        }
        let limits = self.current_config().limits.clone();
        let html = self.links_html(text);
        let t = MatrixText { body: &text.body, kind: text.kind, html: html.as_deref(), reply, replaces };
        match fit_matrix(&t, &sender.to_string(), limits.matrix_event_bytes) {
            Fit::Whole | Fit::WithoutHtml => None,
            Fit::TooLarge { bytes } => Some(format!(
                "Message too large for Matrix: it would make an event of about {bytes} bytes; the homeserver takes at most {} bytes.",
                limits.matrix_event_bytes
            )),
        }
    }

    /// Why `body` from `from` to `to` on XMPP is refused for its size: longer than the
    /// bridge's body limit, or a stanza larger than the XMPP server takes. `None`: it is carried.
    pub(in crate::bridge) fn too_large_for_xmpp(&self, body: &str, from: &BareJid, to: &BareJid) -> Option<String> {
        let limits = self.current_config().limits.clone();
        let max = limits.max_message_bytes();
        if body.len() > max {
            return Some(format!("it is {} bytes, longer than the bridge's limit of {max} bytes", body.len()));
        }
        let bytes = xmpp_stanza_bytes(body, None, &from.to_string(), &to.to_string());
        (bytes > limits.xmpp_stanza_bytes).then(|| {
            format!(
                "it would make a stanza of about {bytes} bytes; the XMPP server takes at most {} bytes",
                limits.xmpp_stanza_bytes
            )
        })
    }

    /// The `formatted_body` of a text to Matrix, if the event still fits the homeserver's limit
    /// with it (otherwise the plain body goes alone). `replaces`: sent as a correction, which
    /// carries the text twice.
    pub(in crate::bridge) fn html_fitting(&self, text: &Text, replaces: bool) -> Option<String> {
        let html = self.links_html(text)?;
        let limit = self.current_config().limits.matrix_event_bytes;
        let t = MatrixText { body: &text.body, kind: text.kind, html: Some(&html), reply: true, replaces };
        match fit_matrix(&t, LONGEST_SENDER, limit) {
            Fit::Whole => Some(html),
            Fit::WithoutHtml | Fit::TooLarge { .. } => {
                tracing::info!(bytes = text.body.len(), "a text is sent without its HTML, which would not fit");
                None
            }
        }
    }
}
