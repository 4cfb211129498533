//! `GET /media/<token>/<name>`: Matrix files posted in bridged chats, served to XMPP clients.
//! The token (128 random bits) is the only key; the bridge fetches the file from the media
//! repository on each request, so a redacted file (its link forgotten) is no longer served.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::bridge::Bridge;
use crate::http::error::ApiError;

pub async fn serve(
    State(bridge): State<Arc<Bridge>>,
    Path((token, _name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let link = bridge
        .store
        .media_by_token(&token)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .ok_or_else(|| ApiError::NotFound("no such file".into()))?;
    let max = bridge.current_config().media.max_bytes;
    if link.size.is_some_and(|s| s > max) {
        return Err(ApiError::NotFound("the file is larger than the bridge serves".into()));
    }
    let (bytes, content_type) = bridge.matrix.download(&link.mxc).await.map_err(|e| match e.errcode() {
        Some("M_NOT_FOUND") => ApiError::NotFound("the file is gone from the media repository".into()),
        _ => ApiError::Unavailable(format!("cannot fetch the file: {e}")),
    })?;
    if bytes.len() as u64 > max {
        return Err(ApiError::NotFound("the file is larger than the bridge serves".into()));
    }
    let content_type = link.mimetype.or(content_type).unwrap_or_else(|| "application/octet-stream".into());
    let disposition = format!(
        "inline; filename*=UTF-8''{}",
        url::form_urlencoded::byte_serialize(link.name.as_bytes()).collect::<String>()
    );
    Ok(([(header::CONTENT_TYPE, content_type), (header::CONTENT_DISPOSITION, disposition)], bytes).into_response())
}
