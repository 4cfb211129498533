//! The line owners: who can be told about a call, by extension or by the line (number) they own.

use std::collections::HashMap;

use serde::Deserialize;

use super::{Channel, number_key};
use crate::calls::event::{Extension, string_id};

string_id!(
    /// The bridge's key for a person (their Matrix ID or JID, as the wiring chooses).
    UserId
);

/// A person who can be told, and how to reach them: one entry of `missed_calls.users:` in the
/// config file, with the person's stored choices (`opt_in`, `language`) laid over it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    pub id: UserId,
    /// Extensions whose phones belong to this person.
    #[serde(default, deserialize_with = "trimmed_extensions")]
    pub extensions: Vec<Extension>,
    /// External numbers (direct lines) that ring this person.
    #[serde(default)]
    pub lines: Vec<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub mobile: Option<String>,
    /// Language code for the notice (`en`, `de`); `None` = the server default.
    #[serde(default)]
    pub language: Option<String>,
    /// The person's own choice; `None` = [`RuleSettings::default_opt_in`].
    #[serde(default)]
    pub opt_in: Option<bool>,
    /// Matrix account for chat notices (in their chat with the bridge bot).
    #[serde(default)]
    pub matrix_user: Option<String>,
    /// XMPP account for chat notices (a message from the component).
    #[serde(default)]
    pub xmpp_jid: Option<String>,
    /// The person's own channel choice; `None` = every channel the server uses.
    #[serde(default)]
    pub channels: Option<Vec<Channel>>,
}

/// Extensions as the config file writes them, without surrounding spaces.
fn trimmed_extensions<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Extension>, D::Error> {
    let written = Vec::<String>::deserialize(d)?;
    Ok(written.iter().map(|e| Extension::new(e.trim())).collect())
}

impl UserEntry {
    pub fn new(id: &str, extensions: &[&str]) -> Self {
        Self {
            id: UserId::new(id),
            extensions: extensions.iter().map(|e| Extension::new(*e)).collect(),
            lines: Vec::new(),
            email: None,
            mobile: None,
            language: None,
            opt_in: None,
            matrix_user: None,
            xmpp_jid: None,
            channels: None,
        }
    }

    /// Whether a chat notice can reach them (a Matrix account or a JID).
    pub fn chat(&self) -> bool {
        self.matrix_user.is_some() || self.xmpp_jid.is_some()
    }

    /// Keys of this person's chat accounts in `user_logon` (`Party::key` form).
    pub fn logon_keys(&self) -> Vec<String> {
        let m = self.matrix_user.iter().map(|u| format!("matrix:{u}"));
        m.chain(self.xmpp_jid.iter().map(|j| format!("xmpp:{j}"))).collect()
    }
}

/// The line owners: who owns which extension and line.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    users: Vec<UserEntry>,
    by_extension: HashMap<Extension, usize>,
    by_line: HashMap<String, usize>,
}

impl Directory {
    /// Build the directory. An extension or line listed for two people belongs to the first.
    pub fn new(users: Vec<UserEntry>) -> Self {
        let mut by_extension = HashMap::new();
        let mut by_line = HashMap::new();
        for (i, u) in users.iter().enumerate() {
            for e in &u.extensions {
                by_extension.entry(e.clone()).or_insert(i);
            }
            for l in &u.lines {
                by_line.entry(number_key(l)).or_insert(i);
            }
        }
        Self { users, by_extension, by_line }
    }

    pub fn owner_of_extension(&self, extension: &Extension) -> Option<&UserEntry> {
        self.by_extension.get(extension).map(|&i| &self.users[i])
    }

    /// The owner of a dialled number: a line, or an extension dialled directly.
    pub fn owner_of_number(&self, number: &str) -> Option<&UserEntry> {
        self.by_line
            .get(&number_key(number))
            .or_else(|| self.by_extension.get(&Extension::new(number.trim())))
            .map(|&i| &self.users[i])
    }

    pub fn get(&self, id: &UserId) -> Option<&UserEntry> {
        self.users.iter().find(|u| &u.id == id)
    }

    pub fn users(&self) -> &[UserEntry] {
        &self.users
    }
}
