//! Missed-call endpoints (`src/calls/`):
//! - `POST /calls/events`: the telephony webhook (schema: `docs/calls-webhook.md`), signed with
//!   HMAC-SHA256; answered 200 only after the events are stored;
//! - `GET /calls/journal?user=&from=&to=&type=&format=json|csv`: the call journal, with
//!   `Authorization: Bearer <missed_calls.journal_token>` (everyone's), or a person's own token
//!   (`journal token new`, stored hashed), which reads only their rows.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::calls::service::CallsService;
use crate::calls::webhook;
use crate::http::error::ApiError;
use crate::store::{JournalQuery, JournalRow, NewJournalRow};

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

/// Whose rows a request may read.
enum Reader {
    /// The admins' token: anyone's.
    Everyone,
    /// A person's own token: their line's rows only.
    Line(String),
}

/// A token as stored: its SHA-256, hex (a leaked database does not leak working tokens).
pub fn token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Longest bearer token looked up (ours are 69 characters).
const MAX_TOKEN: usize = 256;

async fn authorize(service: &CallsService, headers: &HeaderMap) -> Result<Reader, ApiError> {
    let given = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| ApiError::Unauthorized("missing bearer token".into()))?;
    if let Some(expected) = service.settings.journal_token.as_deref()
        && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
    {
        return Ok(Reader::Everyone);
    }
    if given.len() > MAX_TOKEN {
        return Err(ApiError::Unauthorized("invalid bearer token".into()));
    }
    // The lookup is by hash: the database compares digests, never the secret itself.
    match service.journal_token_line(&token_hash(given)).await {
        Ok(Some(Some(line))) => Ok(Reader::Line(line.to_string())),
        Ok(Some(None)) => Err(ApiError::Forbidden("this token's owner has no phone line in the journal".into())),
        Ok(None) => Err(ApiError::Unauthorized("invalid bearer token".into())),
        Err(e) => Err(ApiError::store("could not check the token", &e)),
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
    let reader = authorize(&service, &headers).await?;
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
    if let Reader::Line(line) = reader {
        match &q.user {
            Some(asked) if *asked != line => {
                return Err(ApiError::Forbidden("a personal journal token reads only its owner's rows".into()));
            }
            _ => q.user = Some(line),
        }
    }
    let rows = service.journal(&q).await.map_err(|e| ApiError::Internal(format!("reading the journal: {e}")))?;
    match query.get("format").map(String::as_str).unwrap_or("json") {
        "json" => {
            Ok(axum::Json(json!({"calls": rows.iter().map(JournalOut::json).collect::<Vec<_>>()})).into_response())
        }
        "csv" => {
            let csv = to_csv(&rows).map_err(|e| ApiError::Internal(format!("writing CSV: {e}")))?;
            Ok((StatusCode::OK, [(CONTENT_TYPE, "text/csv; charset=utf-8")], csv).into_response())
        }
        _ => Err(ApiError::BadRequest("format: expected json or csv".into())),
    }
}

/// One journal row as both formats write it: JSON and CSV share the columns by construction.
/// `C` is how the channel list is written (a JSON array; one comma-separated CSV cell).
#[derive(Serialize)]
struct JournalOut<'a, C> {
    id: i64,
    user: Cow<'a, str>,
    #[serde(rename = "type")]
    kind: Cow<'a, str>,
    call_id: Cow<'a, str>,
    direction: Cow<'a, str>,
    number: Option<Cow<'a, str>>,
    name: Option<Cow<'a, str>>,
    contact_id: Option<Cow<'a, str>>,
    extension: Option<Cow<'a, str>>,
    started_at: i64,
    ended_at: i64,
    ring_seconds: i64,
    answered_by: Option<Cow<'a, str>>,
    notified: bool,
    channels: C,
    skip_reason: Option<Cow<'a, str>>,
    processed: bool,
    processed_by: Option<Cow<'a, str>>,
    processed_at: Option<i64>,
}

impl<'a, C> JournalOut<'a, C> {
    /// The row with every text cell passed through `text`.
    fn new(r: &'a JournalRow, text: fn(&'a str) -> Cow<'a, str>, channels: C) -> Self {
        let e = &r.entry;
        let opt = |v: &'a Option<String>| v.as_deref().map(text);
        JournalOut {
            id: r.id,
            user: text(&e.user),
            kind: text(&e.kind),
            call_id: text(&e.call_id),
            direction: text(&e.direction),
            number: opt(&e.number),
            name: opt(&e.name),
            contact_id: opt(&e.contact_id),
            extension: opt(&e.extension),
            started_at: e.started_at,
            ended_at: e.ended_at,
            ring_seconds: e.ring_ms / 1000,
            answered_by: opt(&e.answered_by),
            notified: e.notified,
            channels,
            skip_reason: opt(&e.skip_reason),
            processed: r.processed,
            processed_by: opt(&r.processed_by),
            processed_at: r.processed_at,
        }
    }
}

impl<'a> JournalOut<'a, Vec<&'a str>> {
    fn json(r: &'a JournalRow) -> Self {
        Self::new(r, Cow::Borrowed, r.entry.channels.split(',').filter(|c| !c.is_empty()).collect())
    }
}

impl<'a> JournalOut<'a, Cow<'a, str>> {
    /// Every text cell goes through `csv_safe`: all of them can carry what a caller, the PBX or
    /// the webhook sender chose (names, numbers, extensions, ids, channel lists, reasons).
    fn csv(r: &'a JournalRow) -> Self {
        Self::new(r, csv_safe, csv_safe(&r.entry.channels))
    }
}

fn to_csv(rows: &[JournalRow]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(JournalOut::csv(r))?;
    }
    if rows.is_empty() {
        // The header comes with the first row; without rows, take it from a blank one.
        let blank = JournalRow {
            id: 0,
            entry: NewJournalRow::default(),
            processed: false,
            processed_by: None,
            processed_at: None,
        };
        let mut probe = csv::Writer::from_writer(Vec::new());
        probe.serialize(JournalOut::csv(&blank))?;
        let probe = probe.into_inner().map_err(|e| csv::Error::from(e.into_error()))?;
        let header_end = probe.iter().position(|&b| b == b'\n').map_or(probe.len(), |i| i + 1);
        return Ok(probe[..header_end].to_vec());
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// Defuse spreadsheet formulas (CSV injection) in caller-controlled fields. A `+` that starts a
/// phone number is kept: `+49…` is a number, not a formula, in every spreadsheet we know.
pub(crate) fn csv_safe(value: &str) -> Cow<'_, str> {
    let starts_number = value
        .strip_prefix('+')
        .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit() || c == ' '));
    if value.starts_with(['=', '-', '@', '+', '\t', '\r']) && !starts_number {
        Cow::Owned(format!("'{value}"))
    } else {
        Cow::Borrowed(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let header = reader.headers().expect("a header").clone();
        for (name, cell) in header.iter().zip(record.iter()) {
            assert!(!cell.starts_with(['=', '-', '@', '\t', '\r']), "{name}: {cell:?}");
            assert!(!cell.starts_with('+') || cell == "+4930123456", "{name}: {cell:?}");
        }
        // A phone number stays a number.
        assert_eq!(csv_safe("+49 30 123456"), "+49 30 123456");
        assert_eq!(csv_safe("+1+1"), "'+1+1");
        assert_eq!(csv_safe("+"), "'+");
    }

    #[test]
    fn csv_has_the_json_columns() {
        let row = JournalRow {
            id: 7,
            entry: NewJournalRow {
                user: "ben".into(),
                kind: "missed".into(),
                call_id: "c1".into(),
                direction: "inbound".into(),
                number: Some("+4930123456".into()),
                number_key: String::new(),
                name: Some("Ada".into()),
                contact_id: Some("uid-1".into()),
                extension: Some("202".into()),
                started_at: 1,
                ended_at: 2,
                ring_ms: 3000,
                answered_by: None,
                notified: true,
                channels: "email,chat".into(),
                skip_reason: None,
            },
            processed: false,
            processed_by: None,
            processed_at: None,
        };
        let json = serde_json::to_value(JournalOut::json(&row)).expect("serialises");
        let json = json.as_object().expect("an object");
        let csv = String::from_utf8(to_csv(std::slice::from_ref(&row)).expect("writes")).expect("UTF-8");
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        let header: Vec<String> = reader.headers().expect("a header").iter().map(str::to_owned).collect();
        let mut sorted = header.clone();
        sorted.sort();
        assert_eq!(sorted, json.keys().cloned().collect::<Vec<_>>(), "the same columns");
        let record = reader.records().next().expect("one row").expect("parses");
        let cell = |name: &str| record.get(header.iter().position(|h| h == name).expect(name)).expect(name);
        assert_eq!((cell("contact_id"), cell("channels"), cell("ring_seconds")), ("uid-1", "email,chat", "3"));
        assert_eq!(json["channels"], serde_json::json!(["email", "chat"]));
        assert_eq!(json["type"], "missed");
        // No rows: still the header.
        let empty = String::from_utf8(to_csv(&[]).expect("writes")).expect("UTF-8");
        assert_eq!(empty.trim_end(), header.join(","));
    }
}
