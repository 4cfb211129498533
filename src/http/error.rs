//! The one place where errors become HTTP responses (Matrix-style `{errcode, error}` bodies).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No token was supplied.
    #[error("missing access token")]
    MissingToken,
    /// A token was supplied but it is not ours.
    #[error("invalid access token")]
    BadToken,
    /// Missing or wrong credentials of a non-Matrix endpoint (webhook signature, bearer token).
    #[error("{0}")]
    Unauthorized(String),
    /// Credentials that are valid but do not reach what was asked (a personal journal token
    /// asking for someone else's rows).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    NotJson(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("unrecognised request")]
    Unrecognized,
    /// Not now: the caller should retry later (not an error of ours worth logging as one).
    #[error("{0}")]
    Unavailable(String),
    /// Our fault (e.g. the database is down); the homeserver will retry.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// A storage failure: a full disk is "not now" (503, and the sender retries later), anything
    /// else is ours (500, logged).
    pub fn store(context: &str, e: &crate::store::StoreError) -> Self {
        if e.is_full() {
            tracing::error!(error = %e, context, "storage full; refusing new input");
            ApiError::Unavailable(format!("{context}: the bridge's storage is full; try again later"))
        } else {
            ApiError::Internal(format!("{context}: {e}"))
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, errcode) = match &self {
            ApiError::MissingToken => (StatusCode::UNAUTHORIZED, "M_UNAUTHORIZED"),
            ApiError::BadToken => (StatusCode::FORBIDDEN, "M_FORBIDDEN"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "M_UNAUTHORIZED"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "M_FORBIDDEN"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "M_NOT_FOUND"),
            ApiError::NotJson(_) => (StatusCode::BAD_REQUEST, "M_NOT_JSON"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "M_BAD_JSON"),
            ApiError::Unrecognized => (StatusCode::NOT_FOUND, "M_UNRECOGNIZED"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "M_UNKNOWN"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "M_UNKNOWN"),
        };
        if status.is_server_error() && !matches!(self, ApiError::Unavailable(_)) {
            tracing::error!(error = %self, "request failed");
        }
        // Our own failures may name the database or the homeserver's address: logged above,
        // never told to the client (issue #11, L8).
        let message = match &self {
            ApiError::Internal(_) => "internal error; the bridge's log says more".to_owned(),
            other => other.to_string(),
        };
        (status, Json(json!({"errcode": errcode, "error": message}))).into_response()
    }
}
