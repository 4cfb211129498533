//! `GET /metrics`: the Prometheus text format of what `core::metrics` records, behind an
//! optional bearer token (`metrics.token`).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use subtle::ConstantTimeEq;

/// The recorder's handle and the token scrapers must present, if any.
pub struct Scrape {
    pub handle: PrometheusHandle,
    pub token: Option<String>,
}

pub fn router(scrape: Arc<Scrape>) -> Router {
    Router::new().route("/metrics", get(render)).with_state(scrape)
}

async fn render(State(scrape): State<Arc<Scrape>>, headers: HeaderMap) -> Response {
    if let Some(token) = &scrape.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
            let mut response =
                (StatusCode::UNAUTHORIZED, "a bearer token is required (metrics.token)\n").into_response();
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return response;
        }
    }
    let text = scrape.handle.render();
    ([(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"))], text)
        .into_response()
}
