//! The application service API the homeserver calls
//! (<https://spec.matrix.org/latest/application-service-api/>): transaction pushes, user and
//! alias queries, and ping. Every request must carry the `hs_token`, checked before the body
//! is read. The handlers reach the bridge through the [`Appservice`] port (implemented in
//! `bridge::http_in`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use ruma::events::AnyTimelineEvent;
use ruma::serde::Raw;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::core::ids::{BareJid, MatrixUserId};
use crate::core::inbound::MatrixIn;
use crate::core::txn_gaps::Verdict;
use crate::http::error::ApiError;
use crate::matrix::events::{translate, translate_ephemeral};

/// What the appservice API needs from the bridge.
#[async_trait::async_trait]
pub trait Appservice: Send + Sync {
    /// The token the homeserver authenticates with.
    fn hs_token(&self) -> &str;
    /// Largest transaction body accepted (`limits.max_transaction_bytes`).
    fn max_transaction_bytes(&self) -> usize;
    /// Whether a transaction may be taken now or transactions are missing before it (see
    /// `core::txn_gaps`); `None` when that cannot be told.
    fn on_transaction(&self, txn_id: &str, now: Instant) -> Option<Verdict>;
    /// A failed transaction: watch for gaps again.
    fn note_failed_transaction(&self);
    /// Store a transaction's events under `claim` (a repeat of a claim is a no-op).
    async fn accept_transaction(&self, claim: &str, events: Vec<MatrixIn>) -> crate::store::Result<()>;
    /// Ask the homeserver to ping us (it then retries its queue at once).
    async fn ping_homeserver(&self, transaction_id: &str) -> Result<(), crate::matrix::client::MatrixError>;
    /// The XMPP address a ghost in our namespace stands for, if it is one.
    fn jid_for_ghost(&self, user: &MatrixUserId) -> Option<Result<BareJid, crate::core::ids::MappingError>>;
    /// Whether the bridge serves this XMPP address's domain.
    async fn may_use_jid(&self, jid: &BareJid) -> bool;
    /// Register the ghost (with `displayname`) if it is not yet.
    async fn ensure_ghost(&self, ghost: &MatrixUserId, displayname: &str) -> Result<(), QueryError>;
    /// Open the room of the linked MUC `alias` names: `Ok(false)` if it names none.
    async fn open_linked_muc(&self, alias: &str) -> Result<bool, QueryError>;
}

/// Why the bridge could not answer a homeserver's query: the bridge's own error (this module
/// cannot name it), logged and given to the homeserver as text.
pub type QueryError = Box<dyn std::error::Error + Send + Sync>;

pub fn router(bridge: Arc<dyn Appservice>) -> Router {
    let limit = bridge.max_transaction_bytes();
    Router::new()
        .route("/_matrix/app/v1/transactions/{txn_id}", put(push_transaction))
        .route("/_matrix/app/v1/users/{user_id}", get(query_user))
        .route("/_matrix/app/v1/rooms/{alias}", get(query_alias))
        .route("/_matrix/app/v1/ping", post(ping))
        // Before any extractor of the routes above: an unauthenticated request is refused
        // before its body is read (issue #11, M4).
        .route_layer(axum::middleware::from_fn_with_state(bridge.clone(), require_hs_token))
        .route("/_matrix/app/{*rest}", any(unrecognized))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(bridge)
}

/// Check the homeserver's token: `Authorization: Bearer` or the legacy `access_token` query
/// parameter, compared in constant time.
fn authorize(bridge: &dyn Appservice, headers: &HeaderMap, query: &HashMap<String, String>) -> Result<(), ApiError> {
    let from_header = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let token = from_header.or(query.get("access_token").map(String::as_str)).ok_or(ApiError::MissingToken)?;
    if bool::from(token.as_bytes().ct_eq(bridge.hs_token().as_bytes())) { Ok(()) } else { Err(ApiError::BadToken) }
}

/// Every appservice route: the token is checked from the head of the request alone.
async fn require_hs_token(
    State(bridge): State<Arc<dyn Appservice>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let query: HashMap<String, String> = request
        .uri()
        .query()
        .map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    authorize(bridge.as_ref(), request.headers(), &query)?;
    Ok(next.run(request).await)
}

#[derive(Deserialize)]
struct PushBody {
    #[serde(default)]
    events: Vec<Raw<AnyTimelineEvent>>,
    /// MSC2409 ephemeral events (`receive_ephemeral: true`); older servers use the unstable key.
    #[serde(default)]
    ephemeral: Vec<serde_json::Value>,
    #[serde(default, rename = "de.sorunome.msc2409.ephemeral")]
    ephemeral_unstable: Vec<serde_json::Value>,
}

/// What a transaction is remembered by, so that a repeat is ignored: its id and its events. The
/// id alone is not enough: Synapse on SQLite numbers transactions from 1 again after a restart
/// (its sequence starts from the highest id still queued), so a new transaction can carry an id
/// the bridge has seen; a retry carries the same events again.
fn claim_key(txn_id: &str, event_ids: &[&str]) -> String {
    use sha2::Digest;
    let mut digest = sha2::Sha256::new();
    for id in event_ids {
        digest.update(id.as_bytes());
        digest.update(b"\n");
    }
    let digest = digest.finalize();
    format!("{txn_id}:{}", hex::encode(&digest[..8]))
}

/// A pushed transaction in the core's terms.
#[derive(Debug)]
pub struct Transaction {
    /// The events the bridge acts on, timeline first, then ephemeral ones.
    pub events: Vec<MatrixIn>,
    /// The ids of the timeline events, in order (what a retry is recognised by).
    pub event_ids: Vec<String>,
    /// Timeline events received, relevant or not.
    pub received: usize,
}

/// Read a transaction body: everything the handler does before touching the bridge's state
/// (the `matrix_txn` fuzz target feeds it hostile bodies).
pub fn read_transaction(body: &[u8]) -> Result<Transaction, serde_json::Error> {
    let mut push: PushBody = serde_json::from_slice(body)?;
    // NUL is valid JSON but can be neither stored (PostgreSQL text) nor sent (XML): one in a
    // file name once made every retry of its transaction fail, which stalled all Matrix input.
    // JSON can only spell it as an escape, so an event without one needs no second pass.
    for raw in &mut push.events {
        if may_hold_nul(raw.json().get().as_bytes())
            && let Ok(mut value) = serde_json::from_str::<serde_json::Value>(raw.json().get())
        {
            strip_nul(&mut value);
            if let Ok(clean) = serde_json::value::to_raw_value(&value) {
                *raw = Raw::from_json(clean);
            }
        }
    }
    let ephemeral = if push.ephemeral.is_empty() { &push.ephemeral_unstable } else { &push.ephemeral };
    let mut events: Vec<_> = push.events.iter().filter_map(translate).collect();
    events.extend(ephemeral.iter().flat_map(translate_ephemeral));
    let event_ids =
        push.events.iter().filter_map(|e| e.get_field::<&str>("event_id").ok().flatten()).map(str::to_owned).collect();
    Ok(Transaction { events, event_ids, received: push.events.len() })
}

/// Whether the JSON text may hold an escaped NUL (`\u0000`; a false positive only costs a pass).
fn may_hold_nul(body: &[u8]) -> bool {
    body.windows(6).any(|w| w == b"\\u0000")
}

/// Remove NUL from every string (keys too) of a JSON value.
fn strip_nul(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::String(s) if s.contains('\0') => s.retain(|c| c != '\0'),
        Value::Array(items) => items.iter_mut().for_each(strip_nul),
        Value::Object(map) => {
            let entries = std::mem::take(map);
            for (mut key, mut item) in entries {
                key.retain(|c| c != '\0');
                strip_nul(&mut item);
                map.insert(key, item);
            }
        }
        _ => {}
    }
}

async fn push_transaction(
    State(bridge): State<Arc<dyn Appservice>>,
    Path(txn_id): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    if txn_id.is_empty() || txn_id.len() > 255 {
        return Err(ApiError::BadRequest("transaction id must be 1 to 255 characters".into()));
    }
    let Transaction { events, event_ids, received } =
        read_transaction(&body).map_err(|e| ApiError::NotJson(format!("transaction body: {e}")))?;
    let ids: Vec<&str> = event_ids.iter().map(String::as_str).collect();
    // Event ids at debug level: enough to tell later whether an event ever reached the bridge.
    tracing::debug!(txn_id, received, relevant = events.len(), ?ids, "transaction");
    crate::core::metrics::transaction_received();
    let verdict = bridge.on_transaction(&txn_id, Instant::now());
    if let Some(Verdict::Refuse { missing_from, missing_to }) = verdict {
        tracing::info!(
            txn_id,
            missing_from,
            missing_to,
            "transactions missing after a recovery: refusing this one so that the homeserver sends its queue again, oldest first"
        );
        // A ping makes Synapse run the recovery it starts on our refusal at once, not in 2 s.
        let pinger = bridge.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if let Err(e) = pinger.ping_homeserver(&format!("ucb-gap-{}", crate::store::now_ms())).await {
                tracing::debug!(error = %e, "ping after a refused transaction");
            }
        });
        return Err(ApiError::Unavailable(format!("transaction {txn_id}: earlier transactions are missing")));
    }
    // Repeated whole while the database restarts; the claim makes a repeat after a lost commit
    // answer a no-op.
    let claim = claim_key(&txn_id, &ids);
    let accepted = crate::store::retrying("accept a transaction", || {
        let (bridge, claim, events) = (&bridge, &claim, events.clone());
        async move { bridge.accept_transaction(claim, events).await }
    })
    .await;
    let failed = |e: &crate::store::StoreError| {
        bridge.note_failed_transaction();
        ApiError::store(&format!("could not store transaction {txn_id}"), e)
    };
    match accepted {
        Ok(()) => {}
        // Something in it can never be stored (data the database refuses: the homeserver would
        // send it again forever and hold back every later transaction): take its events one by
        // one and drop only what fails on its own. Each has its own claim, so a repeat of this
        // is a no-op too. Any other failure is answered 5xx: the homeserver retries it.
        Err(e) if e.is_bad_data() && events.len() > 1 => {
            tracing::warn!(txn_id, error = %e, "transaction refused by the database; taking its events one by one");
            for (i, event) in events.into_iter().enumerate() {
                let one = format!("{claim}/{i}");
                if let Err(e) = bridge.accept_transaction(&one, vec![event.clone()]).await {
                    if !e.is_bad_data() {
                        return Err(failed(&e));
                    }
                    tracing::error!(txn_id, error = %e, ?event, "dropped a Matrix event the database cannot store");
                }
            }
        }
        Err(e) if e.is_bad_data() => {
            tracing::error!(txn_id, error = %e, ?events, "dropped a Matrix event the database cannot store");
        }
        Err(e) => return Err(failed(&e)),
    }
    Ok(axum::Json(serde_json::json!({})))
}

/// The homeserver asks whether a user in our namespace exists; ghosts of valid JIDs of people
/// the bridge serves do (anyone can make it ask, so no account is made for anyone else).
async fn query_user(
    State(bridge): State<Arc<dyn Appservice>>,
    Path(user_id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let user = MatrixUserId::parse(&user_id).map_err(|e| ApiError::NotFound(e.to_string()))?;
    match bridge.jid_for_ghost(&user) {
        Some(Ok(jid)) if !bridge.may_use_jid(&jid).await => {
            Err(ApiError::NotFound(format!("{jid} is on a domain this bridge does not serve")))
        }
        Some(Ok(jid)) => {
            bridge
                .ensure_ghost(&user, &jid.to_string())
                .await
                .map_err(|e| ApiError::Internal(format!("registering {user}: {e}")))?;
            Ok(axum::Json(serde_json::json!({})))
        }
        _ => Err(ApiError::NotFound(format!("{user_id} is not a bridged user"))),
    }
}

/// The homeserver asks about an alias in our namespace: `#_xmpp_<MUC>` opens a linked MUC's room.
async fn query_alias(
    State(bridge): State<Arc<dyn Appservice>>,
    Path(alias): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    match bridge.open_linked_muc(&alias).await {
        Ok(true) => Ok(axum::Json(serde_json::json!({}))),
        Ok(false) => Err(ApiError::NotFound(format!("{alias} is not an alias the bridge provides"))),
        Err(e) => {
            tracing::warn!(alias, error = %e, "cannot open a linked MUC's room");
            Err(ApiError::NotFound(format!("{alias}: {e}")))
        }
    }
}

/// The token was checked by `require_hs_token`; nothing else to do.
async fn ping() -> impl IntoResponse {
    axum::Json(serde_json::json!({}))
}

async fn unrecognized() -> ApiError {
    ApiError::Unrecognized
}

#[cfg(test)]
mod claim_tests {
    use super::claim_key;

    #[test]
    fn a_retry_matches_and_a_reused_id_with_other_events_does_not() {
        let first = claim_key("3", &["$a", "$b"]);
        assert_eq!(first, claim_key("3", &["$a", "$b"]), "a retry is the same transaction");
        assert_ne!(first, claim_key("3", &["$c"]), "Synapse reused the id after a restart");
        assert_ne!(first, claim_key("4", &["$a", "$b"]));
        assert_ne!(claim_key("3", &["$ab"]), claim_key("3", &["$a", "b"]));
    }
}

#[cfg(test)]
mod nul_tests {
    use super::read_transaction;

    #[test]
    fn nul_is_removed_from_every_string_of_a_transaction() {
        let body = br#"{"events":[{"type":"m.room.message","room_id":"!r:hs","sender":"@a:hs","event_id":"$e",
            "origin_server_ts":1,"content":{"msgtype":"m.file","body":"a\u0000b.txt","filename":"x\u0000.txt",
            "url":"mxc://hs/m"}}]}"#;
        let txn = read_transaction(body).unwrap();
        assert_eq!(txn.events.len(), 1);
        let debug = format!("{:?}", txn.events[0]);
        assert!(!debug.contains("\\0") && !debug.contains('\0'), "{debug}");
        assert!(debug.contains("name: \"x.txt\""), "{debug}");
    }

    #[test]
    fn a_lone_surrogate_elsewhere_does_not_spoil_the_transaction() {
        let body = br#"{"events":[{"type":"m.room.message","room_id":"!r:hs","sender":"@a:hs","event_id":"$s",
            "origin_server_ts":1,"content":{"msgtype":"m.text","body":"\ud800"}},
            {"type":"m.room.message","room_id":"!r:hs","sender":"@a:hs","event_id":"$e",
            "origin_server_ts":1,"content":{"msgtype":"m.text","body":"a\u0000b"}}]}"#;
        let txn = read_transaction(body).unwrap();
        let debug = format!("{:?}", txn.events);
        assert!(!debug.contains("\\0") && debug.contains("\"ab\""), "{debug}");
    }

    #[test]
    fn an_escaped_backslash_before_u0000_is_kept() {
        let body = br#"{"events":[{"type":"m.room.message","room_id":"!r:hs","sender":"@a:hs","event_id":"$e",
            "origin_server_ts":1,"content":{"msgtype":"m.text","body":"C:\\u0000dir"}}]}"#;
        let debug = format!("{:?}", read_transaction(body).unwrap().events);
        assert!(debug.contains(r"C:\\u0000dir"), "{debug}");
    }
}
