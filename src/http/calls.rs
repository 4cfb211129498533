//! Missed-call endpoints (`src/calls/`):
//! - `POST /calls/events`: the telephony webhook (schema: `docs/calls-webhook.md`), signed with
//!   HMAC-SHA256; answered 200 only after the events are stored;
//! - `GET /calls/journal?user=&from=&to=&type=&format=json|csv`: the call journal, with
//!   `Authorization: Bearer <missed_calls.journal_token>`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::calls::service::CallsService;
use crate::calls::webhook;
use crate::http::error::ApiError;
use crate::store::{JournalQuery, JournalRow};

/// Most journal rows one request returns.
const MAX_ROWS: i64 = 10_000;

pub fn router(service: Arc<CallsService>) -> Router {
    Router::new()
        .route("/calls/events", post(events))
        // A little over the webhook's own limit, so the check in `webhook::accept` answers.
        .layer(DefaultBodyLimit::max(webhook::MAX_BODY_BYTES + 1024))
        .route("/calls/journal", get(journal))
        .with_state(service)
}

async fn events(
    State(service): State<Arc<CallsService>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let now = crate::store::now_ms() / 1000;
    let accepted = webhook::accept(
        service.settings.webhook.secret.as_bytes(),
        header(webhook::TIMESTAMP_HEADER),
        header(webhook::SIGNATURE_HEADER),
        &body,
        now,
        service.settings.webhook.replay_window_secs,
    );
    let events = match accepted {
        Ok(events) => events,
        Err(e) if e.is_auth() => {
            tracing::warn!(error = %e, "call webhook refused");
            return Err(ApiError::Unauthorized(format!("call webhook: {e}")));
        }
        Err(e) => return Err(ApiError::BadRequest(format!("call webhook: {e}"))),
    };
    let count = events.len();
    service.accept(events).await.map_err(|e| ApiError::store("could not store call events", &e))?;
    Ok(axum::Json(json!({"accepted": count})).into_response())
}

fn authorize(service: &CallsService, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = service.settings.journal_token.as_deref() else {
        return Err(ApiError::NotFound("the call journal endpoint is off (missed_calls.journal_token)".into()));
    };
    let given = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| ApiError::Unauthorized("missing bearer token".into()))?;
    if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized("invalid bearer token".into()))
    }
}

/// A time bound: Unix milliseconds, an RFC 3339 time, or a date (`2025-01-31`, midnight UTC).
fn parse_time(key: &str, value: &str) -> Result<i64, ApiError> {
    let bad = || ApiError::BadRequest(format!("{key}: expected Unix milliseconds, RFC 3339 or YYYY-MM-DD"));
    if let Ok(ms) = value.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(t.timestamp_millis());
    }
    let date = chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| bad())?;
    Ok(date.and_hms_opt(0, 0, 0).ok_or_else(bad)?.and_utc().timestamp_millis())
}

async fn journal(
    State(service): State<Arc<CallsService>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&service, &headers)?;
    let mut q = JournalQuery { limit: MAX_ROWS, ..Default::default() };
    for (key, value) in &query {
        match key.as_str() {
            "user" => q.user = Some(value.clone()),
            "from" => q.from = Some(parse_time("from", value)?),
            "to" => q.to = Some(parse_time("to", value)?),
            "type" => match value.as_str() {
                "missed" | "answered" | "outgoing" => q.kind = Some(value.clone()),
                _ => return Err(ApiError::BadRequest("type: expected missed, answered or outgoing".into())),
            },
            "limit" => {
                q.limit = value
                    .parse::<i64>()
                    .ok()
                    .filter(|l| (1..=MAX_ROWS).contains(l))
                    .ok_or_else(|| ApiError::BadRequest(format!("limit: expected 1 to {MAX_ROWS}")))?
            }
            "format" => {}
            other => return Err(ApiError::BadRequest(format!("unknown parameter {other}"))),
        }
    }
    let rows = service.journal(&q).await.map_err(|e| ApiError::Internal(format!("reading the journal: {e}")))?;
    match query.get("format").map(String::as_str).unwrap_or("json") {
        "json" => Ok(axum::Json(json!({"calls": rows.iter().map(row_json).collect::<Vec<_>>()})).into_response()),
        "csv" => {
            let csv = to_csv(&rows).map_err(|e| ApiError::Internal(format!("writing CSV: {e}")))?;
            Ok((StatusCode::OK, [(CONTENT_TYPE, "text/csv; charset=utf-8")], csv).into_response())
        }
        _ => Err(ApiError::BadRequest("format: expected json or csv".into())),
    }
}

fn row_json(r: &JournalRow) -> serde_json::Value {
    let e = &r.entry;
    json!({
        "id": r.id,
        "user": e.user,
        "type": e.kind,
        "call_id": e.call_id,
        "direction": e.direction,
        "number": e.number,
        "name": e.name,
        "contact_id": e.contact_id,
        "extension": e.extension,
        "started_at": e.started_at,
        "ended_at": e.ended_at,
        "ring_seconds": e.ring_ms / 1000,
        "answered_by": e.answered_by,
        "notified": e.notified,
        "channels": e.channels.split(',').filter(|c| !c.is_empty()).collect::<Vec<_>>(),
        "skip_reason": e.skip_reason,
        "processed": r.processed,
        "processed_by": r.processed_by,
        "processed_at": r.processed_at,
    })
}

const CSV_HEADER: [&str; 18] = [
    "id",
    "user",
    "type",
    "call_id",
    "direction",
    "number",
    "name",
    "extension",
    "started_at",
    "ended_at",
    "ring_seconds",
    "answered_by",
    "notified",
    "channels",
    "skip_reason",
    "processed",
    "processed_by",
    "processed_at",
];

fn to_csv(rows: &[JournalRow]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_HEADER)?;
    // Every text column goes through `csv_safe`: all of them can carry what a caller, the PBX
    // or the webhook sender chose (names, numbers, extensions, ids, channel lists, reasons).
    let text = |v: &str| csv_safe(v);
    let opt = |v: &Option<String>| csv_safe(v.as_deref().unwrap_or_default());
    for r in rows {
        let e = &r.entry;
        w.write_record([
            r.id.to_string(),
            text(&e.user),
            text(&e.kind),
            text(&e.call_id),
            text(&e.direction),
            opt(&e.number),
            opt(&e.name),
            opt(&e.extension),
            e.started_at.to_string(),
            e.ended_at.to_string(),
            (e.ring_ms / 1000).to_string(),
            opt(&e.answered_by),
            e.notified.to_string(),
            text(&e.channels),
            opt(&e.skip_reason),
            r.processed.to_string(),
            opt(&r.processed_by),
            r.processed_at.map(|t| t.to_string()).unwrap_or_default(),
        ])?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// Defuse spreadsheet formulas (CSV injection) in caller-controlled fields. A `+` that starts a
/// phone number is kept: `+49…` is a number, not a formula, in every spreadsheet we know.
fn csv_safe(value: &str) -> String {
    let starts_number = value
        .strip_prefix('+')
        .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit() || c == ' '));
    if value.starts_with(['=', '-', '@', '+', '\t', '\r']) && !starts_number {
        format!("'{value}")
    } else {
        value.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewJournalRow;

    #[test]
    fn every_text_column_of_the_csv_is_defused() {
        let evil = |c: &str| Some(format!("{c}cmd|' /C calc'!A0"));
        let row = JournalRow {
            id: 1,
            entry: NewJournalRow {
                user: "=user".into(),
                kind: "missed".into(),
                call_id: "@call".into(),
                direction: "inbound".into(),
                number: Some("+4930123456".into()),
                number_key: String::new(),
                name: evil("="),
                contact_id: None,
                extension: evil("+"),
                started_at: 1,
                ended_at: 2,
                ring_ms: 3000,
                answered_by: evil("-"),
                notified: false,
                channels: "\tchat".into(),
                skip_reason: evil("\r"),
            },
            processed: false,
            processed_by: evil("@"),
            processed_at: None,
        };
        let csv = String::from_utf8(to_csv(&[row]).expect("writes")).expect("UTF-8");
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        let record = reader.records().next().expect("one row").expect("parses");
        for (name, cell) in CSV_HEADER.iter().zip(record.iter()) {
            assert!(!cell.starts_with(['=', '-', '@', '\t', '\r']), "{name}: {cell:?}");
            assert!(!cell.starts_with('+') || cell == "+4930123456", "{name}: {cell:?}");
        }
        // A phone number stays a number.
        assert_eq!(csv_safe("+49 30 123456"), "+49 30 123456");
        assert_eq!(csv_safe("+1+1"), "'+1+1");
        assert_eq!(csv_safe("+"), "'+");
    }
}
