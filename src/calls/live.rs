//! The module's settings: what the config file says ([`Base`]) and what is in effect
//! ([`Live`]: the config with the admins' and users' stored choices laid over it), with the
//! admin commands' view of them (options, block list, languages, contact imports).

use std::collections::HashMap;
use std::sync::Arc;

use crate::core::setup::{SetupContext as _, SetupError};

use super::config::{CallMail, MissedCalls};
use super::mail::{self, LinkPrefix, MailSettings, Templates};
use super::rules::{self, Directory, RuleSettings, UserEntry, UserId};
use super::service::CallsService;
use crate::contacts::{self, Contact, ContactIndex};
use crate::core::notify_choice::{Channel as Chosen, Kind, Stored};
use crate::core::phone::{Region, normalize};
use crate::core::watch::Party;
use crate::store::StoreError;

/// The module's settings from the config file.
pub(super) struct Base {
    pub(super) rules: RuleSettings,
    pub(super) users: Vec<UserEntry>,
    /// Contacts from `contacts.files`.
    pub(super) contacts: Vec<Contact>,
    pub(super) templates: Arc<Templates>,
    pub(super) render: MailSettings,
    /// `lines`: the names of our numbers, by [`line_key`].
    pub(super) lines: Arc<HashMap<String, String>>,
    /// Busy while on the phone, and its notes.
    pub(super) presence_from_calls: super::config::PresenceFromCalls,
    /// Who may pick up whose calls.
    pub(super) pickup_groups: super::pickup::PickupGroups,
}

/// The settings one call is handled with.
pub struct Live {
    pub rules: RuleSettings,
    pub(super) directory: Directory,
    pub(super) contacts: Arc<ContactIndex>,
    pub(super) templates: Arc<Templates>,
    /// Rendering options (also for chat notices when e-mail is off).
    pub render: MailSettings,
    /// Stored overrides that no longer read: (name, why).
    pub bad_overrides: Vec<(String, String)>,
    /// The names of our numbers (`lines`), by [`line_key`].
    pub(super) lines: Arc<HashMap<String, String>>,
    /// Line owners whose SMS notices are their own stored choice, with whose choice it is
    /// (`Party::key`): whether they may still have SMS is checked when a notice is made.
    pub(super) sms_chosen_by: HashMap<UserId, String>,
}

/// How a dialled number is looked up in `lines`: E.164 when it is a valid number, else its
/// digits (an extension stays itself).
pub(super) fn line_key(number: &str, region: Region) -> String {
    rules::number_key(&normalize(number, region).unwrap_or_else(|| number.to_owned()))
}

impl Live {
    /// The name to show for the number the caller dialled: a configured line name, else the
    /// contact it belongs to.
    pub(super) fn called_name(&self, called: &str, region: Region) -> Option<String> {
        if called.trim().is_empty() {
            return None;
        }
        self.lines
            .get(&line_key(called, region))
            .cloned()
            .or_else(|| self.contacts.lookup(called).and_then(Contact::display_name).map(str::to_owned))
    }
}

/// Lay a person's stored choice (`notifications missed-calls …`, `missed-calls on|off`) over their
/// line-owner entry: on/off, and a chosen channel with its address in place of the config's.
fn choose(entry: &mut UserEntry, choice: &Stored) {
    entry.opt_in = Some(choice.enabled);
    if let Some(channel) = choice.channel {
        entry.channels = Some(vec![channel.into()]);
        match (channel, &choice.address) {
            (Chosen::Email, Some(a)) => entry.email = Some(a.clone()),
            (Chosen::Sms, Some(a)) => entry.mobile = Some(a.clone()),
            _ => {}
        }
    }
}

/// Read the templates: the built-in ones, or `templates_dir/<language>/*.j2` (the missed-call
/// mail's three files, and the missed-chat mail's two, which fall back to the built-in ones
/// where the directory has none of its own).
fn load_templates(mail: Option<&CallMail>) -> Result<Templates, SetupError> {
    let Some(dir) = mail.and_then(|m| m.templates_dir.clone()) else {
        return Templates::builtin().setup("the built-in mail templates");
    };
    let mut sources = Vec::new();
    let entries =
        std::fs::read_dir(&dir).with_setup(|| format!("missed_calls.mail.templates_dir {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_setup(|| format!("missed_calls.mail.templates_dir {}", dir.display()))?;
        if !entry.file_type().with_setup(|| format!("missed_calls.mail.templates_dir {}", dir.display()))?.is_dir() {
            continue;
        }
        let lang = entry.file_name().to_string_lossy().into_owned();
        for file in mail::TEMPLATE_FILES.iter().chain(&mail::CHAT_TEMPLATE_FILES) {
            let path = entry.path().join(file);
            if let Ok(source) = std::fs::read_to_string(&path) {
                sources.push((lang.clone(), (*file).to_owned(), source));
            }
        }
    }
    let own: Vec<(String, String)> = sources.iter().map(|(l, f, _)| (l.clone(), f.clone())).collect();
    sources.extend(mail::builtin_sources(|l, f| {
        mail::CHAT_TEMPLATE_FILES.contains(&f) && !own.iter().any(|(ol, of)| ol == l && of == f)
    }));
    let templates = Templates::from_sources(sources).setup("missed_calls.mail.templates_dir")?;
    if templates.languages().is_empty() {
        return Err(SetupError::msg(format!(
            "config key `missed_calls.mail.templates_dir`: {} has no <language>/ directory with {}",
            dir.display(),
            mail::TEMPLATE_FILES.join(", ")
        )));
    }
    Ok(templates)
}

fn load_contacts(settings: &MissedCalls) -> Result<Vec<Contact>, SetupError> {
    let mut all = Vec::new();
    for path in &settings.contacts.files {
        let text = std::fs::read_to_string(path)
            .with_setup(|| format!("config key `missed_calls.contacts.files`: cannot read {}", path.display()))?;
        let is_csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        let parsed = if is_csv { contacts::parse_csv(&text) } else { contacts::parse_vcards(&text) };
        let parsed = parsed.with_setup(|| format!("config key `missed_calls.contacts.files`: {}", path.display()))?;
        tracing::info!(file = %path.display(), contacts = parsed.len(), "contacts imported");
        all.extend(parsed);
    }
    Ok(all)
}

impl Base {
    /// The settings in the config file; the checks that need the templates happen here.
    pub(super) fn load(settings: &MissedCalls, region: Region) -> Result<Self, SetupError> {
        let templates = load_templates(settings.mail.as_ref())?;
        let render = match &settings.mail {
            Some(m) => MailSettings {
                from_address: m.from_address.clone(),
                from_name: m.from_name.clone(),
                message_id_domain: m.message_id_domain.clone(),
                link_prefix: LinkPrefix::parse(&m.link_prefix).setup("missed_calls.mail.link_prefix")?,
                caller_as_sender: m.caller_as_sender,
                caller_as_envelope_sender: m.caller_as_envelope_sender,
                attach_vcard: m.attach_vcard,
                default_language: m.default_language.clone(),
                zone: m
                    .zone()
                    .map_err(|e| SetupError::msg(format!("config key `missed_calls.mail.time_zone`: {e}")))?,
            },
            None => MailSettings {
                from_address: "ucbridge@localhost".into(),
                from_name: None,
                message_id_domain: "ucbridge.invalid".into(),
                link_prefix: LinkPrefix::Tel,
                caller_as_sender: false,
                caller_as_envelope_sender: false,
                attach_vcard: false,
                default_language: "en".into(),
                zone: Default::default(),
            },
        };
        let languages = templates.languages();
        if !languages.contains(&render.default_language) {
            return Err(SetupError::msg(format!(
                "config key `missed_calls.mail.default_language`: no templates for {:?} (have {languages:?})",
                render.default_language
            )));
        }
        for u in &settings.users {
            if let Some(l) = &u.language
                && !languages.contains(l)
            {
                return Err(SetupError::msg(format!(
                    "config key `missed_calls.users`: {}: no templates for language {l:?}",
                    u.id
                )));
            }
        }
        let contacts = load_contacts(settings)?;
        let lines = settings.lines.iter().map(|l| (line_key(&l.number, region), l.name.clone())).collect();
        Ok(Self {
            presence_from_calls: settings.presence_from_calls.clone(),
            pickup_groups: settings.pickup_groups.clone(),
            lines: Arc::new(lines),
            rules: settings.rules.clone(),
            users: settings.users.clone(),
            contacts,
            templates: Arc::new(templates),
            render,
        })
    }
}

/// One option as `missed-calls options` shows it.
pub struct OptionRow {
    pub name: &'static str,
    pub about: &'static str,
    pub value: String,
    /// The config's value, when a stored one overrides it.
    pub config: Option<String>,
}

impl CallsService {
    /// The settings in effect now.
    pub fn live(&self) -> Arc<Live> {
        match self.live.read() {
            Ok(l) => l.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub(super) fn base(&self) -> Arc<Base> {
        match self.base.lock() {
            Ok(b) => b.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Rebuild the settings in effect from the config and what is stored (after a command
    /// changed something); with `contacts`, re-read the imported contact files too.
    pub async fn refresh(&self, contacts: bool) -> Result<(), StoreError> {
        let store = &self.store;
        let base = self.base();
        let overrides = store.call_settings().await?;
        let blocks = store.block_list().await?;
        let prefs: HashMap<(String, String), String> =
            store.user_settings().await?.into_iter().map(|(p, n, v)| ((p, n), v)).collect();
        let choices: HashMap<String, Stored> =
            store.notification_choices(Kind::MissedCalls).await?.into_iter().collect();
        let contacts = if contacts {
            let mut all = base.contacts.clone();
            for import in store.contact_imports().await? {
                let format = crate::contacts::import::Format::parse(&import.format)
                    .unwrap_or(crate::contacts::import::Format::Csv);
                match crate::contacts::import::read(&import.content, format, self.region) {
                    Ok(report) => all.extend(report.contacts),
                    Err(e) => tracing::warn!(file = import.name, error = %e, "stored contact file no longer reads"),
                }
            }
            Arc::new(ContactIndex::new(all, self.region))
        } else {
            self.live().contacts.clone()
        };
        let mut rules = base.rules.clone();
        let mut render = base.render.clone();
        let bad_overrides = super::settings::overlay(&overrides, &mut rules, &mut render);
        for (name, why) in &bad_overrides {
            tracing::warn!(name, why, "stored missed-call setting skipped");
        }
        super::settings::add_blocks(&mut rules, blocks.into_iter().map(|b| (b.kind, b.entry)));
        let languages = base.templates.languages();
        let mut sms_chosen_by = HashMap::new();
        for u in &base.users {
            for key in u.logon_keys() {
                // As `choose`: the last of the person's accounts with a choice decides.
                match choices.get(&key).map(|c| c.channel) {
                    Some(Some(Chosen::Sms)) => {
                        sms_chosen_by.insert(u.id.clone(), key);
                    }
                    Some(Some(_)) => {
                        sms_chosen_by.remove(&u.id);
                    }
                    _ => {}
                }
            }
        }
        let entries = base
            .users
            .iter()
            .map(|u| {
                let mut entry = u.clone();
                for key in u.logon_keys() {
                    if let Some(choice) = choices.get(&key) {
                        choose(&mut entry, choice);
                    }
                    if let Some(l) = prefs.get(&(key, "language".to_owned()))
                        && languages.contains(l)
                    {
                        entry.language = Some(l.clone());
                    }
                }
                entry
            })
            .collect();
        let live = Live {
            rules,
            directory: Directory::new(entries),
            contacts,
            templates: base.templates.clone(),
            render,
            bad_overrides,
            lines: base.lines.clone(),
            sms_chosen_by,
        };
        match self.live.write() {
            Ok(mut l) => *l = Arc::new(live),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(live),
        }
        Ok(())
    }

    /// Apply a re-read config (the section, its files resolved, `None` when it was removed):
    /// rules, users, templates, mail options and contact files change at once; the answer lists
    /// what needs a restart.
    pub async fn reload(&self, new: Option<&MissedCalls>) -> Result<Vec<String>, SetupError> {
        let Some(new) = new else {
            return Ok(vec!["missed_calls (the section was removed; the module stops at the next restart)".into()]);
        };
        let base = Base::load(new, self.region)?;
        let old = &self.settings;
        let mut restart = Vec::new();
        // As `config::differs`: the sections derive `Debug`, not `PartialEq`.
        let differs = |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") != format!("{b:?}");
        if differs(&old.webhook, &new.webhook) {
            restart.push("missed_calls.webhook".to_owned());
        }
        if old.journal_token != new.journal_token {
            restart.push("missed_calls.journal_token".to_owned());
        }
        if differs(&old.ami, &new.ami) {
            restart.push("missed_calls.ami".to_owned());
        }
        if differs(&old.mail.as_ref().map(|m| &m.smtp), &new.mail.as_ref().map(|m| &m.smtp)) {
            restart.push("missed_calls.mail.smtp".to_owned());
        }
        if old.contacts.region != new.contacts.region {
            restart.push("missed_calls.contacts.region".to_owned());
        }
        if old.idle_expiry_secs != new.idle_expiry_secs {
            restart.push("missed_calls.idle_expiry_secs".to_owned());
        }
        match self.base.lock() {
            Ok(mut b) => *b = Arc::new(base),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(base),
        }
        self.refresh(true).await.setup("reading the stored missed-call settings")?;
        Ok(restart)
    }

    /// The template languages (for `language`).
    pub fn languages(&self) -> Vec<String> {
        self.live().templates.languages().to_vec()
    }

    /// A number as the block list keeps it: E.164 when it is a valid number, else its digits.
    pub fn block_key(&self, number: &str) -> String {
        normalize(number, self.region).unwrap_or_else(|| rules::number_key(number))
    }

    /// The config's block list (shown beside the stored one).
    pub fn config_block_list(&self) -> rules::BlockList {
        self.base().rules.block_list.clone()
    }

    /// The policy and every option, with the config's value where a stored one overrides it.
    pub fn options(&self, stored: &[(String, String)]) -> Vec<OptionRow> {
        let (live, base) = (self.live(), self.base());
        [("policy", "who is told: none, first, last, all")]
            .iter()
            .chain(super::settings::OPTIONS)
            .map(|&(name, about)| OptionRow {
                name,
                about,
                value: super::settings::value(name, &live.rules, &live.render).unwrap_or_default(),
                config: stored
                    .iter()
                    .any(|(n, _)| n == name)
                    .then(|| super::settings::value(name, &base.rules, &base.render).unwrap_or_default()),
            })
            .collect()
    }

    /// Check a value before it is stored: it must read as the config's would.
    pub fn check_option(&self, name: &str, value: &str) -> Result<(), super::settings::SettingError> {
        let live = self.live();
        let (mut rules, mut render) = (live.rules.clone(), live.render.clone());
        super::settings::apply(name, value, &mut rules, &mut render)
    }

    /// The directory entry of a chat account, if they own a line.
    pub fn user_of(&self, who: &Party) -> Option<UserId> {
        self.entry_of(who).map(|u| u.id)
    }

    /// The config's line-owner entry of a chat account.
    fn entry_of(&self, who: &Party) -> Option<UserEntry> {
        let key = who.key();
        self.base().users.iter().find(|u| u.logon_keys().contains(&key)).cloned()
    }

    /// Whether a line owner who never chose gets missed-call notices: the config's `opt_in`
    /// for them, else the rules' `default_opt_in` (as the admins set it).
    pub fn default_opt_in(&self, who: &Party) -> bool {
        self.entry_of(who).and_then(|u| u.opt_in).unwrap_or(self.live().rules.default_opt_in)
    }

    /// The config's e-mail address and mobile number of a line owner (the default addresses
    /// of their notices).
    pub fn addresses_of(&self, who: &Party) -> (Option<String>, Option<String>) {
        self.entry_of(who).map(|u| (u.email, u.mobile)).unwrap_or_default()
    }

    /// The language of a line owner's notices (`missed_calls.users[].language`).
    pub fn user_language(&self, who: &Party) -> Option<String> {
        self.entry_of(who).and_then(|u| u.language)
    }

    /// The channels the rules send missed-call notices on (`rules.channels`, as the admins set it).
    pub fn rule_channels(&self) -> Vec<rules::Channel> {
        self.live().rules.channels.clone()
    }

    /// Read a contact file for an import (nothing is stored here).
    pub fn read_contacts(
        &self,
        text: &str,
        format: crate::contacts::import::Format,
    ) -> Result<crate::contacts::import::Report, crate::contacts::ContactError> {
        crate::contacts::import::read(text, format, self.region)
    }

    /// How many contacts lookups use now.
    pub fn contact_count(&self) -> usize {
        self.live().contacts.len()
    }

    /// The contacts in use: the config's files and the admins' imports.
    pub fn contacts(&self) -> Arc<ContactIndex> {
        self.live().contacts.clone()
    }
}
