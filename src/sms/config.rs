//! The `sms:` section of the config file, as this module reads it: the serde types with their
//! defaults. The config (`crate::config`) composes them into the file and checks them.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `sms:`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sms {
    /// Which gateway: `kannel` or `http`.
    pub provider: ProviderKind,
    /// Country whose numbering plan applies to numbers written without `+` (ISO code).
    #[serde(default = "default_region")]
    pub default_region: String,
    /// The sender number of users who own no number in `numbers`.
    pub sender: String,
    /// Longest message, in SMS parts; longer ones are refused with the count.
    #[serde(default = "default_max_parts")]
    pub max_parts: u32,
    /// The gateway joins long texts itself (concatenated SMS, one request); `false`: the bridge
    /// splits them and sends each part as an SMS of its own.
    #[serde(default = "yes")]
    pub concatenation: bool,
    /// A file sent into an SMS chat goes out as a link the bridge serves (`/media/…`, valid for
    /// `media.link_lifetime_days`); `false`: it is not sent and the sender is told so.
    #[serde(default)]
    pub files_as_links: bool,
    /// Secret the gateway's calls to the bridge (incoming SMS, delivery reports) must carry.
    pub inbound_secret: String,
    /// Base URL under which the gateway reaches the bridge (delivery report URLs); default
    /// `appservice.url`.
    #[serde(default)]
    pub public_url: Option<String>,
    #[serde(default)]
    pub rate_limits: RateLimits,
    /// Numbers of ours (DIDs) and who owns them: an owner sends from their number, and SMS to
    /// it reach them.
    #[serde(default)]
    pub numbers: Vec<SmsNumber>,
    #[serde(default)]
    pub kannel: Option<Kannel>,
    #[serde(default)]
    pub http: Option<HttpProvider>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Kannel,
    Http,
}

/// `sms.rate_limits:` — 0 switches a limit off.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimits {
    /// Messages one person may send per minute.
    pub per_user_per_minute: u32,
    /// Messages everyone together may send per minute.
    pub global_per_minute: u32,
    /// SMS parts one person may send per day (UTC).
    pub daily_cap_per_user: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self { per_user_per_minute: 10, global_per_minute: 120, daily_cap_per_user: 200 }
    }
}

/// One entry of `sms.numbers:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsNumber {
    pub number: String,
    /// A Matrix ID or a bare JID.
    #[serde(default)]
    pub owner: Option<String>,
}

/// `sms.kannel:` — Kannel's smsbox `sendsms` interface.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kannel {
    /// e.g. `http://127.0.0.1:13013/cgi-bin/sendsms`.
    pub sendsms_url: String,
    pub username: String,
    pub password: String,
    /// Route through this SMSC (`smsc=`); absent: Kannel's routing.
    #[serde(default)]
    pub smsc: Option<String>,
    /// Which delivery reports to ask for (`dlr-mask`): 1 delivered, 2 failed, 4 buffered, 8 SMSC
    /// accepted, 16 SMSC rejected.
    #[serde(default = "default_dlr_mask")]
    pub dlr_mask: u8,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

/// `sms.http:` — a generic HTTP gateway.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpProvider {
    pub url: String,
    #[serde(default)]
    pub method: HttpMethod,
    /// How the fields are sent with POST: `form` or `json` (GET: always the query string).
    #[serde(default)]
    pub encoding: HttpEncoding,
    #[serde(default)]
    pub fields: HttpFields,
    /// Constant fields sent with every request (e.g. an account id).
    #[serde(default)]
    pub extra: BTreeMap<String, String>,
    #[serde(default)]
    pub auth: HttpAuth,
    /// Field of the JSON answer holding the gateway's message id (delivery reports name it).
    #[serde(default)]
    pub response_id_field: Option<String>,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    #[serde(default)]
    pub inbound: HttpInbound,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpMethod {
    Get,
    #[default]
    Post,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpEncoding {
    #[default]
    Form,
    Json,
}

/// `sms.http.fields:` — the gateway's names of the request fields; an empty name leaves the
/// field out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpFields {
    pub from: String,
    pub to: String,
    pub text: String,
    /// Our reference of the message (delivery reports may echo it).
    pub reference: String,
    /// The delivery report URL.
    pub dlr_url: String,
}

impl Default for HttpFields {
    fn default() -> Self {
        Self {
            from: "from".into(),
            to: "to".into(),
            text: "text".into(),
            reference: "reference".into(),
            dlr_url: String::new(),
        }
    }
}

/// `sms.http.auth:`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, tag = "type", rename_all = "lowercase")]
pub enum HttpAuth {
    #[default]
    None,
    Basic {
        username: String,
        password: String,
    },
    Bearer {
        token: String,
    },
    /// A header of the gateway's choice, e.g. `X-Api-Key`.
    Header {
        name: String,
        value: String,
    },
}

/// `sms.http.inbound:` — what the gateway posts to `/sms/http/mo` and `/sms/http/dlr` (JSON or
/// form fields) and the header that carries `sms.inbound_secret`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpInbound {
    pub secret_header: String,
    pub from: String,
    pub to: String,
    pub text: String,
    /// The gateway's id of an incoming message (repeats are dropped).
    pub id: String,
    /// In delivery reports: our reference or the gateway's message id, and the status.
    pub reference: String,
    pub status: String,
    pub delivered: Vec<String>,
    pub failed: Vec<String>,
}

impl Default for HttpInbound {
    fn default() -> Self {
        Self {
            secret_header: "X-Sms-Secret".into(),
            from: "from".into(),
            to: "to".into(),
            text: "text".into(),
            id: "id".into(),
            reference: "reference".into(),
            status: "status".into(),
            delivered: vec!["delivered".into(), "DELIVRD".into()],
            failed: vec!["failed".into(), "undelivered".into(), "UNDELIV".into(), "REJECTD".into(), "EXPIRED".into()],
        }
    }
}

fn default_region() -> String {
    "DE".into()
}
fn default_max_parts() -> u32 {
    6
}
fn yes() -> bool {
    true
}
fn default_dlr_mask() -> u8 {
    3
}
fn default_timeout() -> u64 {
    10
}

/// `@user:hs` or `user@domain` as a `Party` key.
pub fn owner_key(owner: &str) -> String {
    if owner.starts_with('@') { format!("matrix:{owner}") } else { format!("xmpp:{owner}") }
}
