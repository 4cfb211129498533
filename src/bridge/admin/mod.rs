//! Admin commands: admins (from the config) steer the bridge from the control room on Matrix,
//! or through the admin ad-hoc commands on XMPP. Every command is audited with who ran it and
//! how it ended. One file per command (group); this one holds who is an admin, the dispatch
//! and the audit of each run.

mod adhoc;
mod audit;
mod blocklist;
mod broadcast;
mod chatbot;
mod contacts_import;
mod control_room;
mod groups;
mod links;
mod overview;
mod permissions;
mod policy;
mod reload;

use std::sync::Arc;
use std::time::Instant;

use crate::bridge::Bridge;
use crate::calls::service::CallsService;
use crate::commands::admin::{self, AdminCommand, RoomsCommand, UsersCommand};
use crate::core::refusal::Refusal;
use crate::core::watch::Party;

pub use control_room::as_html;

/// The permission that lets someone outside the served servers use the bridge.
pub const CHAT_PERMISSION: &str = "chat";

/// What a command answers: the text, or why it could not be done (bad arguments, unknown
/// room); the text says why.
type Answer = crate::store::Result<Result<String, Refusal>>;

impl Bridge {
    /// Is this person an admin (listed in `admins:`, with `*` patterns)?
    pub fn is_admin(&self, who: &Party) -> bool {
        let config = self.current_config();
        let (patterns, id) = match who {
            Party::Matrix(u) => (&config.admins.matrix, u.to_string()),
            Party::Xmpp(j) => (&config.admins.xmpp, j.to_string()),
        };
        patterns.iter().any(|p| admin::matches(p, &id))
    }

    /// Whether `who` may use the bridge: their Matrix server or XMPP domain is one the bridge
    /// serves (`access`), they are an admin, or an admin granted them the `chat` permission.
    pub async fn may_use(&self, who: &Party) -> bool {
        let config = self.current_config();
        let served = match who {
            Party::Matrix(u) => config.matrix_server_allowed(u.server()),
            // The served server's own services (`conference.corp.example`) are its operator's.
            Party::Xmpp(j) => crate::core::access::parents(j.domain()).any(|d| config.xmpp_domain_allowed(d)),
        };
        if served || self.is_admin(who) {
            return true;
        }
        match self.store.has_permission(who, CHAT_PERMISSION).await {
            Ok(granted) => granted,
            Err(e) => {
                tracing::warn!(%who, error = %e, "cannot read permissions; refusing");
                false
            }
        }
    }

    /// What someone the bridge does not serve is told.
    pub fn not_served(&self, who: &Party) -> String {
        format!(
            "This bridge serves the users of its own servers; {who} is not one of them. An admin of the bridge can allow you (permissions grant {who} chat)."
        )
    }

    /// The config as last (re)loaded.
    pub fn current_config(&self) -> Arc<crate::config::Config> {
        match self.live_config.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub(in crate::bridge) fn set_current_config(&self, config: crate::config::Config) {
        match self.live_config.write() {
            Ok(mut c) => *c = Arc::new(config),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(config),
        }
    }

    fn calls_module(&self) -> Result<&Arc<CallsService>, Refusal> {
        self.calls.get().ok_or_else(|| {
            Refusal::unsupported(
                "Missed-call notifications are off on this bridge (no missed_calls section in the config).",
            )
        })
    }

    /// Run an admin command line for `who` and audit it (a refusal too). `input` says where the
    /// command came from: what it answers (a file to import) or a file given with it.
    pub(in crate::bridge) async fn run_admin_command(
        self: &Arc<Self>,
        who: &Party,
        text: &str,
        input: &AdminInput,
    ) -> String {
        let parsed = admin::parse_with(text, &self.current_config().admins.command_prefix);
        self.run_admin(who, text, parsed, input).await
    }

    /// Run a parsed admin command (or answer why it did not parse), audited as `text`: the
    /// rights are checked first; a mistake is answered with the command's usage.
    async fn run_admin(
        self: &Arc<Self>,
        who: &Party,
        text: &str,
        parsed: Result<AdminCommand, String>,
        input: &AdminInput,
    ) -> String {
        let (ok, answer) = match parsed {
            Err(usage) => (false, usage),
            Ok(command) => match command.access().check(self.is_admin(who)) {
                Err(refusal) => (false, refusal),
                Ok(()) => match self.admin_command(who, command, input).await {
                    Ok(Ok(answer)) => (true, answer),
                    Ok(Err(mistake)) => (false, with_usage(mistake.text, text)),
                    Err(e) => (false, format!("The command failed: {e}")),
                },
            },
        };
        self.audit_run(who, text, ok, &answer).await;
        answer
    }

    /// Log and audit one admin command (or a refused attempt).
    async fn audit_run(&self, who: &Party, text: &str, ok: bool, answer: &str) {
        tracing::info!(admin = %who, command = text, ok, "admin command");
        if let Err(e) = self.store.audit(who, text, ok, answer).await {
            tracing::warn!(error = %e, "cannot write the audit log");
        }
    }

    /// Each command to the file that runs it.
    async fn admin_command(self: &Arc<Self>, who: &Party, command: AdminCommand, input: &AdminInput) -> Answer {
        match command {
            AdminCommand::Help { command } if command.is_empty() => Ok(Ok(admin::help())),
            AdminCommand::Help { command } => Ok(admin::help_for(&command).map_err(Refusal::bad_request)),
            AdminCommand::Status => self.status().await,
            AdminCommand::Rooms { action: RoomsCommand::List } => self.rooms_list().await,
            AdminCommand::Rooms { action: RoomsCommand::Info { room } } => self.room_info(room).await,
            AdminCommand::Rooms { action: RoomsCommand::Link { matrix_room, xmpp_muc } } => {
                self.link_room(&matrix_room, &xmpp_muc).await
            }
            AdminCommand::Rooms { action: RoomsCommand::Unlink { room } } => self.unlink_room(&room).await,
            AdminCommand::Users { action: UsersCommand::List } => self.users_list().await,
            AdminCommand::Users { action: UsersCommand::Info { user } } => self.user_info(user).await,
            AdminCommand::Permissions { action } => self.permissions_command(who, action).await,
            AdminCommand::Groups { action } => self.groups_command(who, action).await,
            AdminCommand::Block { action } => self.block_command(who, action).await,
            AdminCommand::MissedCalls { action } => self.missed_calls_command(who, action).await,
            AdminCommand::Contacts { action } => self.contacts_command(who, action, input).await,
            AdminCommand::Chatbot { action } => self.chatbot_command(action).await,
            AdminCommand::Broadcast { text } => self.broadcast(text).await,
            AdminCommand::Reload => Ok(self.reload().await),
            AdminCommand::Audit { count } => self.audit_command(count).await,
        }
    }
}

/// A mistake with the usage of the command it is about.
fn with_usage(mistake: String, line: &str) -> String {
    let words: Vec<String> =
        line.split_whitespace().filter(|w| !w.starts_with('!')).take(2).map(str::to_owned).collect();
    let usage = admin::help_for(&words).or_else(|_| admin::help_for(&words[..words.len().min(1)]));
    match usage {
        Ok(u) if !words.is_empty() => format!("{mistake}\n{u}"),
        _ => mistake,
    }
}

/// Where an admin command came from, beyond its text.
#[derive(Default)]
pub(in crate::bridge) struct AdminInput {
    /// The event the command answers (Matrix), e.g. the file to import.
    pub reply_to: Option<String>,
    /// A file given with the command (XMPP form): name and content.
    pub file: Option<(String, String)>,
}

/// When the bridge started (for `status`).
pub(super) fn started() -> Instant {
    Instant::now()
}
