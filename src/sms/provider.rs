//! The gateway interface: one SMS out, and what the gateway answered. Implementations:
//! [`super::kannel::Kannel`] and [`super::http_provider::HttpGateway`].

use std::future::Future;
use std::pin::Pin;

use crate::core::ids::PhoneNumber;
use crate::core::outbox::DeliveryError;
use crate::sms::segment::Coding;

/// One SMS (or one concatenated SMS) to hand to the gateway.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    /// Our reference, stable across retries; delivery reports carry it back.
    pub reference: &'a str,
    /// The sender: one of our numbers (E.164) or an alphanumeric sender.
    pub from: &'a str,
    pub to: &'a PhoneNumber,
    pub text: &'a str,
    pub coding: Coding,
    /// Where the gateway reports delivery (already carrying the secret and the reference).
    pub dlr_url: Option<String>,
}

/// The gateway took the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The gateway's own id, when it gives one (its delivery reports may use it).
    pub provider_id: Option<String>,
    /// Taken but queued (e.g. Kannel's "3: Queued for later delivery").
    pub queued: bool,
}

/// What a delivery report says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DlrStatus {
    Delivered,
    Failed,
    /// An intermediate state (buffered, accepted by the SMSC): nothing to show.
    Pending,
}

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<Accepted, DeliveryError>> + Send + 'a>>;

/// An SMS gateway. `send` classifies the answer: `Ok` only when the gateway accepted the message;
/// `Transient` for what may pass (connection refused, timeouts, 5xx, 429), `Permanent` for a
/// refusal of the request itself (bad credentials, bad number).
pub trait SmsProvider: Send + Sync {
    fn name(&self) -> &'static str;
    fn send<'a>(&'a self, sms: &'a Outgoing<'a>) -> SendFuture<'a>;
}

/// A reqwest error as a delivery error: a request that never got an answer may be retried.
/// The URL is left out: Kannel's carries the password, and every one the inbound secret.
pub fn transport_error(gateway: &str, e: reqwest::Error) -> DeliveryError {
    DeliveryError::Transient(format!("{gateway} not reachable: {}", e.without_url()))
}

/// The part of a gateway's answer worth logging or showing (bounded, one line).
pub fn short(body: &str) -> String {
    let line = body.trim().lines().next().unwrap_or_default();
    line.chars().take(200).collect()
}
