//! A room's avatar (`m.room.avatar`), read and set as the bot: hosted rooms' avatars go to their
//! MUC (XEP-0486) and back, a linked MUC's avatar becomes its room's.

use ruma::api::client::state::get_state_event_for_key::v3::StateEventFormat;
use ruma::api::client::state::send_state_event;

use super::{MatrixClient, MatrixError, to_ruma_room};
use crate::core::ids::RoomId;

impl MatrixClient {
    /// The room's avatar URL; `None` when it has none (or an empty one: how it is removed).
    pub(super) async fn get_room_avatar(&self, room: &RoomId) -> Result<Option<String>, MatrixError> {
        let content = self.state(room, "m.room.avatar", "", StateEventFormat::Content).await?;
        Ok(content.and_then(|c| c["url"].as_str().map(str::to_owned)).filter(|u| u.starts_with("mxc://")))
    }

    /// Set the room's avatar to `mxc`, or remove it (`None`: an event without a URL).
    pub(super) async fn put_room_avatar(&self, room: &RoomId, mxc: Option<&str>) -> Result<(), MatrixError> {
        let content = match mxc {
            Some(url) => serde_json::json!({ "url": url }),
            None => serde_json::json!({}),
        };
        let body = serde_json::value::to_raw_value(&content).map_err(|e| MatrixError::Protocol(e.to_string()))?;
        let request = send_state_event::v3::Request::new_raw(
            to_ruma_room(room)?,
            ruma::events::StateEventType::RoomAvatar,
            String::new(),
            ruma::serde::Raw::from_json(body),
        );
        self.call(request, None).await.map(|_| ())
    }
}
