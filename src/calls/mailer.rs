//! The SMTP transport of the notice e-mails.

use std::time::Duration;

use crate::core::setup::{SetupContext as _, SetupError};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::config::{Smtp, SmtpTls};
use crate::core::outbox::DeliveryError;

/// Sends the stored e-mails.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// The longest one message's SMTP exchange may take (`smtp.timeout_secs`).
    timeout: Duration,
}

impl Mailer {
    pub fn new(smtp: &Smtp) -> Result<Self, SetupError> {
        let builder = match smtp.tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
            SmtpTls::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host).setup("missed_calls.mail.smtp.host")?
            }
            SmtpTls::Tls => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host).setup("missed_calls.mail.smtp.host")?
            }
        };
        let mut builder = builder.port(smtp.port()).timeout(Some(Duration::from_secs(smtp.timeout_secs)));
        if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Self { transport: builder.build(), timeout: Duration::from_secs(smtp.timeout_secs) })
    }

    /// Send one stored message. A permanent refusal (5xx) is `Permanent`; everything else
    /// (connection refused, timeouts, 4xx) is retried.
    pub async fn send(&self, from: &str, to: &[String], raw: &str) -> Result<(), DeliveryError> {
        let bad = |e: String| DeliveryError::Permanent(e);
        let from: Address = from.parse().map_err(|e| bad(format!("envelope sender {from}: {e}")))?;
        let to: Vec<Address> =
            to.iter().map(|t| t.parse().map_err(|e| bad(format!("recipient {t}: {e}")))).collect::<Result<_, _>>()?;
        let envelope = lettre::address::Envelope::new(Some(from), to).map_err(|e| bad(e.to_string()))?;
        // lettre's timeout covers only the TCP connect: a server that accepts the connection and
        // never answers (black-holed) would hold the mail lane forever without this bound.
        let sent = tokio::time::timeout(self.timeout, self.transport.send_raw(&envelope, raw.as_bytes()))
            .await
            .map_err(|_| DeliveryError::Transient(format!("SMTP: no answer within {:?}", self.timeout)))?;
        match sent {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(DeliveryError::Permanent(format!("SMTP server refused the mail: {e}"))),
            Err(e) => Err(DeliveryError::Transient(format!("SMTP: {e}"))),
        }
    }
}
