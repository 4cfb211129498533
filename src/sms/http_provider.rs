//! A generic HTTP SMS gateway, described by the config (`sms.http`): URL, method, form or JSON
//! fields with the gateway's names, constant extra fields, and authentication (basic, bearer, a
//! header). 2xx means accepted (the message id read from the JSON answer when
//! `response_id_field` names it); 408, 429 and 5xx are retried; other 4xx are refusals.
//!
//! Inbound (`/sms/http/mo`, `/sms/http/dlr`): the gateway posts JSON or form fields, named in
//! `sms.http.inbound`, with `sms.inbound_secret` in the header `inbound.secret_header`.

use std::collections::BTreeMap;
use std::time::Duration;

use super::config::{HttpAuth, HttpEncoding, HttpInbound, HttpMethod, HttpProvider};
use crate::core::outbox::DeliveryError;
use crate::core::setup::{SetupContext as _, SetupError};
use crate::sms::provider::{Accepted, DlrStatus, Outgoing, SendFuture, SmsProvider, short, transport_error};

pub struct HttpGateway {
    config: HttpProvider,
    http: reqwest::Client,
}

impl HttpGateway {
    pub fn new(config: HttpProvider) -> Result<Self, SetupError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_secs))
            .build()
            .setup("sms.http: the HTTP client")?;
        Ok(Self { config, http })
    }

    /// The request for one message (built, not sent: unit tests look at it).
    pub fn request(&self, sms: &Outgoing<'_>) -> Result<reqwest::Request, DeliveryError> {
        let c = &self.config;
        let mut fields: BTreeMap<&str, &str> = c.extra.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        // An empty field name leaves the field out.
        let named = [
            (&c.fields.from, Some(sms.from)),
            (&c.fields.to, Some(sms.to.as_str())),
            (&c.fields.text, Some(sms.text)),
            (&c.fields.reference, Some(sms.reference)),
            (&c.fields.dlr_url, sms.dlr_url.as_deref()),
        ];
        for (key, value) in named {
            if let (false, Some(v)) = (key.is_empty(), value) {
                fields.insert(key.as_str(), v);
            }
        }
        let bad = |e: String| DeliveryError::Permanent(format!("sms.http: {e}"));
        let mut url = url::Url::parse(&c.url).map_err(|e| bad(e.to_string()))?;
        let builder = match c.method {
            HttpMethod::Get => {
                url.query_pairs_mut().extend_pairs(fields.iter());
                self.http.get(url)
            }
            HttpMethod::Post => match c.encoding {
                HttpEncoding::Form => {
                    let body =
                        url::form_urlencoded::Serializer::new(String::new()).extend_pairs(fields.iter()).finish();
                    self.http
                        .post(url)
                        .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .body(body)
                }
                HttpEncoding::Json => self.http.post(url).json(&fields),
            },
        };
        let builder = match &c.auth {
            HttpAuth::None => builder,
            HttpAuth::Basic { username, password } => builder.basic_auth(username, Some(password)),
            HttpAuth::Bearer { token } => builder.bearer_auth(token),
            HttpAuth::Header { name, value } => builder.header(name.as_str(), value.as_str()),
        };
        builder.build().map_err(|e| bad(e.to_string()))
    }

    /// Classify the gateway's answer.
    pub fn interpret(&self, status: u16, body: &str) -> Result<Accepted, DeliveryError> {
        match status {
            200..=299 => {
                let provider_id = self.config.response_id_field.as_deref().and_then(|field| {
                    let json: serde_json::Value = serde_json::from_str(body).ok()?;
                    match json.get(field)? {
                        serde_json::Value::String(s) => Some(s.clone()),
                        serde_json::Value::Number(n) => Some(n.to_string()),
                        _ => None,
                    }
                });
                Ok(Accepted { provider_id, queued: false })
            }
            408 | 429 | 500..=599 => {
                Err(DeliveryError::Transient(format!("SMS gateway answered {status} {}", short(body))))
            }
            _ => {
                Err(DeliveryError::Permanent(format!("the SMS gateway refused the message: {status} {}", short(body))))
            }
        }
    }
}

impl SmsProvider for HttpGateway {
    fn name(&self) -> &'static str {
        "http"
    }

    fn send<'a>(&'a self, sms: &'a Outgoing<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            let request = self.request(sms)?;
            let response = self.http.execute(request).await.map_err(|e| transport_error("SMS gateway", e))?;
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            self.interpret(status, &body)
        })
    }
}

/// Fields of an inbound request, from a JSON object or a form body (bounded by the router).
pub fn inbound_fields(content_type: Option<&str>, body: &[u8]) -> Result<BTreeMap<String, String>, FieldsError> {
    // NUL can be neither stored (PostgreSQL text) nor carried (XML).
    let mut fields = read_fields(content_type, body)?;
    fields.values_mut().for_each(|v| v.retain(|c| c != '\0'));
    Ok(fields)
}

/// Why an inbound request's body cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum FieldsError {
    #[error("not a JSON object: {0}")]
    NotAJsonObject(#[from] serde_json::Error),
}

fn read_fields(content_type: Option<&str>, body: &[u8]) -> Result<BTreeMap<String, String>, FieldsError> {
    if content_type.is_some_and(|t| t.starts_with("application/json")) {
        let json: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(body)?;
        return Ok(json
            .into_iter()
            .filter_map(|(k, v)| match v {
                serde_json::Value::String(s) => Some((k, s)),
                serde_json::Value::Number(n) => Some((k, n.to_string())),
                _ => None,
            })
            .collect());
    }
    Ok(url::form_urlencoded::parse(body).into_owned().collect())
}

/// The status of a generic delivery report, by the configured value lists (case-insensitive).
pub fn dlr_status(inbound: &HttpInbound, value: &str) -> DlrStatus {
    let is = |list: &[String]| list.iter().any(|v| v.eq_ignore_ascii_case(value.trim()));
    if is(&inbound.delivered) {
        DlrStatus::Delivered
    } else if is(&inbound.failed) {
        DlrStatus::Failed
    } else {
        DlrStatus::Pending
    }
}

/// Constant-time comparison of the secret a request carries.
pub fn secret_ok(given: Option<&str>, expected: &str) -> bool {
    use subtle::ConstantTimeEq;
    given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(expected.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ids::PhoneNumber;
    use crate::sms::config::HttpFields;
    use crate::sms::segment::Coding;

    fn gateway(method: HttpMethod, encoding: HttpEncoding, auth: HttpAuth) -> HttpGateway {
        // As in `main`: reqwest needs a rustls provider to build a client.
        let _ = rustls::crypto::ring::default_provider().install_default();
        HttpGateway::new(HttpProvider {
            url: "https://gw.example/api/sms?v=2".into(),
            method,
            encoding,
            fields: HttpFields {
                from: "sender".into(),
                to: "recipient".into(),
                text: "message".into(),
                reference: "client_ref".into(),
                dlr_url: "callback".into(),
            },
            extra: [("account".to_owned(), "42".to_owned())].into(),
            auth,
            response_id_field: Some("id".into()),
            timeout_secs: 5,
            inbound: HttpInbound::default(),
        })
        .unwrap()
    }

    fn sms(to: &PhoneNumber) -> Outgoing<'_> {
        Outgoing {
            reference: "ucb-1-9",
            from: "+4930555000",
            to,
            text: "Hallo & tschüss",
            coding: Coding::Gsm7,
            dlr_url: Some("http://127.0.0.1:9090/sms/http/dlr".into()),
        }
    }

    #[test]
    fn form_post_with_basic_auth() {
        let to = PhoneNumber::parse("+4917612345678").unwrap();
        let g = gateway(
            HttpMethod::Post,
            HttpEncoding::Form,
            HttpAuth::Basic { username: "u".into(), password: "p".into() },
        );
        let r = g.request(&sms(&to)).unwrap();
        assert_eq!(r.method(), "POST");
        assert_eq!(r.url().as_str(), "https://gw.example/api/sms?v=2");
        assert_eq!(r.headers()["authorization"], "Basic dTpw");
        let body = std::str::from_utf8(r.body().unwrap().as_bytes().unwrap()).unwrap();
        let fields: BTreeMap<String, String> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
        assert_eq!(fields["recipient"], "+4917612345678");
        assert_eq!(fields["sender"], "+4930555000");
        assert_eq!(fields["message"], "Hallo & tschüss");
        assert_eq!(fields["client_ref"], "ucb-1-9");
        assert_eq!(fields["callback"], "http://127.0.0.1:9090/sms/http/dlr");
        assert_eq!(fields["account"], "42");
    }

    #[test]
    fn json_post_with_bearer_and_get_with_header() {
        let to = PhoneNumber::parse("+4917612345678").unwrap();
        let g = gateway(HttpMethod::Post, HttpEncoding::Json, HttpAuth::Bearer { token: "t0k".into() });
        let r = g.request(&sms(&to)).unwrap();
        assert_eq!(r.headers()["authorization"], "Bearer t0k");
        let json: serde_json::Value = serde_json::from_slice(r.body().unwrap().as_bytes().unwrap()).unwrap();
        assert_eq!(json["recipient"], "+4917612345678");
        assert_eq!(json["message"], "Hallo & tschüss");

        let g = gateway(
            HttpMethod::Get,
            HttpEncoding::Form,
            HttpAuth::Header { name: "X-Api-Key".into(), value: "k".into() },
        );
        let r = g.request(&sms(&to)).unwrap();
        assert_eq!(r.method(), "GET");
        assert_eq!(r.headers()["x-api-key"], "k");
        let q: BTreeMap<String, String> = r.url().query_pairs().into_owned().collect();
        assert_eq!((q["v"].as_str(), q["recipient"].as_str()), ("2", "+4917612345678"));
    }

    #[test]
    fn answers_are_classified() {
        let g = gateway(HttpMethod::Post, HttpEncoding::Json, HttpAuth::None);
        assert_eq!(
            g.interpret(201, r#"{"id": "abc"}"#),
            Ok(Accepted { provider_id: Some("abc".into()), queued: false })
        );
        assert_eq!(g.interpret(200, r#"{"id": 17}"#).unwrap().provider_id.as_deref(), Some("17"));
        assert_eq!(g.interpret(200, "OK").unwrap().provider_id, None);
        assert!(matches!(g.interpret(401, "bad key"), Err(DeliveryError::Permanent(_))));
        assert!(matches!(g.interpret(422, "bad number"), Err(DeliveryError::Permanent(_))));
        assert!(matches!(g.interpret(503, ""), Err(DeliveryError::Transient(_))));
        assert!(matches!(g.interpret(429, ""), Err(DeliveryError::Transient(_))));
    }

    #[test]
    fn inbound_fields_secret_and_status() {
        let f = inbound_fields(Some("application/json"), br#"{"from":"+491761","text":"hi","n":3,"x":[1]}"#).unwrap();
        assert_eq!((f["from"].as_str(), f["text"].as_str(), f["n"].as_str()), ("+491761", "hi", "3"));
        assert!(!f.contains_key("x"));
        let f = inbound_fields(None, b"from=%2B49176&text=a+b").unwrap();
        assert_eq!(f["text"], "a b");
        let f = inbound_fields(Some("application/json"), br#"{"text":"a\u0000b"}"#).unwrap();
        assert_eq!(f["text"], "ab");
        assert_eq!(inbound_fields(None, b"text=a%00b").unwrap()["text"], "ab");
        assert!(inbound_fields(Some("application/json"), b"[1]").is_err());
        assert!(secret_ok(Some("s3cret-s3cret-s3"), "s3cret-s3cret-s3"));
        assert!(!secret_ok(Some("s3cret"), "s3cret-s3cret-s3"));
        assert!(!secret_ok(None, "s3cret-s3cret-s3"));
        let i = HttpInbound::default();
        assert_eq!(dlr_status(&i, "DELIVRD"), DlrStatus::Delivered);
        assert_eq!(dlr_status(&i, "Failed"), DlrStatus::Failed);
        assert_eq!(dlr_status(&i, "accepted"), DlrStatus::Pending);
    }
}
