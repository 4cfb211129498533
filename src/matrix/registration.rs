//! The appservice registration file
//! (<https://spec.matrix.org/latest/application-service-api/#registration>): generated with
//! fresh random tokens, loaded at start for the tokens. The type is ruma's, so the file has the
//! spec's shape.

use std::path::Path;

use rand::RngExt;
use rand::distr::Alphanumeric;
pub use ruma::api::appservice::Registration;
use ruma::api::appservice::{Namespace, Namespaces, RegistrationInit};

use crate::config::Config;

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
    Namespace::new(true, regex)
}

/// A registration for this config with fresh random tokens.
pub fn generate(config: &Config) -> Registration {
    generate_with_tokens(config, token(), token())
}

/// The registration with the given tokens (the committed example has placeholders).
pub fn generate_with_tokens(config: &Config, as_token: String, hs_token: String) -> Registration {
    let domain = regex::escape(&config.homeserver.domain);
    let prefix = regex::escape(&config.appservice.ghost_prefix);
    let mut namespaces = Namespaces::new();
    namespaces.users = [format!("@{prefix}.*:{domain}"), format!("@_sms_.*:{domain}")]
        .into_iter()
        // The chatbot is a user of the bridge's like a ghost (off: not claimed).
        .chain(config.chatbot.as_ref().map(|c| format!("@{}:{domain}", regex::escape(&c.localpart))))
        .map(exclusive)
        .collect();
    // Only the bridge's own aliases, exclusively: portals, hosted rooms and the control room. A
    // wider namespace (`#.*`) would let the homeserver push every aliased room's traffic to the
    // bridge, and let others squat the bridge's names.
    namespaces.aliases = vec![
        exclusive(format!("#{prefix}.*:{domain}")),
        exclusive(format!("#{}.*:{domain}", regex::escape(&config.rooms.alias_prefix))),
        exclusive(format!("#{}:{domain}", regex::escape(&config.admins.control_room))),
    ];
    let mut reg: Registration = RegistrationInit {
        id: config.appservice.id.clone(),
        url: Some(config.appservice.url.clone()),
        as_token,
        hs_token,
        sender_localpart: config.appservice.bot_localpart.clone(),
        namespaces,
        rate_limited: Some(false),
        protocols: None,
    }
    .into();
    // Typing, receipts and presence come to the bridge in the transactions.
    reg.receive_ephemeral = true;
    reg
}

pub fn to_yaml(reg: &Registration) -> String {
    let body = yaml_serde::to_string(reg).unwrap_or_default();
    format!(
        "# Appservice registration for ucbridge, written by `ucbridge generate-registration`.\n\
         # Give this file to the homeserver (Synapse: app_service_config_files) and keep the\n\
         # tokens secret. The bridge reads its tokens from here.\n{body}"
    )
}

pub fn load(path: &Path, config: &Config) -> Result<Registration, RegistrationError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Config {
        Config::load_with_env(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.yaml"), []).unwrap()
    }

    #[test]
    fn generated_registration_round_trips_and_has_fresh_tokens() {
        let config = example();
        let a = generate(&config);
        let b = generate(&config);
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
            [("#_xmpp_.*:localhost", true), ("#ucb\\-.*:localhost", true), ("#ucb\\-control:localhost", true)]
        );
        // Each pattern matches the names it claims, and only those (the homeserver's regexes
        // read escapes like Rust's).
        let alias = regex::Regex::new(&format!("^{}$", a.namespaces.aliases[1].regex)).unwrap();
        assert!(alias.is_match("#ucb-sales:localhost") && !alias.is_match("#ucbXsales:localhost"));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("registration.yaml");
        std::fs::write(&file, to_yaml(&a)).unwrap();
        let back = load(&file, &config).unwrap();
        assert_eq!(back.hs_token, a.hs_token);
        // What Synapse reads: these keys, with these values.
        let yaml: yaml_serde::Value = yaml_serde::from_str(&to_yaml(&a)).unwrap();
        for (key, want) in [("receive_ephemeral", "true"), ("rate_limited", "false"), ("url", "http://127.0.0.1:9090")]
        {
            assert_eq!(yaml_serde::to_string(&yaml[key]).unwrap().trim(), want, "{key}");
        }
    }

    /// The committed `registration.yaml` is what the generator writes for
    /// `config/example.yaml`, with placeholder tokens.
    #[test]
    fn the_committed_example_is_the_generators_output() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("registration.yaml");
        let committed = std::fs::read_to_string(path).unwrap();
        let generated = to_yaml(&generate_with_tokens(
            &example(),
            "CHANGE-ME-as-token-generated-by-ucbridge".into(),
            "CHANGE-ME-hs-token-generated-by-ucbridge".into(),
        ));
        assert_eq!(committed, generated, "regenerate registration.yaml: the generator changed");
    }
}
