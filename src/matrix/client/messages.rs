//! Sending to rooms as the bot or a ghost: texts (with the `formatted_body` the bridge made of
//! their links), files, reactions, redactions and notices.

use ruma::api::client::message::send_message_event;
use ruma::events::room::message::RoomMessageEventContent;
use ruma::{OwnedEventId, OwnedTransactionId};

use crate::core::action::{Text, TextKind};
use crate::core::ids::{MatrixUserId, RoomId};

use ruma::events::reaction::ReactionEventContent;
use ruma::events::relation::Annotation;

use super::{MatrixClient, MatrixError, Relations, UploadedFile, file_content, to_ruma_room, with_relations};

impl MatrixClient {
    /// Send a text as `user`, with `html` as its `formatted_body` if given. `txn_id` makes
    /// retries idempotent.
    pub async fn send_text(
        &self,
        room: &RoomId,
        user: &MatrixUserId,
        text: &Text,
        html: Option<&str>,
        txn_id: &str,
    ) -> Result<String, MatrixError> {
        self.send_message(room, user, text, html, Relations::default(), txn_id).await
    }

    /// Send a text as `user`, as a reply to an event or as the correction (`m.replace`) of one.
    pub async fn send_message(
        &self,
        room: &RoomId,
        user: &MatrixUserId,
        text: &Text,
        html: Option<&str>,
        relations: Relations<'_>,
        txn_id: &str,
    ) -> Result<String, MatrixError> {
        let content = match (text.kind, html) {
            (TextKind::Text, None) => RoomMessageEventContent::text_plain(&text.body),
            (TextKind::Notice, None) => RoomMessageEventContent::notice_plain(&text.body),
            (TextKind::Emote, None) => RoomMessageEventContent::emote_plain(&text.body),
            (TextKind::Text, Some(html)) => RoomMessageEventContent::text_html(&text.body, html),
            (TextKind::Notice, Some(html)) => RoomMessageEventContent::notice_html(&text.body, html),
            (TextKind::Emote, Some(html)) => RoomMessageEventContent::emote_html(&text.body, html),
        };
        let content = with_relations(content, relations)?;
        self.send_event(room, user, ruma::events::MessageLikeEventType::RoomMessage, &content, txn_id).await
    }

    /// Post an uploaded file as `m.image`, `m.video`, `m.audio` or `m.file` (by its type).
    pub async fn send_file(
        &self,
        room: &RoomId,
        user: &MatrixUserId,
        file: &UploadedFile,
        relations: Relations<'_>,
        txn_id: &str,
    ) -> Result<String, MatrixError> {
        let content = with_relations(file_content(file), relations)?;
        self.send_event(room, user, ruma::events::MessageLikeEventType::RoomMessage, &content, txn_id).await
    }

    /// React to `target` with `key` (an `m.annotation`), as `user`.
    pub async fn send_reaction(
        &self,
        room: &RoomId,
        user: &MatrixUserId,
        target: &str,
        key: &str,
        txn_id: &str,
    ) -> Result<String, MatrixError> {
        let target = OwnedEventId::try_from(target).map_err(|e| MatrixError::Protocol(format!("{target}: {e}")))?;
        let content = ReactionEventContent::new(Annotation::new(target, key.to_owned()));
        self.send_event(room, user, ruma::events::MessageLikeEventType::Reaction, &content, txn_id).await
    }

    /// Redact an event, as `user` (their own, or any with the power to).
    pub async fn redact(
        &self,
        room: &RoomId,
        user: &MatrixUserId,
        event_id: &str,
        txn_id: &str,
    ) -> Result<(), MatrixError> {
        let event = OwnedEventId::try_from(event_id).map_err(|e| MatrixError::Protocol(format!("{event_id}: {e}")))?;
        let request = ruma::api::client::redact::redact_event::v3::Request::new(
            to_ruma_room(room)?,
            event,
            OwnedTransactionId::from(txn_id),
        );
        self.call(request, Some(user)).await.map(|_| ())
    }

    async fn send_event(
        &self,
        room: &RoomId,
        user: &MatrixUserId,
        kind: ruma::events::MessageLikeEventType,
        content: &impl serde::Serialize,
        txn_id: &str,
    ) -> Result<String, MatrixError> {
        let raw = serde_json::value::to_raw_value(content).map_err(|e| MatrixError::Protocol(e.to_string()))?;
        let request = send_message_event::v3::Request::new_raw(
            to_ruma_room(room)?,
            OwnedTransactionId::from(txn_id),
            kind,
            ruma::serde::Raw::from_json(raw),
        );
        Ok(self.call(request, Some(user)).await?.event_id.to_string())
    }

    /// A notice with an optional HTML body, optionally as a reply to `reply_to`.
    pub async fn send_notice(
        &self,
        room: &RoomId,
        user: &MatrixUserId,
        body: &str,
        html: Option<&str>,
        reply_to: Option<&str>,
        txn_id: &str,
    ) -> Result<(), MatrixError> {
        let content = match html {
            Some(html) => RoomMessageEventContent::notice_html(body, html),
            None => RoomMessageEventContent::notice_plain(body),
        };
        let content = with_relations(content, Relations { reply_to, replaces: None })?;
        self.send_event(room, user, ruma::events::MessageLikeEventType::RoomMessage, &content, txn_id).await.map(|_| ())
    }
}
