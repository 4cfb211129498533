//! The bridge's HTTP server: `/health`, the `/media/…` files XMPP clients fetch, the missed-call
//! webhook and journal (`calls.rs`) and the SMS gateways' callbacks (`sms.rs`), with the error
//! mapping (`error.rs`) that the appservice API (`matrix::appservice`, merged in by `app.rs`)
//! shares. Each part reaches the bridge
//! through a port it declares ([`Health`], [`media::MediaLinks`], `matrix::appservice::Appservice`,
//! [`sms::SmsGateway`]), implemented in `bridge::http_in`.

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

/// What `/health` reports on.
#[async_trait::async_trait]
pub trait Health: Send + Sync {
    /// Whether the database answers.
    async fn database_ok(&self) -> bool;
    /// Actions waiting in the outbox (`None`: cannot be counted now).
    async fn outbox_len(&self) -> Option<i64>;
    /// Whether the XMPP link is up.
    fn xmpp_connected(&self) -> bool;
}

/// `/health` and `/media/…`; `app.rs` merges the appservice API (`matrix::appservice::router`)
/// and, when configured, the SMS and missed-call routes.
pub fn router(health_of: Arc<dyn Health>, links: Arc<dyn media::MediaLinks>, media: Arc<media::MediaSource>) -> Router {
    Router::new()
        .route("/health", get(health))
        .with_state(health_of)
        .merge(Router::new().route("/media/{token}/{name}", get(media::serve)).with_state((links, media)))
}

/// Liveness and readiness: the database answers, and whether the XMPP link is up.
async fn health(State(bridge): State<Arc<dyn Health>>) -> impl IntoResponse {
    let db = bridge.database_ok().await;
    let queued = bridge.outbox_len().await.unwrap_or(-1);
    let xmpp = if bridge.xmpp_connected() { "connected" } else { "disconnected" };
    let status = if db { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({"status": if db { "ok" } else { "database unavailable" }, "xmpp": xmpp, "outbox": queued});
    (status, Json(body))
}
