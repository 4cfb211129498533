//! The missed-call settings admins change at run time (`missed-calls policy`, `missed-calls
//! options`, `block`): their names, how a stored value reads, and how stored values lay over the
//! config's. Plain code: the service keeps the result in memory and rebuilds it on a change.

use super::event::Extension;
use super::mail::{LinkPrefix, MailSettings};
use super::rules::{Policy, RuleSettings};

/// The options by name, with what they mean (the name of the policy setting is `policy`).
pub const OPTIONS: &[(&str, &str)] = &[
    ("notify_even_if_answered_by_other", "tell the people whose phone rang even if someone else took the call"),
    ("default_opt_in", "notify people who never chose (`missed-calls on|off`)"),
    ("internal_calls", "exception: no notice for calls between internal extensions"),
    ("hidden_numbers", "exception: no notice for calls with a withheld number"),
    ("no_contact", "exception: no notice for callers not in the contacts"),
    ("repeated_same_day", "exception: one notice per caller and day"),
    ("repeated_until_logon", "exception: no second notice for a caller until the person logged on"),
    ("short_ring", "exception: no notice if the phone rang for less than min_ring_secs"),
    ("min_ring_secs", "seconds a phone must ring (0 to 600)"),
    ("block_list", "exception: no notice for numbers and extensions on the block list"),
    ("link_prefix", "telephony links: tel:, phone:, callto:, a custom prefix (at most 9 characters and ':'), or none"),
    ("caller_as_sender", "e-mail: the caller's address as sender"),
    ("attach_vcard", "e-mail: attach the caller's vCard"),
];

/// Why a value cannot be set; said to the admin as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    #[error("'{0}' is not on or off")]
    NotASwitch(String),
    #[error("'{0}' is not a policy: none, first, last or all")]
    NotAPolicy(String),
    #[error("'{0}' is not a number of seconds")]
    NotSeconds(String),
    #[error("min_ring_secs must be at most 600")]
    RingTooLong,
    #[error("{0}")]
    LinkPrefix(String),
    #[error("There is no option '{name}'; the options are: {known}.")]
    Unknown { name: String, known: String },
}

/// Read on/off (also yes/no, true/false, 1/0).
pub fn parse_switch(value: &str) -> Result<bool, SettingError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "on" | "yes" | "true" | "1" => Ok(true),
        "off" | "no" | "false" | "0" => Ok(false),
        other => Err(SettingError::NotASwitch(other.to_owned())),
    }
}

fn switch(b: bool) -> String {
    if b { "on" } else { "off" }.to_owned()
}

pub fn policy_name(p: Policy) -> &'static str {
    match p {
        Policy::None => "none",
        Policy::First => "first",
        Policy::Last => "last",
        Policy::All => "all",
    }
}

pub fn parse_policy(value: &str) -> Result<Policy, SettingError> {
    match value.trim() {
        "none" => Ok(Policy::None),
        "first" => Ok(Policy::First),
        "last" => Ok(Policy::Last),
        "all" => Ok(Policy::All),
        other => Err(SettingError::NotAPolicy(other.to_owned())),
    }
}

/// Set `name` to `value` in the settings; `Err` says what is wrong (an unknown name lists the
/// known ones). The value is checked as the config's value would be.
pub fn apply(name: &str, value: &str, rules: &mut RuleSettings, mail: &mut MailSettings) -> Result<(), SettingError> {
    let ex = &mut rules.exceptions;
    let on = || parse_switch(value);
    match name {
        "policy" => rules.policy = parse_policy(value)?,
        "notify_even_if_answered_by_other" => rules.notify_even_if_answered_by_other = on()?,
        "default_opt_in" => rules.default_opt_in = on()?,
        "internal_calls" => ex.internal_calls = on()?,
        "hidden_numbers" => ex.hidden_numbers = on()?,
        "no_contact" => ex.no_contact = on()?,
        "repeated_same_day" => ex.repeated_same_day = on()?,
        "repeated_until_logon" => ex.repeated_until_logon = on()?,
        "short_ring" => ex.short_ring = on()?,
        "block_list" => ex.block_list = on()?,
        "min_ring_secs" => {
            let secs: u32 = value.trim().parse().map_err(|_| SettingError::NotSeconds(value.to_owned()))?;
            if secs > 600 {
                return Err(SettingError::RingTooLong);
            }
            ex.min_ring_secs = secs;
        }
        // The mail error says it in the config's terms; kept as its text.
        "link_prefix" => {
            mail.link_prefix = LinkPrefix::parse(value).map_err(|e| SettingError::LinkPrefix(e.to_string()))?
        }
        "caller_as_sender" => mail.caller_as_sender = on()?,
        "attach_vcard" => mail.attach_vcard = on()?,
        other => {
            let names: Vec<&str> = OPTIONS.iter().map(|(n, _)| *n).collect();
            return Err(SettingError::Unknown { name: other.to_owned(), known: names.join(", ") });
        }
    }
    Ok(())
}

/// The current value of an option, as `apply` reads it.
pub fn value(name: &str, rules: &RuleSettings, mail: &MailSettings) -> Option<String> {
    let ex = &rules.exceptions;
    Some(match name {
        "policy" => policy_name(rules.policy).to_owned(),
        "notify_even_if_answered_by_other" => switch(rules.notify_even_if_answered_by_other),
        "default_opt_in" => switch(rules.default_opt_in),
        "internal_calls" => switch(ex.internal_calls),
        "hidden_numbers" => switch(ex.hidden_numbers),
        "no_contact" => switch(ex.no_contact),
        "repeated_same_day" => switch(ex.repeated_same_day),
        "repeated_until_logon" => switch(ex.repeated_until_logon),
        "short_ring" => switch(ex.short_ring),
        "block_list" => switch(ex.block_list),
        "min_ring_secs" => ex.min_ring_secs.to_string(),
        "link_prefix" => mail.link_prefix.as_str().unwrap_or("none").to_owned(),
        "caller_as_sender" => switch(mail.caller_as_sender),
        "attach_vcard" => switch(mail.attach_vcard),
        _ => return None,
    })
}

/// Lay stored overrides over the config's settings. An override that no longer reads (e.g.
/// stored by a newer version) is skipped and reported.
pub fn overlay(
    overrides: &[(String, String)],
    rules: &mut RuleSettings,
    mail: &mut MailSettings,
) -> Vec<(String, String)> {
    let mut bad = Vec::new();
    for (name, value) in overrides {
        if let Err(e) = apply(name, value, rules, mail) {
            bad.push((name.clone(), e.to_string()));
        }
    }
    bad
}

/// Add stored block-list entries (`number` / `extension`) to the config's.
pub fn add_blocks(rules: &mut RuleSettings, entries: impl IntoIterator<Item = (String, String)>) {
    for (kind, entry) in entries {
        if kind == "extension" {
            let e = Extension::new(entry.trim());
            if !rules.block_list.extensions.contains(&e) {
                rules.block_list.extensions.push(e);
            }
        } else if !rules.block_list.numbers.contains(&entry) {
            rules.block_list.numbers.push(entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail() -> MailSettings {
        MailSettings {
            from_address: "a@b.c".into(),
            from_name: None,
            message_id_domain: "b.c".into(),
            link_prefix: LinkPrefix::Tel,
            caller_as_sender: false,
            caller_as_envelope_sender: false,
            attach_vcard: false,
            default_language: "en".into(),
            zone: Default::default(),
        }
    }

    #[test]
    fn overrides_lay_over_the_config() {
        let (mut rules, mut mail) = (RuleSettings::default(), mail());
        let stored = [
            ("policy".to_owned(), "first".to_owned()),
            ("short_ring".to_owned(), "off".to_owned()),
            ("min_ring_secs".to_owned(), "5".to_owned()),
            ("link_prefix".to_owned(), "callto:".to_owned()),
            ("warp_drive".to_owned(), "on".to_owned()),
        ];
        let bad = overlay(&stored, &mut rules, &mut mail);
        assert_eq!(rules.policy, Policy::First);
        assert!(!rules.exceptions.short_ring);
        assert_eq!(rules.exceptions.min_ring_secs, 5);
        assert_eq!(mail.link_prefix, LinkPrefix::Callto);
        assert_eq!(bad.len(), 1);
        assert!(bad[0].1.contains("short_ring"), "an unknown name lists the options: {}", bad[0].1);
        for (name, _) in OPTIONS {
            assert!(value(name, &rules, &mail).is_some(), "{name}");
            let v = value(name, &rules, &mail).unwrap();
            assert_eq!(apply(name, &v, &mut rules, &mut mail), Ok(()), "{name} = {v} reads back");
        }
    }

    #[test]
    fn values_are_checked() {
        let (mut rules, mut mail) = (RuleSettings::default(), mail());
        let error = |name, value, rules: &mut _, mail: &mut _| apply(name, value, rules, mail).unwrap_err().to_string();
        assert!(error("min_ring_secs", "601", &mut rules, &mut mail).contains("600"));
        assert!(apply("min_ring_secs", "soon", &mut rules, &mut mail).is_err());
        assert!(error("short_ring", "maybe", &mut rules, &mut mail).contains("on or off"));
        assert!(apply("link_prefix", "javascript:", &mut rules, &mut mail).is_err());
        assert!(error("policy", "most", &mut rules, &mut mail).contains("first"));
        assert_eq!(parse_switch("Yes"), Ok(true));
    }

    #[test]
    fn stored_blocks_add_to_the_config() {
        let mut rules = RuleSettings::default();
        rules.block_list.numbers.push("+491".into());
        add_blocks(&mut rules, [("number".into(), "+491".into()), ("number".into(), "+492".into())]);
        add_blocks(&mut rules, [("extension".into(), "299".into())]);
        assert_eq!(rules.block_list.numbers, vec!["+491".to_owned(), "+492".to_owned()]);
        assert_eq!(rules.block_list.extensions, vec![Extension::new("299")]);
    }
}
