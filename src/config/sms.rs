//! `sms:` — chatting with phone numbers through an SMS gateway (`src/sms/`). Optional: without
//! the section the phone-number addresses answer that SMS is off. The section's types are the
//! SMS module's (`sms::config`); here are its checks, which name the keys of the file.

use super::{ConfigError, invalid};
use crate::sms::config::{HttpAuth, ProviderKind, Sms, owner_key};

impl Sms {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let region = crate::core::phone::Region::parse(&self.default_region)
            .map_err(|_| invalid("sms.default_region", "must be an ISO 3166 country code such as DE"))?;
        if crate::core::phone::normalize(&self.sender, region).is_none() && !is_alphanumeric_sender(&self.sender) {
            return Err(invalid(
                "sms.sender",
                "must be a phone number or an alphanumeric sender of 1 to 11 characters",
            ));
        }
        if !(1..=255).contains(&self.max_parts) {
            return Err(invalid("sms.max_parts", "must be between 1 and 255"));
        }
        let secret_ok = self.inbound_secret.len() >= 16
            && self.inbound_secret.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !secret_ok {
            return Err(invalid(
                "sms.inbound_secret",
                "must be at least 16 characters of letters, digits, '-', '_' or '.' (it goes into URLs)",
            ));
        }
        if let Some(url) = &self.public_url {
            super::check_http_url("sms.public_url", url)?;
        }
        for n in &self.numbers {
            if crate::core::phone::normalize(&n.number, region).is_none() {
                return Err(invalid("sms.numbers", format!("'{}' is not a valid phone number", n.number)));
            }
            if let Some(owner) = &n.owner
                && (!owner.contains('@') || crate::core::watch::Party::from_key(&owner_key(owner)).is_none())
            {
                return Err(invalid("sms.numbers", format!("owner '{owner}' is not a Matrix ID or a bare JID")));
            }
        }
        match self.provider {
            ProviderKind::Kannel => {
                let k =
                    self.kannel.as_ref().ok_or_else(|| invalid("sms.kannel", "is required with provider kannel"))?;
                super::check_http_url("sms.kannel.sendsms_url", &k.sendsms_url)?;
                if k.username.is_empty() {
                    return Err(invalid("sms.kannel.username", "must not be empty"));
                }
                if k.dlr_mask > 31 {
                    return Err(invalid("sms.kannel.dlr_mask", "must be between 0 and 31"));
                }
                if !(1..=300).contains(&k.timeout_secs) {
                    return Err(invalid("sms.kannel.timeout_secs", "must be between 1 and 300"));
                }
            }
            ProviderKind::Http => {
                let h = self.http.as_ref().ok_or_else(|| invalid("sms.http", "is required with provider http"))?;
                super::check_http_url("sms.http.url", &h.url)?;
                if h.fields.to.is_empty() || h.fields.text.is_empty() {
                    return Err(invalid("sms.http.fields", "`to` and `text` must name the gateway's fields"));
                }
                if h.inbound.secret_header.is_empty()
                    || http::HeaderName::from_bytes(h.inbound.secret_header.as_bytes()).is_err()
                {
                    return Err(invalid("sms.http.inbound.secret_header", "must be an HTTP header name"));
                }
                if !(1..=300).contains(&h.timeout_secs) {
                    return Err(invalid("sms.http.timeout_secs", "must be between 1 and 300"));
                }
                match &h.auth {
                    HttpAuth::Header { name, value }
                        if http::HeaderName::from_bytes(name.as_bytes()).is_err()
                            || http::HeaderValue::from_str(value).is_err() =>
                    {
                        return Err(invalid("sms.http.auth", "name and value must be a valid HTTP header"));
                    }
                    HttpAuth::Bearer { token } if token.is_empty() => {
                        return Err(invalid("sms.http.auth.token", "must not be empty"));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

/// An alphanumeric sender ID (GSM allows up to 11 characters).
fn is_alphanumeric_sender(s: &str) -> bool {
    (1..=11).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
provider: kannel
sender: "+49 30 555 000"
inbound_secret: "0123456789abcdef"
numbers: [{number: "030 555 0201", owner: "@anna:hs"}]
kannel: {sendsms_url: "http://127.0.0.1:13013/cgi-bin/sendsms", username: u, password: p}
"#;

    fn check(yaml: &str) -> Result<(), ConfigError> {
        yaml_serde::from_str::<Sms>(yaml).expect("parses").validate()
    }

    #[test]
    fn errors_name_the_key() {
        assert!(check(GOOD).is_ok());
        for (from, to, key) in [
            ("0123456789abcdef", "short", "sms.inbound_secret"),
            ("0123456789abcdef", "0123456789abcdef/&", "sms.inbound_secret"),
            ("+49 30 555 000", "not a number at all", "sms.sender"),
            ("030 555 0201", "12", "sms.numbers"),
            ("owner: \"@anna:hs\"", "owner: \"nobody\"", "sms.numbers"),
            ("http://127.0.0.1:13013", "ftp://x", "sms.kannel.sendsms_url"),
            ("provider: kannel", "provider: http", "sms.http"),
        ] {
            let err = check(&GOOD.replace(from, to)).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains(key), "{to}: {err}");
        }
        let alnum = GOOD.replace("\"+49 30 555 000\"", "Acme");
        assert!(check(&alnum).is_ok(), "an alphanumeric sender");
        let bad_region = format!("{GOOD}default_region: XX\n");
        assert!(check(&bad_region).unwrap_err().to_string().contains("sms.default_region"));
    }
}
