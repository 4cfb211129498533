//! The HTTP listener. It is public (XMPP clients fetch `/media/...` from it), so every
//! connection and request is bounded (issue #11, M4): a client has `header_timeout` to send its
//! headers (slow-loris), a request `request_timeout` to be read and answered, at most
//! `max_connections` connections are open (more wait in the listen backlog) and at most
//! `max_requests` requests run at once (more get 503). `/health` is never refused for load.
//!
//! `axum::serve` sets no timer, so hyper's header timeout never fires there; hence this loop.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

/// Bounds of the listener (from `appservice.*`).
#[derive(Debug, Clone)]
pub struct Bounds {
    pub header_timeout: Duration,
    pub request_timeout: Duration,
    pub max_connections: usize,
    pub max_requests: usize,
}

impl Bounds {
    pub fn from_config(a: &crate::config::Appservice) -> Self {
        Bounds {
            header_timeout: Duration::from_secs(a.header_timeout_secs),
            request_timeout: Duration::from_secs(a.request_timeout_secs),
            max_connections: a.max_connections,
            max_requests: a.max_requests,
        }
    }
}

/// Serve `router` on `listener` until `shutdown` turns true, then let open requests finish.
pub async fn serve(listener: TcpListener, router: Router, bounds: Bounds, shutdown: watch::Receiver<bool>) {
    let guard =
        Arc::new(Guard { requests: Arc::new(Semaphore::new(bounds.max_requests)), timeout: bounds.request_timeout });
    let router = router.layer(axum::middleware::from_fn_with_state(guard, bound_request));
    let connections = Arc::new(Semaphore::new(bounds.max_connections));
    let mut stop = shutdown.clone();
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = stopped(&mut stop) => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, say: wait a moment rather than spin.
                    tracing::warn!(error = %e, "cannot accept an HTTP connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        // Answers are small and waited for (the homeserver sends the next transaction only
        // after this one's answer): no Nagle delay on them.
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let mut stop = shutdown.clone();
        let header_timeout = bounds.header_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(header_timeout);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let ended = tokio::select! {
                ended = conn.as_mut() => ended,
                () = stopped(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(%peer, error = %e, "HTTP connection ended");
            }
        });
    }
    // Every connection holds a permit: having them all back means all have ended.
    let all = u32::try_from(bounds.max_connections).unwrap_or(u32::MAX);
    let _ = connections.acquire_many(all).await;
}

/// Resolves once `shutdown` is true (at once if it already is).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

struct Guard {
    requests: Arc<Semaphore>,
    timeout: Duration,
}

/// Per request: a slot among `max_requests` (except `/health`, so that it tells the truth
/// under load) and `request_timeout` to read the request and produce the answer's head.
async fn bound_request(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let _slot = if request.uri().path() == "/health" {
        None
    } else {
        match guard.requests.clone().try_acquire_owned() {
            Ok(slot) => Some(slot),
            Err(_) => return plain(StatusCode::SERVICE_UNAVAILABLE, "busy, try again later"),
        }
    };
    // The route's pattern, not the path: a series per media token or transaction id would grow
    // without bound.
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    let response = match tokio::time::timeout(guard.timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            // The body may be half read: the connection cannot carry another request.
            let mut response = plain(StatusCode::REQUEST_TIMEOUT, "request timed out");
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
    };
    crate::core::metrics::http_request(&route, response.status().as_u16());
    response
}

fn plain(status: StatusCode, message: &'static str) -> Response {
    let errcode = if status == StatusCode::SERVICE_UNAVAILABLE { "M_LIMIT_EXCEEDED" } else { "M_UNKNOWN" };
    (status, axum::Json(serde_json::json!({"errcode": errcode, "error": message}))).into_response()
}
