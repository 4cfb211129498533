//! Rooms as the bot or a ghost: creating direct chats and group rooms (with the bridge's
//! creation marker), membership, power levels, topic and name, aliases, and reading room state
//! and events.

use ruma::OwnedEventId;
use ruma::api::client::alias::get_alias;
use ruma::api::client::membership::{invite_user, join_room_by_id, kick_user, leave_room};
use ruma::api::client::room::{Visibility, create_room};
use ruma::api::client::state::{get_state_event_for_key, send_state_event};

use crate::core::ids::{MatrixUserId, RoomId};
use crate::core::room::MODERATOR_LEVEL;

use super::{MatrixClient, MatrixError, to_ruma_room, to_ruma_user};

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

impl MatrixClient {
    /// Create an unencrypted direct chat owned by `creator`, inviting `peer`.
    pub async fn create_direct_room(&self, creator: &MatrixUserId, peer: &MatrixUserId) -> Result<RoomId, MatrixError> {
        let mut request = create_room::v3::Request::new();
        request.invite = vec![to_ruma_user(peer)?];
        request.is_direct = true;
        request.preset = Some(create_room::v3::RoomPreset::TrustedPrivateChat);
        request.visibility = Visibility::Private;
        let response = self.call(request, Some(creator)).await?;
        RoomId::parse(response.room_id.as_str()).map_err(|e| MatrixError::Protocol(e.to_string()))
    }

    pub async fn invite(&self, room: &RoomId, by: &MatrixUserId, user: &MatrixUserId) -> Result<(), MatrixError> {
        let recipient = invite_user::v3::InviteUserId::new(to_ruma_user(user)?);
        let request = invite_user::v3::Request::new(to_ruma_room(room)?, recipient.into());
        self.call(request, Some(by)).await.map(|_| ())
    }

    pub async fn join(&self, room: &RoomId, user: &MatrixUserId) -> Result<(), MatrixError> {
        self.call(join_room_by_id::v3::Request::new(to_ruma_room(room)?), Some(user)).await.map(|_| ())
    }

    /// Create a group conversation as the bridge bot (which, as creator, ranks above every
    /// power level): moderators ([`MODERATOR_LEVEL`]) invite, kick and change power levels and
    /// the topic and name; `moderators` get that level right away. Returns the room ID.
    /// `marker` is recorded in the room's initial state ([`CREATION_MARKER`]): a retried
    /// creation finds its own room by it, and the bot never mistakes someone else's room behind
    /// the alias for one it made.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_group_room(
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

    /// Who created a room and the bridge's creation marker in it, read as the bot (`None`:
    /// the bot cannot read the room's state, so it is not one the bridge made).
    pub async fn room_origin(&self, room: &RoomId) -> Result<Option<RoomOrigin>, MatrixError> {
        use get_state_event_for_key::v3::StateEventFormat::{Content, Event};
        let creator = match self.state(room, "m.room.create", Content).await? {
            None => return Ok(None),
            // Room versions before 11 name the creator in the content; later ones only as the
            // event's sender, which the content does not hold: ask for the whole event then.
            Some(content) => match content["creator"].as_str() {
                Some(c) => c.to_owned(),
                None => self
                    .state(room, "m.room.create", Event)
                    .await?
                    .and_then(|event| event["sender"].as_str().map(str::to_owned))
                    .unwrap_or_default(),
            },
        };
        let marker =
            self.state(room, CREATION_MARKER, Content).await?.and_then(|c| c["by"].as_str().map(str::to_owned));
        Ok(Some(RoomOrigin { creator, marker }))
    }

    /// A state event of the room (its content, or the whole event), read as the bot; `None`
    /// when there is none or the bot cannot read the room.
    async fn state(
        &self,
        room: &RoomId,
        kind: &str,
        format: get_state_event_for_key::v3::StateEventFormat,
    ) -> Result<Option<serde_json::Value>, MatrixError> {
        let mut request = get_state_event_for_key::v3::Request::new(to_ruma_room(room)?, kind.into(), String::new());
        request.format = format;
        match self.call(request, None).await {
            Ok(r) => serde_json::from_str(r.event_or_content.get())
                .map(Some)
                .map_err(|e| MatrixError::Protocol(e.to_string())),
            Err(e) if matches!(e.errcode(), Some("M_NOT_FOUND" | "M_FORBIDDEN")) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The room an alias points to, if any.
    pub async fn resolve_alias(&self, alias: &str) -> Result<Option<RoomId>, MatrixError> {
        let alias =
            ruma::OwnedRoomAliasId::try_from(alias).map_err(|e| MatrixError::Protocol(format!("{alias}: {e}")))?;
        match self.call(get_alias::v3::Request::new(alias), None).await {
            Ok(r) => RoomId::parse(r.room_id.as_str()).map(Some).map_err(|e| MatrixError::Protocol(e.to_string())),
            Err(e) if e.errcode() == Some("M_NOT_FOUND") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Read-modify-write the room's power levels as the bot.
    pub async fn update_power_levels(
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

    /// Set a user's power level in a room, as the bot.
    pub async fn set_power_level(&self, room: &RoomId, user: &MatrixUserId, level: i64) -> Result<(), MatrixError> {
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

    /// Remove a user from a room (or withdraw their invitation), as the bot.
    pub async fn kick(&self, room: &RoomId, user: &MatrixUserId, reason: &str) -> Result<(), MatrixError> {
        let mut request = kick_user::v3::Request::new(to_ruma_room(room)?, to_ruma_user(user)?);
        request.reason = Some(reason.to_owned());
        self.call(request, None).await.map(|_| ())
    }

    /// Set the room's topic, as the bot.
    pub async fn set_topic(&self, room: &RoomId, topic: &str) -> Result<(), MatrixError> {
        let content = ruma::events::room::topic::RoomTopicEventContent::new(topic.to_owned());
        let request = send_state_event::v3::Request::new(to_ruma_room(room)?, &ruma::events::EmptyStateKey, &content)
            .map_err(|e| MatrixError::Protocol(e.to_string()))?;
        self.call(request, None).await.map(|_| ())
    }

    /// Create the room of a linked MUC as the bot: public (anyone who knows the alias may
    /// join, as anyone may join the MUC), under the alias in the bridge's namespace.
    pub async fn create_linked_room(&self, name: &str, alias_localpart: &str) -> Result<RoomId, MatrixError> {
        let mut request = create_room::v3::Request::new();
        request.name = Some(name.to_owned());
        request.room_alias_name = Some(alias_localpart.to_owned());
        request.preset = Some(create_room::v3::RoomPreset::PublicChat);
        request.visibility = Visibility::Private;
        let response = self.call(request, None).await?;
        RoomId::parse(response.room_id.as_str()).map_err(|e| MatrixError::Protocol(e.to_string()))
    }

    pub async fn leave(&self, room: &RoomId, user: &MatrixUserId) -> Result<(), MatrixError> {
        self.call(leave_room::v3::Request::new(to_ruma_room(room)?), Some(user)).await.map(|_| ())
    }

    /// A member's display name in one room only (their `m.room.member` event), as that member.
    pub async fn set_room_displayname(
        &self,
        room: &RoomId,
        user: &MatrixUserId,
        name: &str,
    ) -> Result<(), MatrixError> {
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

    /// Set the room's name, as the bot.
    pub async fn set_name(&self, room: &RoomId, name: &str) -> Result<(), MatrixError> {
        let content = ruma::events::room::name::RoomNameEventContent::new(name.to_owned());
        let request = send_state_event::v3::Request::new(to_ruma_room(room)?, &ruma::events::EmptyStateKey, &content)
            .map_err(|e| MatrixError::Protocol(e.to_string()))?;
        self.call(request, None).await.map(|_| ())
    }

    /// The joined members of a room, with their display names, as the bot sees them.
    pub async fn joined_members(&self, room: &RoomId) -> Result<Vec<(MatrixUserId, Option<String>)>, MatrixError> {
        let request = ruma::api::client::membership::joined_members::v3::Request::new(to_ruma_room(room)?);
        let response = self.call(request, None).await?;
        Ok(response
            .joined
            .into_iter()
            .filter_map(|(user, m)| Some((MatrixUserId::parse(user.as_str()).ok()?, m.display_name)))
            .collect())
    }

    /// One event of a room, read as the bot, in the core's terms (`None`: not one the bridge reads).
    pub async fn room_event(
        &self,
        room: &RoomId,
        event_id: &str,
    ) -> Result<Option<crate::core::inbound::MatrixIn>, MatrixError> {
        self.room_event_as(room, event_id, None).await
    }

    /// [`Self::room_event`] as `user` (a ghost in a direct chat the bot is not in).
    pub async fn room_event_as(
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
}
