//! Kannel (<https://www.kannel.org/>, smsbox): MT through `GET /cgi-bin/sendsms`, MO and
//! delivery reports through URLs Kannel calls on the bridge, filled with its escape codes
//! (`%p` sender, `%P` receiver, `%b` raw text, `%c` coding, `%C` charset, `%I` message id, `%d`
//! DLR status). The bridge's URLs carry `key=<sms.inbound_secret>`.

use std::time::Duration;

use super::config::Kannel as KannelConfig;
use crate::core::outbox::DeliveryError;
use crate::core::setup::{SetupContext as _, SetupError};
use crate::sms::provider::{Accepted, DlrStatus, Outgoing, SendFuture, SmsProvider, short, transport_error};
use crate::sms::segment::Coding;

pub struct Kannel {
    config: KannelConfig,
    http: reqwest::Client,
}

impl Kannel {
    pub fn new(config: KannelConfig) -> Result<Self, SetupError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_secs))
            .build()
            .setup("sms.kannel: the HTTP client")?;
        Ok(Self { config, http })
    }
}

/// The sendsms URL for one message. UTF-8 text goes with `charset=UTF-8`; `coding=2` makes
/// Kannel send UCS-2 when the text does not fit the GSM alphabet.
pub fn sendsms_url(config: &KannelConfig, sms: &Outgoing<'_>) -> Result<url::Url, DeliveryError> {
    let mut url = url::Url::parse(&config.sendsms_url)
        .map_err(|e| DeliveryError::Permanent(format!("sms.kannel.sendsms_url: {e}")))?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("username", &config.username)
            .append_pair("password", &config.password)
            .append_pair("from", sms.from)
            .append_pair("to", sms.to.as_str())
            .append_pair("text", sms.text)
            .append_pair("charset", "UTF-8")
            .append_pair("coding", if sms.coding == Coding::Ucs2 { "2" } else { "0" });
        if let Some(smsc) = &config.smsc {
            q.append_pair("smsc", smsc);
        }
        if let Some(dlr) = &sms.dlr_url
            && config.dlr_mask > 0
        {
            q.append_pair("dlr-mask", &config.dlr_mask.to_string()).append_pair("dlr-url", dlr);
        }
    }
    Ok(url)
}

/// Kannel's answer to sendsms: `202 0: Accepted for delivery`, `202 3: Queued for later delivery`
/// (both taken), older `Sent.`; `403 Authorization failed`, `400 …` for bad requests (refused for
/// good); 5xx (e.g. `Sending failed.` while bearerbox is away) may pass.
pub fn interpret(status: u16, body: &str) -> Result<Accepted, DeliveryError> {
    let text = short(body);
    match status {
        200..=299 => {
            let queued = text.starts_with("3:");
            if !(text.starts_with("0:") || queued || text.starts_with("Sent")) {
                tracing::info!(status, answer = text, "Kannel took the message with an unusual answer");
            }
            Ok(Accepted { provider_id: None, queued })
        }
        408 | 429 => Err(DeliveryError::Transient(format!("Kannel answered {status} {text}"))),
        400..=499 => Err(DeliveryError::Permanent(format!("the SMS gateway refused the message: {status} {text}"))),
        _ => Err(DeliveryError::Transient(format!("Kannel answered {status} {text}"))),
    }
}

/// Kannel's DLR status (`%d`): 1 delivered, 2 failed, 16 rejected by the SMSC; 4 buffered and
/// 8 accepted by the SMSC are intermediate.
pub fn dlr_status(code: &str) -> Option<DlrStatus> {
    match code.trim().parse::<u32>().ok()? {
        1 => Some(DlrStatus::Delivered),
        2 | 16 => Some(DlrStatus::Failed),
        4 | 8 => Some(DlrStatus::Pending),
        _ => None,
    }
}

impl SmsProvider for Kannel {
    fn name(&self) -> &'static str {
        "kannel"
    }

    fn send<'a>(&'a self, sms: &'a Outgoing<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            let url = sendsms_url(&self.config, sms)?;
            let response = self.http.get(url).send().await.map_err(|e| transport_error("Kannel", e))?;
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            interpret(status, &body)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ids::PhoneNumber;

    fn config() -> KannelConfig {
        KannelConfig {
            sendsms_url: "http://127.0.0.1:13013/cgi-bin/sendsms".into(),
            username: "ucb".into(),
            password: "p&w".into(),
            smsc: Some("fake".into()),
            dlr_mask: 3,
            timeout_secs: 5,
        }
    }

    #[test]
    fn sendsms_request_carries_every_field_encoded() {
        let to = PhoneNumber::parse("+4917612345678").unwrap();
        let dlr = "http://127.0.0.1:9090/sms/kannel/dlr?key=s3cret&ref=ucb-1-7&status=%d".to_owned();
        let sms = Outgoing {
            reference: "ucb-1-7",
            from: "+4930555000",
            to: &to,
            text: "Grüße & 👍",
            coding: Coding::Ucs2,
            dlr_url: Some(dlr.clone()),
        };
        let url = sendsms_url(&config(), &sms).unwrap();
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let get = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("username"), Some("ucb"));
        assert_eq!(get("password"), Some("p&w"));
        assert_eq!(get("to"), Some("+4917612345678"));
        assert_eq!(get("from"), Some("+4930555000"));
        assert_eq!(get("text"), Some("Grüße & 👍"));
        assert_eq!((get("charset"), get("coding")), (Some("UTF-8"), Some("2")));
        assert_eq!((get("dlr-mask"), get("dlr-url")), (Some("3"), Some(dlr.as_str())));
        assert_eq!(get("smsc"), Some("fake"));
        assert!(url.as_str().contains("to=%2B4917612345678"), "{url}");
    }

    #[test]
    fn kannel_answers_are_classified() {
        assert_eq!(interpret(202, "0: Accepted for delivery"), Ok(Accepted { provider_id: None, queued: false }));
        assert_eq!(interpret(202, "3: Queued for later delivery\n"), Ok(Accepted { provider_id: None, queued: true }));
        assert!(interpret(200, "Sent.").is_ok());
        assert!(matches!(interpret(403, "Authorization failed"), Err(DeliveryError::Permanent(_))));
        assert!(matches!(interpret(400, "Missing receiver number"), Err(DeliveryError::Permanent(_))));
        assert!(matches!(interpret(503, "Sending failed."), Err(DeliveryError::Transient(_))));
        assert!(matches!(interpret(500, ""), Err(DeliveryError::Transient(_))));
        assert!(matches!(interpret(429, ""), Err(DeliveryError::Transient(_))));
    }

    #[test]
    fn dlr_codes() {
        assert_eq!(dlr_status("1"), Some(DlrStatus::Delivered));
        assert_eq!(dlr_status("2"), Some(DlrStatus::Failed));
        assert_eq!(dlr_status("16"), Some(DlrStatus::Failed));
        assert_eq!(dlr_status("8"), Some(DlrStatus::Pending));
        assert_eq!(dlr_status("x"), None);
    }
}
