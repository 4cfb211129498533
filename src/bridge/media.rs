//! Files between the networks, for every kind of conversation: a file an XMPP user sent by
//! URL is fetched (`fetch.rs`) and posted on Matrix, its URL as text when it cannot be carried; a
//! Matrix file becomes a link the bridge serves (`http/`), saved with the accepting transaction.

use crate::bridge::Bridge;
use crate::core::action::{Attachment, Text};
use crate::core::ids::{MatrixUserId, RoomId};
use crate::core::inbound::FileRef;
use crate::matrix::client::{MatrixError, Relations};
use crate::store::{MediaLink, StoreTx};

/// A body longer than this gets no pills (its HTML is the links' only).
const MAX_PILL_BODY: usize = 8 * 1024;

/// A random, unguessable token (128 bits, hex).
pub(in crate::bridge) fn new_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

impl Bridge {
    /// Post what an XMPP user sent (text, or a file by URL) as `user` in `room`; returns the
    /// event id of the message (the file's, when one was carried).
    pub(in crate::bridge) async fn post_content(
        &self,
        id: i64,
        room: &RoomId,
        user: &MatrixUserId,
        text: &Text,
        relations: Relations<'_>,
        file: Option<&Attachment>,
    ) -> Result<String, MatrixError> {
        let txn = self.txn_id(id);
        let html = self.html_fitting(text, relations.replaces.is_some());
        let html = html.as_deref();
        let Some(file) = file else {
            return self.matrix.send_message(room, user, text, html, relations, &txn).await;
        };
        let uploaded = match self.fetch_to_matrix(user, &file.url).await {
            Ok(u) => u,
            Err(why) => {
                // Never lost: the URL goes as text.
                tracing::info!(url = file.url, why = %why, "cannot carry a file; sending its URL");
                return self.matrix.send_message(room, user, text, html, relations, &txn).await;
            }
        };
        let event = self.matrix.send_file(room, user, &uploaded, relations, &txn).await?;
        let caption = text.body.trim();
        if !caption.is_empty() && caption != file.url {
            self.matrix.send_message(room, user, text, html, Relations::default(), &format!("{txn}-c")).await?;
        }
        Ok(event)
    }

    /// Like `post_content`, for a message that mentions people (`names`: each one's Matrix id and
    /// the name the text calls them by): a text gets their names as pills in its HTML.
    #[allow(clippy::too_many_arguments)]
    pub(in crate::bridge) async fn post_mentioning(
        &self,
        id: i64,
        room: &RoomId,
        user: &MatrixUserId,
        text: &Text,
        relations: Relations<'_>,
        file: Option<&Attachment>,
        names: &[(MatrixUserId, String)],
    ) -> Result<String, MatrixError> {
        if names.is_empty() || file.is_some() || text.body.len() > MAX_PILL_BODY {
            return self.post_content(id, room, user, text, relations, file).await;
        }
        let names: Vec<(String, String)> = names.iter().map(|(u, n)| (n.clone(), u.to_string())).collect();
        let html = crate::core::mentions::pills_html(&text.body, &names)
            .or_else(|| self.html_fitting(text, relations.replaces.is_some()));
        self.matrix.send_message(room, user, text, html.as_deref(), relations, &self.txn_id(id)).await
    }

    /// A Matrix file in a chat: a link the bridge serves, saved in the transaction. `None`
    /// when the file is larger than the bridge carries.
    pub(in crate::bridge) async fn media_link(
        &self,
        tx: &mut StoreTx,
        room: &RoomId,
        file: &FileRef,
    ) -> crate::store::Result<Option<Attachment>> {
        let max = self.current_config().media.max_bytes;
        if file.size.is_some_and(|s| s > max) {
            return Ok(None);
        }
        let token = new_token();
        let link = MediaLink {
            token: token.clone(),
            mxc: file.mxc.clone(),
            name: file.name.clone(),
            mimetype: file.mimetype.clone(),
            size: file.size,
            room: room.clone(),
            event_id: file.event_id.clone(),
            created_at: crate::store::now_ms(),
        };
        tx.save_media(&link).await?;
        let url = media_url(&self.current_config().media_base_url(), &token, &file.name);
        Ok(Some(Attachment { url, name: Some(file.name.clone()), mimetype: file.mimetype.clone(), size: file.size }))
    }
}

/// The link XMPP clients fetch; the file name is its last path segment, so clients save the file
/// under its own name.
fn media_url(base: &str, token: &str, name: &str) -> String {
    // Form encoding (`+` for a space) is for query strings; a path segment keeps only RFC 3986's
    // unreserved characters as they are.
    const SEGMENT: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
    format!("{base}/media/{token}/{}", percent_encoding::utf8_percent_encode(name, SEGMENT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_and_distinct() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }

    #[test]
    fn file_names_are_path_segments() {
        // In a path `+` is a plus: a space written as `+` would rename the file.
        assert_eq!(
            media_url("https://b.example", "t0", "my notes+1 ü/x?.txt"),
            "https://b.example/media/t0/my%20notes%2B1%20%C3%BC%2Fx%3F.txt"
        );
    }
}
