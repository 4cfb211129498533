//! The bridge's HTTP server, one axum router: the appservice API (`matrix::appservice`),
//! `/health`, the `/media/…` files XMPP clients fetch, the missed-call webhook and journal
//! (`calls.rs`) and the SMS gateways' callbacks (`sms.rs`).

pub mod calls;
pub mod error;
pub mod media;
pub mod server;
pub mod sms;

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::bridge::Bridge;

pub fn router(bridge: Arc<Bridge>, media: Arc<media::MediaSource>) -> Router {
    Router::new()
        .route("/health", get(health))
        .with_state(bridge.clone())
        .merge(Router::new().route("/media/{token}/{name}", get(media::serve)).with_state((bridge.clone(), media)))
        .merge(crate::matrix::appservice::router(bridge))
}

/// Liveness and readiness: the database answers, and whether the XMPP link is up.
async fn health(State(bridge): State<Arc<Bridge>>) -> impl IntoResponse {
    let db = bridge.store.ping().await.is_ok();
    let queued = bridge.store.outbox_len().await.unwrap_or(-1);
    let xmpp = if bridge.xmpp.is_connected() { "connected" } else { "disconnected" };
    let status = if db { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({"status": if db { "ok" } else { "database unavailable" }, "xmpp": xmpp, "outbox": queued});
    (status, Json(body))
}
