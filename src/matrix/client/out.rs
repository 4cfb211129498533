//! [`MatrixOut`] over the client-server API: every call the bridge makes, as the bot or a ghost,
//! in the trait's order: sending to rooms (texts with the `formatted_body` the bridge made of
//! their links, files, reactions, redactions, notices); users as the homeserver knows them
//! (registering ghosts, presence, typing, read receipts, display names and avatars, media upload
//! and download); rooms (creating direct chats and group rooms with the bridge's creation marker,
//! membership, power levels, topic and name, aliases, reading room state and events).

use std::time::Duration;

use ruma::api::client::account::register::{self, LoginType};
use ruma::api::client::alias::get_alias;
use ruma::api::client::membership::{invite_user, join_room_by_id, kick_user, leave_room};
use ruma::api::client::message::send_message_event;
use ruma::api::client::presence::{get_presence, set_presence};
use ruma::api::client::profile::set_display_name;
use ruma::api::client::receipt::create_receipt;
use ruma::api::client::room::{Visibility, create_room};
use ruma::api::client::state::{get_state_event_for_key, send_state_event};
use ruma::api::client::typing::create_typing_event;
use ruma::events::reaction::ReactionEventContent;
use ruma::events::relation::Annotation;
use ruma::events::room::message::RoomMessageEventContent;
use ruma::{OwnedEventId, OwnedTransactionId};

use super::{
    MatrixClient, MatrixError, Relations, UploadedFile, file_content, from_ruma_presence, to_ruma_presence,
    to_ruma_room, to_ruma_user, with_relations,
};
use crate::core::action::{Text, TextKind};
use crate::core::bridge_info::BridgeInfo;
use crate::core::ids::{MatrixUserId, RoomId};
use crate::core::presence::{MatrixState, Presence};
use crate::core::room::MODERATOR_LEVEL;
use crate::matrix::out::MatrixOut;

/// State event type of the marker the bot puts into every group room it creates.
pub const CREATION_MARKER: &str = "org.ucbridge.creation";

/// Who made a room, as far as the bridge can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomOrigin {
    /// The room's creator (`m.room.create`).
    pub creator: String,
    /// The bridge's creation marker (`by`: the outbox action that created it), if any.
    pub marker: Option<String>,
}

#[async_trait::async_trait]
impl MatrixOut for MatrixClient {
    // Sending.
    /// Send a text as `user`, with `html` as its `formatted_body` if given. `txn_id` makes
    /// retries idempotent.
    async fn send_text(
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
    async fn send_message(
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
        let sent_at = relations.sent_at;
        let content = with_relations(content, relations)?;
        self.send_event(room, user, ruma::events::MessageLikeEventType::RoomMessage, &content, sent_at, txn_id).await
    }

    /// Post an uploaded file as `m.image`, `m.video`, `m.audio` or `m.file` (by its type).
    async fn send_file(
        &self,
        room: &RoomId,
        user: &MatrixUserId,
        file: &UploadedFile,
        relations: Relations<'_>,
        txn_id: &str,
    ) -> Result<String, MatrixError> {
        let content = with_relations(file_content(file), relations)?;
        let kind = ruma::events::MessageLikeEventType::RoomMessage;
        self.send_event(room, user, kind, &content, relations.sent_at, txn_id).await
    }

    /// React to `target` with `key` (an `m.annotation`), as `user`.
    async fn send_reaction(
        &self,
        room: &RoomId,
        user: &MatrixUserId,
        target: &str,
        key: &str,
        txn_id: &str,
    ) -> Result<String, MatrixError> {
        let target = OwnedEventId::try_from(target).map_err(|e| MatrixError::Protocol(format!("{target}: {e}")))?;
        let content = ReactionEventContent::new(Annotation::new(target, key.to_owned()));
        self.send_event(room, user, ruma::events::MessageLikeEventType::Reaction, &content, None, txn_id).await
    }

    /// Redact an event, as `user` (their own, or any with the power to).
    async fn redact(
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

    /// A notice with an optional HTML body, optionally as a reply to `reply_to`.
    async fn send_notice(
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
        let content = with_relations(content, Relations { reply_to, ..Relations::default() })?;
        self.send_event(room, user, ruma::events::MessageLikeEventType::RoomMessage, &content, None, txn_id)
            .await
            .map(|_| ())
    }

    // Users, presence, media.
    /// Register a ghost; an existing account is fine.
    async fn register_ghost(&self, user: &MatrixUserId) -> Result<(), MatrixError> {
        let mut request = register::v3::Request::new();
        request.username = Some(user.localpart().to_owned());
        request.login_type = Some(LoginType::ApplicationService);
        request.inhibit_login = true;
        match self.call(request, None).await {
            Ok(_) => Ok(()),
            Err(e) if e.errcode() == Some("M_USER_IN_USE") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Set a ghost's presence and status message.
    async fn set_presence(
        &self,
        user: &MatrixUserId,
        state: MatrixState,
        status_msg: Option<String>,
    ) -> Result<(), MatrixError> {
        let mut request = set_presence::v3::Request::new(to_ruma_user(user)?, to_ruma_presence(state));
        request.status_msg = status_msg;
        self.call(request, Some(user)).await.map(|_| ())
    }

    /// A user's presence, read as `viewer` (who must share a room with them).
    async fn presence(&self, user: &MatrixUserId, viewer: &MatrixUserId) -> Result<Presence, MatrixError> {
        let response = self.call(get_presence::v3::Request::new(to_ruma_user(user)?), Some(viewer)).await?;
        Ok(Presence::from_matrix(from_ruma_presence(&response.presence), response.status_msg.as_deref()))
    }

    /// Start (with a timeout) or stop a user's typing notification in a room.
    async fn set_typing(&self, room: &RoomId, user: &MatrixUserId, typing: bool) -> Result<(), MatrixError> {
        let state = if typing {
            create_typing_event::v3::Typing::Yes(create_typing_event::v3::TypingInfo::new(Duration::from_secs(30)))
        } else {
            create_typing_event::v3::Typing::No
        };
        let request = create_typing_event::v3::Request::new(to_ruma_user(user)?, to_ruma_room(room)?, state);
        self.call(request, Some(user)).await.map(|_| ())
    }

    /// Mark an event read for `user` (an `m.read` receipt).
    async fn send_read_receipt(&self, room: &RoomId, user: &MatrixUserId, event_id: &str) -> Result<(), MatrixError> {
        let event = OwnedEventId::try_from(event_id).map_err(|e| MatrixError::Protocol(format!("{event_id}: {e}")))?;
        let request =
            create_receipt::v3::Request::new(to_ruma_room(room)?, create_receipt::v3::ReceiptType::Read, event);
        self.call(request, Some(user)).await.map(|_| ())
    }

    /// A user's display name from their profile (`None` if they have none).
    async fn displayname(&self, user: &MatrixUserId) -> Result<Option<String>, MatrixError> {
        #[allow(deprecated)] // as for set_displayname: the per-field endpoint is widely deployed
        let request = ruma::api::client::profile::get_display_name::v3::Request::new(to_ruma_user(user)?);
        Ok(self.call(request, None).await?.displayname)
    }

    async fn search_users(&self, term: &str, limit: u32) -> Result<Vec<(MatrixUserId, Option<String>)>, MatrixError> {
        let mut request = ruma::api::client::user_directory::search_users::v3::Request::new(term.to_owned());
        request.limit = limit.into();
        let response = self.call(request, None).await?;
        // A user ID the bridge's own rules refuse (a historical one) is left out, not an error.
        Ok(response
            .results
            .into_iter()
            .filter_map(|u| Some((MatrixUserId::parse(u.user_id.as_str()).ok()?, u.display_name)))
            .collect())
    }

    async fn set_displayname(&self, user: &MatrixUserId, name: &str) -> Result<(), MatrixError> {
        #[allow(deprecated)] // the generic profile-field endpoint is newer than many homeservers
        let request = set_display_name::v3::Request::new(to_ruma_user(user)?, Some(name.to_owned()));
        self.call(request, Some(user)).await.map(|_| ())
    }

    /// Upload a file as `user`; returns its `mxc://` URI.
    async fn upload(&self, user: &MatrixUserId, bytes: Vec<u8>, content_type: &str) -> Result<String, MatrixError> {
        let mut request = ruma::api::client::media::create_content::v3::Request::new(bytes);
        request.content_type = Some(content_type.to_owned());
        Ok(self.call(request, Some(user)).await?.content_uri.to_string())
    }

    async fn set_avatar_url(&self, user: &MatrixUserId, mxc: &str) -> Result<(), MatrixError> {
        #[allow(deprecated)] // as for set_displayname
        let request = ruma::api::client::profile::set_avatar_url::v3::Request::new(
            to_ruma_user(user)?,
            Some(ruma::OwnedMxcUri::from(mxc)),
        );
        self.call(request, Some(user)).await.map(|_| ())
    }

    /// A user's avatar (`mxc://` URI) from their profile, if any.
    async fn avatar_url(&self, user: &MatrixUserId) -> Result<Option<String>, MatrixError> {
        #[allow(deprecated)]
        let request = ruma::api::client::profile::get_avatar_url::v3::Request::new(to_ruma_user(user)?);
        Ok(self.call(request, None).await?.avatar_url.map(|u| u.to_string()))
    }

    /// Download a file by its `mxc://` URI (authenticated media): bytes and content type.
    async fn download(&self, mxc: &str) -> Result<(Vec<u8>, Option<String>), MatrixError> {
        let uri = ruma::OwnedMxcUri::from(mxc);
        let (server, media_id) = uri.parts().map_err(|e| MatrixError::Protocol(format!("{mxc}: {e}")))?;
        let request = ruma::api::client::authenticated_media::get_content::v1::Request::new(
            media_id.to_owned(),
            server.to_owned(),
        );
        let response = self.call(request, None).await?;
        Ok((response.file, response.content_type))
    }

    // Rooms.
    /// Create an unencrypted direct chat owned by `creator`, inviting `peer`.
    async fn create_direct_room(&self, creator: &MatrixUserId, peer: &MatrixUserId) -> Result<RoomId, MatrixError> {
        let mut request = create_room::v3::Request::new();
        request.invite = vec![to_ruma_user(peer)?];
        request.is_direct = true;
        request.preset = Some(create_room::v3::RoomPreset::TrustedPrivateChat);
        request.visibility = Visibility::Private;
        let response = self.call(request, Some(creator)).await?;
        RoomId::parse(response.room_id.as_str()).map_err(|e| MatrixError::Protocol(e.to_string()))
    }

    /// Create a group conversation as the bridge bot (which, as creator, ranks above every
    /// power level): moderators ([`MODERATOR_LEVEL`]) invite, kick and change power levels and
    /// the topic and name; `moderators` get that level right away. Returns the room ID.
    /// `marker` is recorded in the room's initial state ([`CREATION_MARKER`]): a retried
    /// creation finds its own room by it, and the bot never mistakes someone else's room behind
    /// the alias for one it made.
    #[allow(clippy::too_many_arguments)]
    async fn create_group_room(
        &self,
        name: &str,
        alias: &str,
        open: bool,
        invite: &[MatrixUserId],
        moderators: &[MatrixUserId],
        marker: &str,
    ) -> Result<RoomId, MatrixError> {
        let mut request = create_room::v3::Request::new();
        request.name = Some(name.to_owned());
        request.room_alias_name = Some(alias.to_owned());
        let state = serde_json::json!({"type": CREATION_MARKER, "state_key": "", "content": {"by": marker}});
        let state = serde_json::value::to_raw_value(&state).map_err(|e| MatrixError::Protocol(e.to_string()))?;
        request.initial_state = vec![ruma::serde::Raw::from_json(state)];
        request.invite = invite.iter().map(to_ruma_user).collect::<Result<_, _>>()?;
        request.preset =
            Some(if open { create_room::v3::RoomPreset::PublicChat } else { create_room::v3::RoomPreset::PrivateChat });
        request.visibility = Visibility::Private;
        let response = self.call(request, None).await?;
        let room = RoomId::parse(response.room_id.as_str()).map_err(|e| MatrixError::Protocol(e.to_string()))?;
        self.update_power_levels(&room, |pl| {
            for key in ["invite", "kick", "ban", "redact", "state_default"] {
                pl[key] = serde_json::json!(MODERATOR_LEVEL);
            }
            for event in ["m.room.power_levels", "m.room.topic", "m.room.name"] {
                pl["events"][event] = serde_json::json!(MODERATOR_LEVEL);
            }
            for m in moderators {
                pl["users"][m.to_string().as_str()] = serde_json::json!(MODERATOR_LEVEL);
            }
        })
        .await?;
        Ok(room)
    }

    /// Create the room of a linked MUC as the bot: public (anyone who knows the alias may
    /// join, as anyone may join the MUC), under the alias in the bridge's namespace.
    async fn create_linked_room(&self, name: &str, alias_localpart: &str) -> Result<RoomId, MatrixError> {
        let mut request = create_room::v3::Request::new();
        request.name = Some(name.to_owned());
        request.room_alias_name = Some(alias_localpart.to_owned());
        request.preset = Some(create_room::v3::RoomPreset::PublicChat);
        request.visibility = Visibility::Private;
        let response = self.call(request, None).await?;
        RoomId::parse(response.room_id.as_str()).map_err(|e| MatrixError::Protocol(e.to_string()))
    }

    async fn invite(&self, room: &RoomId, by: &MatrixUserId, user: &MatrixUserId) -> Result<(), MatrixError> {
        let recipient = invite_user::v3::InviteUserId::new(to_ruma_user(user)?);
        let request = invite_user::v3::Request::new(to_ruma_room(room)?, recipient.into());
        self.call(request, Some(by)).await.map(|_| ())
    }

    async fn join(&self, room: &RoomId, user: &MatrixUserId) -> Result<(), MatrixError> {
        self.call(join_room_by_id::v3::Request::new(to_ruma_room(room)?), Some(user)).await.map(|_| ())
    }

    async fn leave(&self, room: &RoomId, user: &MatrixUserId) -> Result<(), MatrixError> {
        self.call(leave_room::v3::Request::new(to_ruma_room(room)?), Some(user)).await.map(|_| ())
    }

    /// Remove a user from a room (or withdraw their invitation), as `by` or the bot.
    async fn kick(
        &self,
        room: &RoomId,
        by: Option<&MatrixUserId>,
        user: &MatrixUserId,
        reason: &str,
    ) -> Result<(), MatrixError> {
        let mut request = kick_user::v3::Request::new(to_ruma_room(room)?, to_ruma_user(user)?);
        request.reason = Some(reason.to_owned());
        self.call(request, by).await.map(|_| ())
    }

    /// Set a user's power level in a room, as the bot.
    async fn set_power_level(&self, room: &RoomId, user: &MatrixUserId, level: i64) -> Result<(), MatrixError> {
        self.update_power_levels(room, |pl| {
            if level == 0 {
                if let Some(users) = pl["users"].as_object_mut() {
                    users.remove(&user.to_string());
                }
            } else {
                pl["users"][user.to_string().as_str()] = serde_json::json!(level);
            }
        })
        .await
    }

    /// Set the room's topic, as the bot.
    async fn set_topic(&self, room: &RoomId, topic: &str) -> Result<(), MatrixError> {
        let content = ruma::events::room::topic::RoomTopicEventContent::new(topic.to_owned());
        let request = send_state_event::v3::Request::new(to_ruma_room(room)?, &ruma::events::EmptyStateKey, &content)
            .map_err(|e| MatrixError::Protocol(e.to_string()))?;
        self.call(request, None).await.map(|_| ())
    }

    /// Set the room's name, as the bot.
    async fn set_name(&self, room: &RoomId, name: &str) -> Result<(), MatrixError> {
        let content = ruma::events::room::name::RoomNameEventContent::new(name.to_owned());
        let request = send_state_event::v3::Request::new(to_ruma_room(room)?, &ruma::events::EmptyStateKey, &content)
            .map_err(|e| MatrixError::Protocol(e.to_string()))?;
        self.call(request, None).await.map(|_| ())
    }

    async fn set_room_avatar(&self, room: &RoomId, mxc: Option<&str>) -> Result<(), MatrixError> {
        self.put_room_avatar(room, mxc).await
    }

    async fn room_avatar(&self, room: &RoomId) -> Result<Option<String>, MatrixError> {
        self.get_room_avatar(room).await
    }

    /// A member's display name in one room only (their `m.room.member` event), as that member.
    async fn set_room_displayname(&self, room: &RoomId, user: &MatrixUserId, name: &str) -> Result<(), MatrixError> {
        let content = serde_json::json!({"membership": "join", "displayname": name});
        let body = serde_json::value::to_raw_value(&content).map_err(|e| MatrixError::Protocol(e.to_string()))?;
        let request = send_state_event::v3::Request::new_raw(
            to_ruma_room(room)?,
            ruma::events::StateEventType::RoomMember,
            user.to_string(),
            ruma::serde::Raw::from_json(body),
        );
        self.call(request, Some(user)).await.map(|_| ())
    }

    /// Who created a room and the bridge's creation marker in it, read as the bot (`None`:
    /// the bot cannot read the room's state, so it is not one the bridge made).
    async fn room_origin(&self, room: &RoomId) -> Result<Option<RoomOrigin>, MatrixError> {
        use get_state_event_for_key::v3::StateEventFormat::{Content, Event};
        let creator = match self.state(room, "m.room.create", "", Content).await? {
            None => return Ok(None),
            // Room versions before 11 name the creator in the content; later ones only as the
            // event's sender, which the content does not hold: ask for the whole event then.
            Some(content) => match content["creator"].as_str() {
                Some(c) => c.to_owned(),
                None => self
                    .state(room, "m.room.create", "", Event)
                    .await?
                    .and_then(|event| event["sender"].as_str().map(str::to_owned))
                    .unwrap_or_default(),
            },
        };
        let marker =
            self.state(room, CREATION_MARKER, "", Content).await?.and_then(|c| c["by"].as_str().map(str::to_owned));
        Ok(Some(RoomOrigin { creator, marker }))
    }

    /// The room an alias points to, if any.
    async fn resolve_alias(&self, alias: &str) -> Result<Option<RoomId>, MatrixError> {
        let alias =
            ruma::OwnedRoomAliasId::try_from(alias).map_err(|e| MatrixError::Protocol(format!("{alias}: {e}")))?;
        match self.call(get_alias::v3::Request::new(alias), None).await {
            Ok(r) => RoomId::parse(r.room_id.as_str()).map(Some).map_err(|e| MatrixError::Protocol(e.to_string())),
            Err(e) if e.errcode() == Some("M_NOT_FOUND") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The joined members of a room, with their display names, as the bot sees them.
    async fn joined_members(&self, room: &RoomId) -> Result<Vec<(MatrixUserId, Option<String>)>, MatrixError> {
        let request = ruma::api::client::membership::joined_members::v3::Request::new(to_ruma_room(room)?);
        let response = self.call(request, None).await?;
        Ok(response
            .joined
            .into_iter()
            .filter_map(|(user, m)| Some((MatrixUserId::parse(user.as_str()).ok()?, m.display_name)))
            .collect())
    }

    async fn room_setup(&self, room: &RoomId) -> Result<Option<crate::core::adopt::RoomSetup>, MatrixError> {
        self.read_room_setup(room).await
    }

    /// One event of a room, read as the bot, in the core's terms (`None`: not one the bridge reads).
    async fn room_event(
        &self,
        room: &RoomId,
        event_id: &str,
    ) -> Result<Option<crate::core::inbound::MatrixIn>, MatrixError> {
        self.room_event_as(room, event_id, None).await
    }

    /// [`Self::room_event`] as `user` (a ghost in a direct chat the bot is not in).
    async fn room_event_as(
        &self,
        room: &RoomId,
        event_id: &str,
        user: Option<&MatrixUserId>,
    ) -> Result<Option<crate::core::inbound::MatrixIn>, MatrixError> {
        let event = OwnedEventId::try_from(event_id).map_err(|e| MatrixError::Protocol(format!("{event_id}: {e}")))?;
        let request = ruma::api::client::room::get_room_event::v3::Request::new(to_ruma_room(room)?, event);
        let response = self.call(request, user).await?;
        Ok(crate::matrix::events::translate(&response.event))
    }

    // The appservice itself.
    /// Ask the homeserver to ping us; it then also retries its queue of transactions at once.
    async fn ping_homeserver(&self, transaction_id: &str) -> Result<(), MatrixError> {
        let mut request = ruma::api::client::appservice::request_ping::v1::Request::new(self.appservice_id.clone());
        request.transaction_id = Some(OwnedTransactionId::from(transaction_id));
        self.call(request, None).await.map(|_| ())
    }

    async fn reachable(&self) -> Result<(), MatrixError> {
        let request = ruma::api::client::discovery::get_supported_versions::Request::new();
        self.call(request, None).await.map(|_| ())
    }

    async fn set_bridge_info(&self, room: &RoomId, bridge_id: &str, info: &BridgeInfo) -> Result<(), MatrixError> {
        let content = super::bridge_info::content(info);
        for kind in super::bridge_info::EVENT_TYPES {
            let body = serde_json::value::to_raw_value(&content).map_err(|e| MatrixError::Protocol(e.to_string()))?;
            let request = send_state_event::v3::Request::new_raw(
                to_ruma_room(room)?,
                ruma::events::StateEventType::from(kind),
                info.state_key(bridge_id),
                ruma::serde::Raw::from_json(body),
            );
            self.call(request, None).await?;
        }
        Ok(())
    }

    async fn has_bridge_info(&self, room: &RoomId, bridge_id: &str, info: &BridgeInfo) -> Result<bool, MatrixError> {
        self.bridge_info_matches(room, bridge_id, info).await
    }
}

/// What several calls share.
impl MatrixClient {
    async fn send_event(
        &self,
        room: &RoomId,
        user: &MatrixUserId,
        kind: ruma::events::MessageLikeEventType,
        content: &impl serde::Serialize,
        sent_at: Option<i64>,
        txn_id: &str,
    ) -> Result<String, MatrixError> {
        let raw = serde_json::value::to_raw_value(content).map_err(|e| MatrixError::Protocol(e.to_string()))?;
        let mut request = send_message_event::v3::Request::new_raw(
            to_ruma_room(room)?,
            OwnedTransactionId::from(txn_id),
            kind,
            ruma::serde::Raw::from_json(raw),
        );
        // Timestamp massaging: only appservice users may set it; a negative time is never asked.
        request.timestamp = sent_at
            .and_then(|ms| u64::try_from(ms).ok())
            .and_then(ruma::UInt::new)
            .map(ruma::MilliSecondsSinceUnixEpoch);
        Ok(self.call(request, Some(user)).await?.event_id.to_string())
    }

    /// A state event of the room (its content, or the whole event), read as the bot; `None`
    /// when there is none or the bot cannot read the room.
    pub(super) async fn state(
        &self,
        room: &RoomId,
        kind: &str,
        state_key: &str,
        format: get_state_event_for_key::v3::StateEventFormat,
    ) -> Result<Option<serde_json::Value>, MatrixError> {
        let mut request =
            get_state_event_for_key::v3::Request::new(to_ruma_room(room)?, kind.into(), state_key.to_owned());
        request.format = format;
        match self.call(request, None).await {
            Ok(r) => serde_json::from_str(r.event_or_content.get())
                .map(Some)
                .map_err(|e| MatrixError::Protocol(e.to_string())),
            Err(e) if matches!(e.errcode(), Some("M_NOT_FOUND" | "M_FORBIDDEN")) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Read-modify-write the room's power levels as the bot.
    async fn update_power_levels(
        &self,
        room: &RoomId,
        change: impl FnOnce(&mut serde_json::Value),
    ) -> Result<(), MatrixError> {
        let kind = ruma::events::StateEventType::RoomPowerLevels;
        let current = self
            .call(get_state_event_for_key::v3::Request::new(to_ruma_room(room)?, kind.clone(), String::new()), None)
            .await?;
        let mut content: serde_json::Value =
            serde_json::from_str(current.event_or_content.get()).map_err(|e| MatrixError::Protocol(e.to_string()))?;
        if !content["users"].is_object() {
            content["users"] = serde_json::json!({});
        }
        if !content["events"].is_object() {
            content["events"] = serde_json::json!({});
        }
        change(&mut content);
        let body = serde_json::value::to_raw_value(&content).map_err(|e| MatrixError::Protocol(e.to_string()))?;
        let request = send_state_event::v3::Request::new_raw(
            to_ruma_room(room)?,
            kind,
            String::new(),
            ruma::serde::Raw::from_json(body),
        );
        self.call(request, None).await.map(|_| ())
    }
}
