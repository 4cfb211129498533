//! SMS gateway endpoints (`src/sms/`). Every route authenticates with `sms.inbound_secret`:
//! - Kannel: `GET|POST /sms/kannel/mo?key=SECRET&from=%p&to=%P&text=%b&coding=%c&charset=%C&id=%I`
//!   (the smsbox `sms-service` get-url) and `/sms/kannel/dlr?key=SECRET&ref=…&status=%d` (the
//!   dlr-url the bridge sends with each SMS);
//! - generic gateways: `POST /sms/http/mo` and `POST /sms/http/dlr?ref=…` with JSON or form fields
//!   named in `sms.http.inbound` and the secret in the header `sms.http.inbound.secret_header`.
//!
//! 200 only after the message or report is stored; 401 without the secret; 400 for bad input;
//! 503 when it cannot be stored yet (the gateway retries).
//!
//! The handlers reach the bridge through the [`SmsGateway`] port (implemented in `bridge::http_in`).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use axum::routing::{get, post};

use crate::http::error::ApiError;
use crate::sms::SmsService;
use crate::sms::http_provider::{dlr_status as http_dlr_status, inbound_fields, secret_ok};
use crate::sms::inbound::{self, InboundError, IncomingSms};
use crate::sms::kannel::dlr_status as kannel_dlr_status;
use crate::sms::provider::DlrStatus;

/// What the SMS gateways' callbacks need from the bridge.
#[async_trait::async_trait]
pub trait SmsGateway: Send + Sync {
    /// The SMS service, once SMS is on.
    fn sms(&self) -> Option<&Arc<SmsService>>;
    /// Store an incoming SMS from `provider`; `Ok(false)` when it cannot be taken yet (no control room).
    async fn accept_incoming_sms(&self, provider: &str, sms: IncomingSms) -> crate::store::Result<bool>;
    /// Record a delivery report; `Ok(false)` for an SMS the bridge does not know.
    async fn sms_delivery_report(
        &self,
        id: &str,
        part: Option<&str>,
        status: DlrStatus,
        detail: &str,
    ) -> crate::store::Result<bool>;
}

/// Largest body or query string accepted (a 255-part SMS, URL-encoded, fits).
const MAX_REQUEST_BYTES: usize = 160 * 1024;

pub fn router(bridge: Arc<dyn SmsGateway>) -> Router {
    Router::new()
        .route("/sms/kannel/mo", get(kannel_mo).post(kannel_mo))
        .route("/sms/kannel/dlr", get(kannel_dlr).post(kannel_dlr))
        .route("/sms/http/mo", post(http_mo))
        .route("/sms/http/dlr", post(http_dlr))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(bridge)
}

fn bad(e: InboundError) -> ApiError {
    ApiError::BadRequest(format!("sms: {e}"))
}

fn internal(e: crate::store::StoreError) -> ApiError {
    ApiError::store("could not store the SMS", &e)
}

/// The query string's parameters, after checking `key`.
fn kannel_params(
    bridge: &dyn SmsGateway,
    query: Option<String>,
) -> Result<std::collections::HashMap<String, Vec<u8>>, ApiError> {
    let Some(service) = bridge.sms() else { return Err(ApiError::NotFound("SMS is off".into())) };
    let query = query.unwrap_or_default();
    if query.len() > MAX_REQUEST_BYTES {
        return Err(ApiError::BadRequest("sms: query string too long".into()));
    }
    let params = inbound::query_params(&query).map_err(bad)?;
    let key = params.get("key").and_then(|k| std::str::from_utf8(k).ok());
    if !secret_ok(key, &service.settings.inbound_secret) {
        tracing::warn!("SMS gateway call without the right key refused");
        return Err(ApiError::Unauthorized("sms: missing or wrong key".into()));
    }
    Ok(params)
}

async fn kannel_mo(
    State(bridge): State<Arc<dyn SmsGateway>>,
    RawQuery(query): RawQuery,
) -> Result<&'static str, ApiError> {
    let params = kannel_params(bridge.as_ref(), query)?;
    let region = bridge.sms().map(|s| s.region).ok_or_else(|| ApiError::NotFound("SMS is off".into()))?;
    let sms = inbound::kannel_mo(&params, region).map_err(bad)?;
    accept(&bridge, "kannel", sms).await
}

async fn accept(bridge: &Arc<dyn SmsGateway>, provider: &str, sms: IncomingSms) -> Result<&'static str, ApiError> {
    if bridge.accept_incoming_sms(provider, sms).await.map_err(internal)? {
        Ok("OK")
    } else {
        Err(ApiError::Internal("the control room is not ready; try again".into()))
    }
}

async fn kannel_dlr(
    State(bridge): State<Arc<dyn SmsGateway>>,
    RawQuery(query): RawQuery,
) -> Result<&'static str, ApiError> {
    let params = kannel_params(bridge.as_ref(), query)?;
    let field = |k: &str| params.get(k).map(|v| String::from_utf8_lossy(v).into_owned());
    let reference = field("ref").ok_or(bad(InboundError::Missing("ref")))?;
    let status = field("status").as_deref().and_then(kannel_dlr_status).ok_or(bad(InboundError::Missing("status")))?;
    // One report per part of a concatenated SMS, each naming its part by the SMSC's id (`%F`).
    let part = field("part");
    report(&bridge, &reference, part.as_deref(), status, field("reply").unwrap_or_default()).await
}

async fn report(
    bridge: &Arc<dyn SmsGateway>,
    id: &str,
    part: Option<&str>,
    status: DlrStatus,
    detail: String,
) -> Result<&'static str, ApiError> {
    if bridge.sms_delivery_report(id, part, status, &detail).await.map_err(internal)? {
        Ok("OK")
    } else {
        // Perhaps reported before the bridge recorded the gateway's acceptance: ask for a retry.
        Err(ApiError::Internal(format!("unknown SMS {id}")))
    }
}

/// The fields of a generic gateway's call, after checking its secret header.
fn http_fields(
    bridge: &dyn SmsGateway,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<std::collections::BTreeMap<String, String>, ApiError> {
    let Some(service) = bridge.sms() else { return Err(ApiError::NotFound("SMS is off".into())) };
    let Some(http) = &service.settings.http else {
        return Err(ApiError::NotFound("the generic HTTP SMS provider is not configured".into()));
    };
    let given = headers.get(http.inbound.secret_header.as_str()).and_then(|v| v.to_str().ok());
    if !secret_ok(given, &service.settings.inbound_secret) {
        tracing::warn!("SMS gateway call without the right secret refused");
        return Err(ApiError::Unauthorized("sms: missing or wrong secret".into()));
    }
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    inbound_fields(content_type, body).map_err(|e| ApiError::BadRequest(format!("sms: {e}")))
}

async fn http_mo(
    State(bridge): State<Arc<dyn SmsGateway>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<&'static str, ApiError> {
    let fields = http_fields(bridge.as_ref(), &headers, &body)?;
    let Some(service) = bridge.sms() else { return Err(ApiError::NotFound("SMS is off".into())) };
    let Some(names) = service.settings.http.as_ref().map(|h| &h.inbound) else {
        return Err(ApiError::NotFound("SMS is off".into()));
    };
    let get = |k: &String| fields.get(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let from_raw = get(&names.from).ok_or(bad(InboundError::Missing("from")))?;
    let from = service.normalize(&from_raw).ok_or(bad(InboundError::BadNumber(from_raw.clone())))?;
    let text = fields.get(&names.text).cloned().ok_or(bad(InboundError::Missing("text")))?;
    if text.len() > inbound::MAX_TEXT_BYTES {
        return Err(bad(InboundError::TooLong("text".into())));
    }
    let to = get(&names.to).and_then(|t| service.normalize(&t));
    let id = match get(&names.id) {
        Some(id) if id.len() <= 256 => id,
        Some(_) => return Err(bad(InboundError::TooLong("id".into()))),
        None => inbound::derived_id(&[&from_raw, to.as_ref().map_or("", |t| t.as_str()), &text]),
    };
    accept(&bridge, "http", IncomingSms { from, to, text, id }).await
}

async fn http_dlr(
    State(bridge): State<Arc<dyn SmsGateway>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<&'static str, ApiError> {
    let fields = http_fields(bridge.as_ref(), &headers, &body)?;
    let Some(names) = bridge.sms().and_then(|s| s.settings.http.as_ref()).map(|h| h.inbound.clone()) else {
        return Err(ApiError::NotFound("SMS is off".into()));
    };
    // Our reference from the DLR URL's query, else the field the gateway names.
    let from_query = query
        .as_deref()
        .and_then(|q| url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "ref").map(|(_, v)| v.into_owned()));
    let id =
        from_query.or_else(|| fields.get(&names.reference).cloned()).ok_or(bad(InboundError::Missing("reference")))?;
    if id.len() > 256 {
        return Err(bad(InboundError::TooLong("reference".into())));
    }
    let status = fields.get(&names.status).ok_or(bad(InboundError::Missing("status")))?;
    report(&bridge, &id, None, http_dlr_status(&names, status), status.clone()).await
}
