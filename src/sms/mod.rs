//! SMS: people on Matrix and XMPP chat with phone numbers through a gateway (DESIGN.md "SMS").
//!
//! - A number is the ghost `@_sms_+4917612345678:hs` on Matrix and `+4917612345678@component`
//!   on XMPP (`core::mapping`).
//! - Outgoing messages become `Action::SmsSend` rows (the outbox retries them; they leave it only
//!   once the gateway accepted them), after the permission, size and rate checks.
//! - Incoming SMS and delivery reports arrive on authenticated routes (`http::sms`), are stored,
//!   and become messages / ticks (`bridge::sms`).
//!
//! Files: [`config`] (its section of the config file, handed over by the caller), [`provider`]
//! (the gateway interface), [`kannel`], [`http_provider`], [`segment`] (GSM-7 / UCS-2 counting),
//! [`limits`], [`inbound`] (reading gateway calls). The bridge's side (checks against the store,
//! outbox actions, delivery) is `bridge::sms`.

pub mod config;
pub mod http_provider;
pub mod inbound;
pub mod kannel;
pub mod limits;
pub mod provider;
pub mod segment;
pub mod unsendable;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::core::setup::{SetupContext as _, SetupError};

use crate::contacts::{self, Contact, ContactIndex};
use crate::core::ids::PhoneNumber;
use crate::core::phone::{Region, normalize};
use crate::core::watch::Party;
use config::{ProviderKind, Sms, owner_key};
use provider::SmsProvider;

/// The permission an admin grants (`permissions grant USER sms`).
pub const PERMISSION: &str = "sms";

/// The running SMS module.
pub struct SmsService {
    pub settings: Sms,
    pub provider: Box<dyn SmsProvider>,
    pub region: Region,
    limiter: Mutex<limits::RateLimiter>,
    /// Our numbers, with their owners.
    dids: HashMap<PhoneNumber, Option<Party>>,
    /// The number each owner sends from.
    own_number: HashMap<Party, PhoneNumber>,
    /// Default sender, normalised when it is a number.
    sender: String,
    contacts: ContactIndex,
    /// Where the gateway reaches the bridge (no trailing `/`).
    base_url: String,
}

impl SmsService {
    /// Build from the `sms:` section, the contact files (`missed_calls.contacts.files`,
    /// resolved) and the URL the gateway reaches the bridge under unless `public_url` says
    /// otherwise (`appservice.url`).
    pub fn new(settings: Sms, contact_files: &[PathBuf], default_url: &str) -> Result<Self, SetupError> {
        let region = Region::parse(&settings.default_region).setup("sms.default_region")?;
        let provider: Box<dyn SmsProvider> = match settings.provider {
            ProviderKind::Kannel => {
                let k = settings
                    .kannel
                    .clone()
                    .ok_or_else(|| SetupError::msg("config key `sms.kannel` is required with provider kannel"))?;
                Box::new(kannel::Kannel::new(k)?)
            }
            ProviderKind::Http => {
                let h = settings
                    .http
                    .clone()
                    .ok_or_else(|| SetupError::msg("config key `sms.http` is required with provider http"))?;
                Box::new(http_provider::HttpGateway::new(h)?)
            }
        };
        let mut dids = HashMap::new();
        let mut own_number = HashMap::new();
        for n in &settings.numbers {
            let phone = inbound::phone(&n.number, region).ok_or_else(|| {
                SetupError::msg(format!("config key `sms.numbers`: {} is not a phone number", n.number))
            })?;
            let owner = n.owner.as_deref().and_then(|o| Party::from_key(&owner_key(o)));
            if let Some(o) = &owner {
                own_number.entry(o.clone()).or_insert_with(|| phone.clone());
            }
            dids.insert(phone, owner);
        }
        let sender = normalize(&settings.sender, region).unwrap_or_else(|| settings.sender.clone());
        let contacts = load_contacts(contact_files, region)?;
        let base_url =
            settings.public_url.clone().unwrap_or_else(|| default_url.to_owned()).trim_end_matches('/').to_owned();
        let limiter =
            limits::RateLimiter::new(settings.rate_limits.per_user_per_minute, settings.rate_limits.global_per_minute);
        Ok(Self {
            settings,
            provider,
            region,
            limiter: Mutex::new(limiter),
            dids,
            own_number,
            sender,
            contacts,
            base_url,
        })
    }

    /// A number as a person or a gateway wrote it, in E.164.
    pub fn normalize(&self, number: &str) -> Option<PhoneNumber> {
        inbound::phone(number, self.region)
    }

    /// The one check of a number an SMS goes to, on every path (a person's `+number@component`
    /// address, their Matrix room with `@_sms_+number`, the `sms` command, missed-call notices,
    /// and the outbox before the gateway is called): the numbering plan must know it as a valid
    /// number (`phonenumber`), not merely `+` and 3 to 15 digits. `Ok` is the number in E.164;
    /// `Err` says why not, in words for the sender.
    pub fn destination(&self, written: &str) -> Result<PhoneNumber, NumberError> {
        destination(written, self.region)
    }

    /// [`Self::destination`] for a number taken from an address (XMPP local part, Matrix ghost).
    pub fn check_address(&self, phone: &PhoneNumber) -> Result<(), NumberError> {
        check_address(phone, self.region)
    }

    /// The number `author` sends from: their own (in `sms.numbers`), else `sms.sender`.
    pub fn sender_for(&self, author: Option<&Party>) -> String {
        author.and_then(|a| self.own_number.get(a)).map_or_else(|| self.sender.clone(), ToString::to_string)
    }

    /// The owner of one of our numbers.
    pub fn owner_of(&self, did: &PhoneNumber) -> Option<&Party> {
        self.dids.get(did).and_then(Option::as_ref)
    }

    /// Take one message of `who` from the per-minute limits.
    pub fn take_rate(&self, who: &Party) -> Result<(), limits::Limited> {
        match self.limiter.lock() {
            Ok(mut l) => l.take(&who.key(), crate::store::now_ms()),
            Err(_) => Ok(()),
        }
    }

    /// The delivery-report URL for a message (Kannel fills in `%d`).
    pub fn dlr_url(&self, reference: &str) -> String {
        let key = &self.settings.inbound_secret;
        match self.settings.provider {
            ProviderKind::Kannel => {
                format!("{}/sms/kannel/dlr?key={key}&ref={reference}&status=%d&reply=%A&part=%F", self.base_url)
            }
            ProviderKind::Http => format!("{}/sms/http/dlr?ref={reference}", self.base_url),
        }
    }

    /// The contacts of the config's files (`missed_calls.contacts.files`); the bridge adds
    /// the admins' imports when the missed-call module holds them.
    pub fn contacts(&self) -> &ContactIndex {
        &self.contacts
    }

    /// The name a number's ghost shows: the contact's name in `contacts`, else the number.
    pub fn display_name(&self, phone: &PhoneNumber, contacts: &ContactIndex) -> String {
        match contacts.lookup(phone.as_str()).and_then(Contact::display_name) {
            Some(name) => format!("{name} (SMS)"),
            None => phone.to_string(),
        }
    }

    /// What a person typed as the other end: a number, or the name of a contact in `contacts`
    /// (with a mobile number), optionally followed by which of their mobile numbers (`Erika 2`).
    /// `Err` says what went wrong.
    pub fn resolve(&self, target: &str, contacts: &ContactIndex) -> Result<Resolved, NumberError> {
        resolve(target, contacts, self.region)
    }
}

/// See [`SmsService::resolve`].
pub fn resolve(target: &str, contacts: &ContactIndex, region: Region) -> Result<Resolved, NumberError> {
    let target = target.trim();
    if target.is_empty() {
        return Err(NumberError::Empty);
    }
    if target.starts_with('+') || target.chars().all(|c| c.is_ascii_digit() || " -/()".contains(c)) {
        return destination(target, region).map(Resolved::Number);
    }
    // A last word of one or two digits after a name picks one of the contact's numbers.
    let (name, pick) = match target.rsplit_once(char::is_whitespace) {
        Some((name, n)) if n.len() <= 2 && n.bytes().all(|b| b.is_ascii_digit()) => (name.trim(), n.parse().ok()),
        _ => (target, None),
    };
    let wanted = name.to_lowercase();
    let matches: Vec<&Contact> = contacts
        .contacts()
        .iter()
        .filter(|c| c.display_name().is_some_and(|n| n.to_lowercase().contains(&wanted)))
        .collect();
    let contact = match matches.as_slice() {
        [] => return Err(NumberError::NoContact(name.to_owned())),
        [c] => *c,
        many => {
            let mut names: Vec<&str> = many.iter().filter_map(|c| c.display_name()).collect();
            names.dedup();
            if let [only] = names.as_slice()
                && only.to_lowercase() == wanted
            {
                // One name on several cards (two imports): their numbers together.
                return pick_of(name, &many.iter().flat_map(|c| mobiles_of(c, region)).collect::<Vec<_>>(), pick, only);
            }
            let names: Vec<&str> = names.into_iter().take(10).collect();
            return Err(NumberError::Ambiguous { target: name.to_owned(), names: names.join(", ") });
        }
    };
    let full = contact.display_name().unwrap_or(name);
    pick_of(name, &mobiles_of(contact, region), pick, full)
}

/// What `sms TARGET` names: one number, or a contact's mobile numbers to choose from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    Number(PhoneNumber),
    /// `name` (the contact's) has several mobile numbers; `target` is what was typed for them.
    Choice {
        target: String,
        name: String,
        numbers: Vec<PhoneNumber>,
    },
}

/// One of a contact's mobile numbers, or the choice of them.
fn pick_of(target: &str, numbers: &[PhoneNumber], pick: Option<usize>, name: &str) -> Result<Resolved, NumberError> {
    let mut unique: Vec<PhoneNumber> = Vec::new();
    for n in numbers {
        if !unique.contains(n) {
            unique.push(n.clone());
        }
    }
    match (unique.as_slice(), pick) {
        ([], _) => Err(NumberError::NoMobile(name.to_owned())),
        (all, Some(n)) => match n.checked_sub(1).and_then(|i| all.get(i)) {
            Some(p) => Ok(Resolved::Number(p.clone())),
            None => Err(NumberError::NoSuchChoice { name: name.to_owned(), pick: n, count: all.len() }),
        },
        ([one], None) => Ok(Resolved::Number(one.clone())),
        (all, None) => Ok(Resolved::Choice { target: target.to_owned(), name: name.to_owned(), numbers: all.to_vec() }),
    }
}

/// Why an SMS cannot go to a number someone gave; said to them as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("{0} is not a valid phone number; SMS go only to valid numbers, such as +49 176 1234 5678.")]
    Invalid(String),
    #[error("{given} is not how this number is written; use {canonical}.")]
    NotCanonical { given: PhoneNumber, canonical: PhoneNumber },
    #[error("Give a phone number or a contact name, e.g. `sms +49 176 1234 5678`.")]
    Empty,
    #[error("No contact named '{0}' and not a phone number.")]
    NoContact(String),
    #[error("{0} has no mobile number; SMS go only to the numbers in a contact's mobile fields.")]
    NoMobile(String),
    #[error("{name} has {count} mobile numbers; there is no number {pick}.")]
    NoSuchChoice { name: String, pick: usize, count: usize },
    #[error("'{target}' matches several contacts: {names}. Be more precise.")]
    Ambiguous { target: String, names: String },
}

/// See [`SmsService::destination`].
pub fn destination(written: &str, region: Region) -> Result<PhoneNumber, NumberError> {
    let written = written.trim();
    inbound::phone(written, region).ok_or_else(|| NumberError::Invalid(written.to_owned()))
}

/// [`destination`] for a number taken from an address: it must also already be the number's
/// E.164 form, so that one number has one address (and one conversation).
pub fn check_address(phone: &PhoneNumber, region: Region) -> Result<(), NumberError> {
    let canonical = destination(phone.as_str(), region)?;
    if &canonical != phone {
        return Err(NumberError::NotCanonical { given: phone.clone(), canonical });
    }
    Ok(())
}

/// Every valid number in a contact's mobile fields (phones of kind `cell` or `mobile`), in
/// their order; never a landline.
fn mobiles_of(c: &Contact, region: Region) -> Vec<PhoneNumber> {
    c.phones
        .iter()
        .filter(|p| p.kinds.iter().any(|k| k == "cell" || k == "mobile"))
        .filter_map(|p| destination(&p.number, region).ok())
        .collect()
}

/// The contact store: the files of `missed_calls.contacts`, when configured.
fn load_contacts(files: &[PathBuf], region: Region) -> Result<ContactIndex, SetupError> {
    let mut all = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(path)
            .with_setup(|| format!("config key `missed_calls.contacts.files`: cannot read {}", path.display()))?;
        let is_csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        let parsed = if is_csv { contacts::parse_csv(&text) } else { contacts::parse_vcards(&text) };
        all.extend(parsed.with_setup(|| format!("config key `missed_calls.contacts.files`: {}", path.display()))?);
    }
    Ok(ContactIndex::new(all, region))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn de() -> Region {
        Region::parse("DE").expect("a region")
    }

    #[test]
    fn one_check_for_every_number_an_sms_goes_to() {
        for good in ["+4917612345678", "+491765550208", "+4930555000", "+4915100000000"] {
            let phone = PhoneNumber::parse(good).expect("syntax");
            assert_eq!(check_address(&phone, de()), Ok(()), "{good}");
            assert_eq!(destination(good, de()).as_ref().map(PhoneNumber::as_str), Ok(good));
        }
        // `+` and 3 to 15 digits passes PhoneNumber::parse, but these are no numbers.
        for bad in ["+4917684", "+4917644", "+49123", "+999123456", "+1555"] {
            let phone = PhoneNumber::parse(bad).expect("syntax");
            let err = check_address(&phone, de()).expect_err(bad);
            assert!(err.to_string().contains("not a valid phone number"), "{bad}: {err}");
        }
        // Written by a person: spaces and national form are fine, the result is E.164.
        assert_eq!(destination("+49 176 1234 5678", de()).map(|p| p.to_string()), Ok("+4917612345678".into()));
        assert_eq!(destination("0176 12345678", de()).map(|p| p.to_string()), Ok("+4917612345678".into()));
        assert!(destination("0176 84", de()).is_err());
    }

    fn phone(number: &str, kind: &str) -> contacts::Phone {
        contacts::Phone { number: number.into(), kinds: vec![kind.into()], e164: None }
    }

    #[test]
    fn every_mobile_number_of_a_contact_is_offered_and_never_a_landline() {
        let card = |name: &str, phones: Vec<contacts::Phone>| Contact {
            name: Some(name.into()),
            phones,
            ..Contact::default()
        };
        let index = ContactIndex::new(
            vec![
                card(
                    "Erika Mustermann",
                    vec![
                        phone("030 1234567", "work"),
                        phone("0176 12345678", "cell"),
                        phone("+49 151 23456789", "mobile"),
                    ],
                ),
                card("Otto Landline", vec![phone("030 7654321", "work"), phone("089 123456", "home")]),
                card("Mia Mobil", vec![phone("0176 5550100", "cell")]),
            ],
            de(),
        );
        let service_resolve = |t: &str| resolve(t, &index, de());
        let n = |s: &str| PhoneNumber::parse(s).unwrap();
        assert_eq!(
            service_resolve("erika"),
            Ok(Resolved::Choice {
                target: "erika".into(),
                name: "Erika Mustermann".into(),
                numbers: vec![n("+4917612345678"), n("+4915123456789")]
            })
        );
        assert_eq!(service_resolve("erika 2"), Ok(Resolved::Number(n("+4915123456789"))));
        let err = service_resolve("erika 3").unwrap_err();
        assert_eq!(err.to_string(), "Erika Mustermann has 2 mobile numbers; there is no number 3.");
        assert_eq!(service_resolve("Mia"), Ok(Resolved::Number(n("+491765550100"))));
        let err = service_resolve("Otto").unwrap_err();
        assert!(err.to_string().starts_with("Otto Landline has no mobile number"), "{err}");
        assert_eq!(service_resolve("0176 5550100"), Ok(Resolved::Number(n("+491765550100"))));
        assert_eq!(service_resolve("Nobody"), Err(NumberError::NoContact("Nobody".into())));
        assert!(matches!(service_resolve("m"), Err(NumberError::Ambiguous { .. })), "m is in several names");
    }
}
