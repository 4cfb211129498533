//! The bridge's HTTP server: `/health`, the `/media/…` files XMPP clients fetch, the missed-call
//! webhook and journal (`calls.rs`) and the SMS gateways' callbacks (`sms.rs`), with the error
//! mapping (`error.rs`) that the appservice API (`matrix::appservice`, merged in by `app.rs`)
//! shares. Each part reaches the bridge
//! through a port it declares ([`Health`], [`media::MediaLinks`], `matrix::appservice::Appservice`,
//! [`sms::SmsGateway`]), implemented in `bridge::http_in`.

pub mod calls;
pub mod error;
pub mod media;
pub mod metrics;
pub mod server;
pub mod sms;

use std::sync::Arc;
use std::time::Duration;

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
    /// The other dependencies by name, as last checked (no I/O: answers at once).
    fn dependencies(&self) -> Vec<(&'static str, DependencyState)>;
}

/// A dependency's state in `/health`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DependencyState {
    Up,
    /// Down, with what the last check found.
    Down(String),
    /// Configured but not used or checked yet.
    Unknown,
    /// Not configured.
    Off,
}

impl DependencyState {
    fn json(&self) -> serde_json::Value {
        match self {
            DependencyState::Up => json!({"state": "up"}),
            DependencyState::Down(error) => json!({"state": "down", "error": error}),
            DependencyState::Unknown => json!({"state": "unknown"}),
            DependencyState::Off => json!({"state": "off"}),
        }
    }
}

/// How long `/health` waits for the database: a database that is down must not hold the answer
/// for the pool's 30 s acquire timeout (probes and load balancers give up sooner).
const DATABASE_PROBE: Duration = Duration::from_secs(2);

/// `/health` and `/media/…`; `app.rs` merges the appservice API (`matrix::appservice::router`),
/// `/metrics` (`metrics::router`) and, when configured, the SMS and missed-call routes.
pub fn router(health_of: Arc<dyn Health>, links: Arc<dyn media::MediaLinks>, media: Arc<media::MediaSource>) -> Router {
    Router::new()
        .route("/health", get(health))
        .with_state(health_of)
        .merge(Router::new().route("/media/{token}/{name}", get(media::serve)).with_state((links, media)))
}

/// Liveness and readiness: 200 while the database answers (503 otherwise), with each
/// dependency's state. `status`, `xmpp` and `outbox` keep their earlier form (scripts read them).
async fn health(State(bridge): State<Arc<dyn Health>>) -> impl IntoResponse {
    let db = tokio::time::timeout(DATABASE_PROBE, bridge.database_ok()).await.unwrap_or(false);
    let queued = if db {
        tokio::time::timeout(DATABASE_PROBE, bridge.outbox_len()).await.ok().flatten().unwrap_or(-1)
    } else {
        -1
    };
    let xmpp = if bridge.xmpp_connected() { "connected" } else { "disconnected" };
    let status = if db { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let mut dependencies = serde_json::Map::new();
    let database = if db {
        DependencyState::Up
    } else {
        DependencyState::Down(format!("no answer within {} s", DATABASE_PROBE.as_secs()))
    };
    dependencies.insert("database".into(), database.json());
    for (name, state) in bridge.dependencies() {
        dependencies.insert(name.into(), state.json());
    }
    let body = json!({
        "status": if db { "ok" } else { "database unavailable" },
        "xmpp": xmpp,
        "outbox": queued,
        "dependencies": dependencies,
    });
    (status, Json(body))
}
