//! Users as the homeserver knows them: registering ghosts, presence, typing, read receipts,
//! display names and avatars, and media upload and download.

use std::time::Duration;

use ruma::OwnedEventId;
use ruma::api::client::account::register::{self, LoginType};
use ruma::api::client::presence::{get_presence, set_presence};
use ruma::api::client::profile::set_display_name;
use ruma::api::client::receipt::create_receipt;
use ruma::api::client::typing::create_typing_event;

use crate::core::ids::{MatrixUserId, RoomId};
use crate::core::presence::{MatrixState, Presence};

use super::{MatrixClient, MatrixError, from_ruma_presence, to_ruma_presence, to_ruma_room, to_ruma_user};

impl MatrixClient {
    /// Register a ghost; an existing account is fine.
    pub async fn register_ghost(&self, user: &MatrixUserId) -> Result<(), MatrixError> {
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
    pub async fn set_presence(
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
    pub async fn presence(&self, user: &MatrixUserId, viewer: &MatrixUserId) -> Result<Presence, MatrixError> {
        let response = self.call(get_presence::v3::Request::new(to_ruma_user(user)?), Some(viewer)).await?;
        Ok(Presence::from_matrix(from_ruma_presence(&response.presence), response.status_msg.as_deref()))
    }

    /// Start (with a timeout) or stop a user's typing notification in a room.
    pub async fn set_typing(&self, room: &RoomId, user: &MatrixUserId, typing: bool) -> Result<(), MatrixError> {
        let state = if typing {
            create_typing_event::v3::Typing::Yes(create_typing_event::v3::TypingInfo::new(Duration::from_secs(30)))
        } else {
            create_typing_event::v3::Typing::No
        };
        let request = create_typing_event::v3::Request::new(to_ruma_user(user)?, to_ruma_room(room)?, state);
        self.call(request, Some(user)).await.map(|_| ())
    }

    /// Mark an event read for `user` (an `m.read` receipt).
    pub async fn send_read_receipt(
        &self,
        room: &RoomId,
        user: &MatrixUserId,
        event_id: &str,
    ) -> Result<(), MatrixError> {
        let event = OwnedEventId::try_from(event_id).map_err(|e| MatrixError::Protocol(format!("{event_id}: {e}")))?;
        let request =
            create_receipt::v3::Request::new(to_ruma_room(room)?, create_receipt::v3::ReceiptType::Read, event);
        self.call(request, Some(user)).await.map(|_| ())
    }

    /// A user's display name from their profile (`None` if they have none).
    pub async fn displayname(&self, user: &MatrixUserId) -> Result<Option<String>, MatrixError> {
        #[allow(deprecated)] // as for set_displayname: the per-field endpoint is widely deployed
        let request = ruma::api::client::profile::get_display_name::v3::Request::new(to_ruma_user(user)?);
        Ok(self.call(request, None).await?.displayname)
    }

    pub async fn set_displayname(&self, user: &MatrixUserId, name: &str) -> Result<(), MatrixError> {
        #[allow(deprecated)] // the generic profile-field endpoint is newer than many homeservers
        let request = set_display_name::v3::Request::new(to_ruma_user(user)?, Some(name.to_owned()));
        self.call(request, Some(user)).await.map(|_| ())
    }

    /// Upload a file as `user`; returns its `mxc://` URI.
    pub async fn upload(&self, user: &MatrixUserId, bytes: Vec<u8>, content_type: &str) -> Result<String, MatrixError> {
        let mut request = ruma::api::client::media::create_content::v3::Request::new(bytes);
        request.content_type = Some(content_type.to_owned());
        Ok(self.call(request, Some(user)).await?.content_uri.to_string())
    }

    pub async fn set_avatar_url(&self, user: &MatrixUserId, mxc: &str) -> Result<(), MatrixError> {
        #[allow(deprecated)] // as for set_displayname
        let request = ruma::api::client::profile::set_avatar_url::v3::Request::new(
            to_ruma_user(user)?,
            Some(ruma::OwnedMxcUri::from(mxc)),
        );
        self.call(request, Some(user)).await.map(|_| ())
    }

    /// A user's avatar (`mxc://` URI) from their profile, if any.
    pub async fn avatar_url(&self, user: &MatrixUserId) -> Result<Option<String>, MatrixError> {
        #[allow(deprecated)]
        let request = ruma::api::client::profile::get_avatar_url::v3::Request::new(to_ruma_user(user)?);
        Ok(self.call(request, None).await?.avatar_url.map(|u| u.to_string()))
    }

    /// Download a file by its `mxc://` URI (authenticated media): bytes and content type.
    pub async fn download(&self, mxc: &str) -> Result<(Vec<u8>, Option<String>), MatrixError> {
        let uri = ruma::OwnedMxcUri::from(mxc);
        let (server, media_id) = uri.parts().map_err(|e| MatrixError::Protocol(format!("{mxc}: {e}")))?;
        let request = ruma::api::client::authenticated_media::get_content::v1::Request::new(
            media_id.to_owned(),
            server.to_owned(),
        );
        let response = self.call(request, None).await?;
        Ok((response.file, response.content_type))
    }
}
