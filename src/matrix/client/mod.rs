//! Outbound client-server API calls, as the bridge bot or as a ghost (identity assertion with
//! `?user_id=`, <https://spec.matrix.org/latest/application-service-api/#identity-assertion>).
//! Requests are built from ruma's endpoint types and sent with reqwest. Here: the client and its
//! errors; the calls, as the bridge's [`MatrixOut`](crate::matrix::out::MatrixOut) port, in
//! `out`, and the content of what is sent in `content`.

use std::borrow::Cow;
use std::time::Duration;

use ruma::api::auth_scheme::{AuthScheme, SendAccessToken};
use ruma::api::client::discovery::get_supported_versions;
use ruma::api::path_builder::{PathBuilder, SinglePath, VersionHistory};
use ruma::api::{
    AppserviceUserIdentity, IncomingResponseExt, OutgoingRequest, OutgoingRequestAppserviceExt, SupportedVersions,
};
use ruma::presence::PresenceState;
use ruma::{OwnedRoomId, OwnedUserId};
use serde::Deserialize;

use crate::core::ids::{MatrixUserId, RoomId};
use crate::core::outbox::DeliveryError;
use crate::core::presence::MatrixState;

mod bridge_info;
mod content;
mod out;
mod room_avatar;
mod room_setup;

pub use content::{Relations, UploadedFile, file_content, with_relations};
pub use out::{CREATION_MARKER, RoomOrigin};

/// A failed client-server call.
#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    #[error("homeserver unreachable: {0}")]
    Network(String),
    #[error("homeserver answered {status} {errcode}: {message}")]
    Refused { status: u16, errcode: String, message: String },
    #[error("bad request or response: {0}")]
    Protocol(String),
}

impl MatrixError {
    pub fn errcode(&self) -> Option<&str> {
        match self {
            Self::Refused { errcode, .. } => Some(errcode),
            _ => None,
        }
    }

    /// Classify for the outbox: outages and rate limits pass, refusals do not.
    pub fn into_delivery(self) -> DeliveryError {
        match &self {
            Self::Network(_) => DeliveryError::Transient(self.to_string()),
            Self::Refused { status, errcode, .. }
                if *status >= 500 || *status == 429 || errcode == "M_LIMIT_EXCEEDED" =>
            {
                DeliveryError::Transient(self.to_string())
            }
            _ => DeliveryError::Permanent(self.to_string()),
        }
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errcode: String,
    #[serde(default)]
    error: String,
}

/// Fills in a path builder's input from the server's supported versions.
pub trait PathInput: PathBuilder {
    fn input(versions: &SupportedVersions) -> Self::Input<'_>;
}

impl PathInput for VersionHistory {
    fn input(versions: &SupportedVersions) -> Cow<'_, SupportedVersions> {
        Cow::Borrowed(versions)
    }
}

impl PathInput for SinglePath {
    fn input(_: &SupportedVersions) {}
}

/// Client-server API access with the appservice's `as_token`.
#[derive(Clone)]
pub struct MatrixClient {
    http: reqwest::Client,
    base_url: String,
    as_token: String,
    appservice_id: String,
    versions: SupportedVersions,
}

pub(super) fn to_ruma_user(user: &MatrixUserId) -> Result<OwnedUserId, MatrixError> {
    OwnedUserId::try_from(user.to_string()).map_err(|e| MatrixError::Protocol(format!("{user}: {e}")))
}

pub(super) fn to_ruma_presence(state: MatrixState) -> PresenceState {
    match state {
        MatrixState::Online => PresenceState::Online,
        MatrixState::Unavailable => PresenceState::Unavailable,
        MatrixState::Offline => PresenceState::Offline,
    }
}

/// Unknown presence values (custom ones) count as online: the user is connected somehow.
pub fn from_ruma_presence(state: &PresenceState) -> MatrixState {
    match state {
        PresenceState::Offline => MatrixState::Offline,
        PresenceState::Unavailable => MatrixState::Unavailable,
        _ => MatrixState::Online,
    }
}

pub(super) fn to_ruma_room(room: &RoomId) -> Result<OwnedRoomId, MatrixError> {
    OwnedRoomId::try_from(room.as_str()).map_err(|e| MatrixError::Protocol(format!("{room}: {e}")))
}

impl MatrixClient {
    pub fn new(base_url: &str, as_token: &str, appservice_id: &str) -> Result<Self, MatrixError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| MatrixError::Network(e.to_string()))?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            as_token: as_token.to_owned(),
            appservice_id: appservice_id.to_owned(),
            versions: SupportedVersions { versions: Default::default(), features: Default::default() },
        })
    }

    /// Learn which spec versions the homeserver speaks (needed to pick endpoint paths).
    pub async fn discover_versions(&mut self) -> Result<(), MatrixError> {
        let response = self.call(get_supported_versions::Request::new(), None).await?;
        self.versions = response.as_supported_versions();
        Ok(())
    }

    /// Send a request, as `as_user` (a ghost) or as the bridge bot when `None`.
    pub async fn call<R>(&self, request: R, as_user: Option<&MatrixUserId>) -> Result<R::IncomingResponse, MatrixError>
    where
        R: OutgoingRequest + OutgoingRequestAppserviceExt,
        R::PathBuilder: PathInput,
        for<'a> R::Authentication: AuthScheme<Input<'a> = SendAccessToken<'a>>,
    {
        let user = as_user.map(to_ruma_user).transpose()?;
        let identity = user.as_deref().map(AppserviceUserIdentity::new).unwrap_or_default();
        let http_request = request
            .try_into_http_request_with_identity::<Vec<u8>>(
                &self.base_url,
                SendAccessToken::Always(&self.as_token),
                identity,
                R::PathBuilder::input(&self.versions),
            )
            .map_err(|e| MatrixError::Protocol(e.to_string()))?;
        let (parts, body) = http_request.into_parts();
        let response = self
            .http
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body)
            .send()
            .await
            .map_err(|e| MatrixError::Network(e.to_string()))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| MatrixError::Network(e.to_string()))?;
        if !status.is_success() {
            let err: ErrorBody = serde_json::from_slice(&bytes)
                .unwrap_or(ErrorBody { errcode: String::new(), error: String::from_utf8_lossy(&bytes).into_owned() });
            return Err(MatrixError::Refused { status: status.as_u16(), errcode: err.errcode, message: err.error });
        }
        let http_response = http::Response::builder()
            .status(status)
            .body(bytes.as_ref())
            .map_err(|e| MatrixError::Protocol(e.to_string()))?;
        R::IncomingResponse::try_from_http_response(http_response).map_err(|e| MatrixError::Protocol(e.to_string()))
    }
}
