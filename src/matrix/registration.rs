//! The appservice registration file
//! (<https://spec.matrix.org/latest/application-service-api/#registration>): generated with
//! fresh random tokens, loaded at start for the tokens.

use std::path::Path;

use rand::RngExt;
use rand::distr::Alphanumeric;
use serde::{Deserialize, Serialize};

use crate::config::Config;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Namespace {
    pub exclusive: bool,
    pub regex: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Namespaces {
    #[serde(default)]
    pub users: Vec<Namespace>,
    #[serde(default)]
    pub aliases: Vec<Namespace>,
    #[serde(default)]
    pub rooms: Vec<Namespace>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Registration {
    pub id: String,
    pub url: String,
    pub as_token: String,
    pub hs_token: String,
    pub sender_localpart: String,
    #[serde(default)]
    pub rate_limited: bool,
    #[serde(default)]
    pub receive_ephemeral: bool,
    #[serde(default)]
    pub namespaces: Namespaces,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("cannot read registration {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("registration {path}: {message}")]
    Invalid { path: String, message: String },
}

fn token() -> String {
    rand::rng().sample_iter(&Alphanumeric).take(64).map(char::from).collect()
}

fn exclusive(regex: String) -> Namespace {
    Namespace { exclusive: true, regex }
}

impl Registration {
    /// A registration for this config with fresh random tokens.
    pub fn generate(config: &Config) -> Self {
        let domain = regex_escape(&config.homeserver.domain);
        let prefix = regex_escape(&config.appservice.ghost_prefix);
        Self {
            id: config.appservice.id.clone(),
            url: config.appservice.url.clone(),
            as_token: token(),
            hs_token: token(),
            sender_localpart: config.appservice.bot_localpart.clone(),
            rate_limited: false,
            receive_ephemeral: true,
            namespaces: Namespaces {
                users: [format!("@{prefix}.*:{domain}"), format!("@_sms_.*:{domain}")]
                    .into_iter()
                    // The chatbot is a user of the bridge's like a ghost (off: not claimed).
                    .chain(config.chatbot.as_ref().map(|c| format!("@{}:{domain}", regex_escape(&c.localpart))))
                    .map(exclusive)
                    .collect(),
                // Only the bridge's own aliases, exclusively: portals, hosted rooms and the
                // control room. A wider namespace (`#.*`) would let the homeserver push every
                // aliased room's traffic to the bridge, and let others squat the bridge's names.
                aliases: vec![
                    exclusive(format!("#{prefix}.*:{domain}")),
                    exclusive(format!("#{}.*:{domain}", regex_escape(&config.rooms.alias_prefix))),
                    exclusive(format!("#{}:{domain}", regex_escape(&config.admins.control_room))),
                ],
                rooms: vec![],
            },
        }
    }

    pub fn to_yaml(&self) -> String {
        let body = yaml_serde::to_string(self).unwrap_or_default();
        format!(
            "# Appservice registration for ucbridge, written by `ucbridge generate-registration`.\n\
             # Give this file to the homeserver (Synapse: app_service_config_files) and keep the\n\
             # tokens secret. The bridge reads its tokens from here.\n{body}"
        )
    }

    pub fn load(path: &Path, config: &Config) -> Result<Self, RegistrationError> {
        let shown = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|source| RegistrationError::Read { path: shown.clone(), source })?;
        let reg: Registration = yaml_serde::from_str(&text)
            .map_err(|e| RegistrationError::Invalid { path: shown.clone(), message: e.to_string() })?;
        let invalid = |message: String| RegistrationError::Invalid { path: shown.clone(), message };
        if reg.as_token.len() < 16 || reg.hs_token.len() < 16 {
            return Err(invalid("as_token and hs_token must be at least 16 characters".into()));
        }
        if reg.id != config.appservice.id {
            return Err(invalid(format!(
                "id `{}` differs from appservice.id `{}` in the config",
                reg.id, config.appservice.id
            )));
        }
        if reg.sender_localpart != config.appservice.bot_localpart {
            return Err(invalid(format!(
                "sender_localpart `{}` differs from appservice.bot_localpart `{}`",
                reg.sender_localpart, config.appservice.bot_localpart
            )));
        }
        Ok(reg)
    }
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_registration_round_trips_and_has_fresh_tokens() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.yaml");
        let config = Config::load(&path).unwrap();
        let a = Registration::generate(&config);
        let b = Registration::generate(&config);
        assert_ne!(a.as_token, b.as_token);
        assert_ne!(a.as_token, a.hs_token);
        assert!(a.receive_ephemeral);
        assert_eq!(a.namespaces.users[0].regex, "@_xmpp_.*:localhost");
        // The chatbot (on in the example) is claimed by its exact ID.
        assert_eq!(a.namespaces.users[2].regex, "@assistant:localhost");
        // No catch-all alias namespace: only the bridge's own aliases, each exclusive.
        let aliases: Vec<_> = a.namespaces.aliases.iter().map(|n| (n.regex.as_str(), n.exclusive)).collect();
        assert_eq!(
            aliases,
            [("#_xmpp_.*:localhost", true), ("#ucb-.*:localhost", true), ("#ucb-control:localhost", true)]
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("registration.yaml");
        std::fs::write(&file, a.to_yaml()).unwrap();
        let back = Registration::load(&file, &config).unwrap();
        assert_eq!(back.hs_token, a.hs_token);
        // ruma's own type reads it too, i.e. it is a spec-shaped registration.
        let ruma_reg: ruma::api::appservice::Registration = yaml_serde::from_str(&a.to_yaml()).unwrap();
        assert_eq!(ruma_reg.id, "ucbridge");
    }

    #[test]
    fn checked_in_example_matches_the_generator_shape() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("registration.yaml");
        let text = std::fs::read_to_string(path).unwrap();
        let reg: Registration = yaml_serde::from_str(&text).unwrap();
        assert!(reg.receive_ephemeral);
        assert_eq!(reg.namespaces.users.len(), 3);
    }
}
