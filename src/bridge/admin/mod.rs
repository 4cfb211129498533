//! The control room and admin commands: admins (from the config) steer the bridge from a
//! Matrix room the bot keeps, or through the `admin` ad-hoc command on XMPP. Every command is
//! audited with who ran it and how it ended.

use std::sync::Arc;
use std::time::Instant;

use crate::bridge::Bridge;
use crate::commands::admin::{self, AdminCommand, PermissionsCommand, RoomsCommand, UsersCommand};
use crate::core::action::{Action, Text};
use crate::core::ids::{BareJid, MatrixUserId, RoomId};
use crate::core::watch::Party;
use crate::matrix::client::MatrixError;

/// The permission that lets someone outside the served servers use the bridge.
pub const CHAT_PERMISSION: &str = "chat";

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

    pub(super) fn set_current_config(&self, config: crate::config::Config) {
        match self.live_config.write() {
            Ok(mut c) => *c = Arc::new(config),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(config),
        }
    }

    pub fn control_room(&self) -> Option<RoomId> {
        self.control.lock().ok().and_then(|c| c.clone())
    }

    /// At start: find the control room by its alias, or create it and invite the admins.
    pub async fn ensure_control_room(&self) -> Result<RoomId, MatrixError> {
        let alias = format!("#{}:{}", self.config.admins.control_room, self.map.homeserver);
        let room = match self.matrix.resolve_alias(&alias).await? {
            // Only a room the bot made is trusted with the admins' traffic: an alias someone
            // else claimed (before the registration reserved it) is refused, not joined.
            Some(room) => {
                self.matrix.join(&room, &self.map.bot()).await?;
                match self.matrix.room_origin(&room).await? {
                    Some(o) if o.creator == self.map.bot().to_string() => room,
                    _ => {
                        return Err(MatrixError::Protocol(format!(
                            "{alias} points to {room}, a room the bridge did not create; remove the alias or choose another admins.control_room"
                        )));
                    }
                }
            }
            None => {
                let admins: Vec<MatrixUserId> = self
                    .config
                    .admins
                    .matrix
                    .iter()
                    .filter(|p| !p.contains('*'))
                    .filter_map(|p| MatrixUserId::parse(p).ok())
                    .collect();
                let room = self
                    .matrix
                    .create_group_room(
                        "ucbridge control room",
                        &self.config.admins.control_room,
                        false,
                        &[],
                        &[],
                        "control",
                    )
                    .await?;
                tracing::info!(%room, alias, "created the control room");
                // One by one: an admin without an account yet must not stop the others (they
                // can ask the bot for an invitation later: `control-room`).
                for admin in admins {
                    if let Err(e) = self.matrix.invite(&room, &self.map.bot(), &admin).await {
                        tracing::info!(%admin, error = %e, "cannot invite an admin to the control room");
                    }
                }
                room
            }
        };
        if let Ok(mut c) = self.control.lock() {
            *c = Some(room.clone());
        }
        Ok(room)
    }

    /// Run an admin command for `who` and audit it (a refusal too). `input` says where the
    /// command came from: what it answers (a file to import) or a file given with it.
    pub(super) async fn run_admin_command(self: &Arc<Self>, who: &Party, text: &str, input: &AdminInput) -> String {
        let (ok, answer) = match admin::parse_with(text, &self.current_config().admins.command_prefix) {
            Err(usage) => (false, usage),
            Ok(command) => match command.access().check(self.is_admin(who)) {
                Err(refusal) => (false, refusal),
                Ok(()) => match self.admin_command(who, command, input).await {
                    Ok(Ok(answer)) => (true, answer),
                    Ok(Err(mistake)) => (false, with_usage(mistake, text)),
                    Err(e) => (false, format!("The command failed: {e}")),
                },
            },
        };
        tracing::info!(admin = %who, command = text, ok, "admin command");
        if let Err(e) = self.store.audit(who, text, ok, &answer).await {
            tracing::warn!(error = %e, "cannot write the audit log");
        }
        answer
    }

    /// `Ok(Err(text))`: the command could not do what was asked (bad arguments, unknown room);
    /// the text says why.
    async fn admin_command(
        self: &Arc<Self>,
        who: &Party,
        command: AdminCommand,
        input: &AdminInput,
    ) -> crate::store::Result<Result<String, String>> {
        Ok(Ok(match command {
            AdminCommand::Help { command } if command.is_empty() => admin::help(),
            AdminCommand::Help { command } => return Ok(admin::help_for(&command)),
            AdminCommand::Rooms { action: RoomsCommand::Link { matrix_room, xmpp_muc } } => {
                return self.link_room(&matrix_room, &xmpp_muc).await;
            }
            AdminCommand::Rooms { action: RoomsCommand::Unlink { room } } => return self.unlink_room(&room).await,
            AdminCommand::Groups { action } => return self.groups_command(who, action).await,
            AdminCommand::Block { action } => return self.block_command(who, action).await,
            AdminCommand::MissedCalls { action } => return self.missed_calls_command(who, action).await,
            AdminCommand::Contacts { action } => return self.contacts_command(who, action, input).await,
            AdminCommand::Reload => return Ok(self.reload().await),
            AdminCommand::Audit { count } => {
                let entries = self.store.audit_log(i64::from(count)).await?;
                if entries.is_empty() {
                    "The audit log is empty.".into()
                } else {
                    let mut lines = vec![format!("The last {} admin commands, newest first:", entries.len())];
                    lines.push("| when (UTC) | who | command | result |".into());
                    for (at, who, command, ok) in entries {
                        let when = chrono::DateTime::from_timestamp_millis(at)
                            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                            .unwrap_or_else(|| at.to_string());
                        let one_line = |s: &str| s.replace(['\n', '|'], " ");
                        lines.push(format!(
                            "| {when} | {} | {} | {} |",
                            one_line(&who),
                            one_line(&command),
                            if ok { "done" } else { "refused or failed" }
                        ));
                    }
                    lines.join("\n")
                }
            }
            AdminCommand::Status => {
                let uptime = self.started.elapsed().as_secs();
                format!(
                    "ucbridge {} — up {}h {:02}m {:02}s\nhomeserver: {}\nXMPP: {}\noutbox: {} queued\nrooms: {} hosted, {} portals\nghosts: {}, direct chats: {}, watches: {}",
                    env!("CARGO_PKG_VERSION"),
                    uptime / 3600,
                    uptime / 60 % 60,
                    uptime % 60,
                    self.config.homeserver.url,
                    if self.xmpp.is_connected() { "connected" } else { "disconnected" },
                    self.store.outbox_len().await?,
                    self.store.count("bridged_room").await?,
                    self.store.count("xmpp_room").await?,
                    self.store.count("ghost").await?,
                    self.store.count("dm_portal").await?,
                    self.store.count("presence_watch").await?,
                )
            }
            AdminCommand::Rooms { action: RoomsCommand::List } => {
                let rooms = self.store.rooms().await?;
                let linked = self.store.xmpp_rooms().await?;
                if rooms.is_empty() && linked.is_empty() {
                    return Ok(Ok("No hosted or linked rooms.".into()));
                }
                let mut lines = vec!["Hosted rooms:".to_owned()];
                for r in rooms {
                    let n = self.store.room_members(&r.room).await?.len();
                    lines.push(format!(
                        "- {} ({}): {n} participants, XMPP {}",
                        r.alias.as_deref().unwrap_or(r.room.as_str()),
                        r.name.as_deref().unwrap_or("no name"),
                        self.muc_of(&r)
                    ));
                }
                if !linked.is_empty() {
                    lines.push("Portal rooms of MUCs:".to_owned());
                    for (room, muc) in linked {
                        let n = self.store.xmpp_occupants(&room).await?.len();
                        lines.push(format!("- {room}: {muc}, {n} Matrix occupants"));
                    }
                }
                lines.join("\n")
            }
            AdminCommand::Rooms { action: RoomsCommand::Info { room } } => {
                let found = if room.starts_with('#') {
                    self.store.room_by_alias(&room).await?
                } else {
                    match RoomId::parse(&room) {
                        Ok(id) => self.store.room(&id).await?,
                        Err(_) => None,
                    }
                };
                let Some(r) = found else { return Ok(Err(format!("{room} is not a hosted room."))) };
                let mut lines = vec![format!(
                    "{} — {} — owner {} — {}",
                    r.alias.as_deref().unwrap_or(r.room.as_str()),
                    r.room,
                    r.owner,
                    if r.open { "open" } else { "members only" }
                )];
                for m in self.store.room_members(&r.room).await? {
                    let state = if m.joined { "" } else { " (invited)" };
                    lines.push(format!("- {} ({}): {}{state}", m.nick, m.party, m.role.as_str()));
                }
                lines.join("\n")
            }
            AdminCommand::Permissions { action: PermissionsCommand::Grant { user, permission } } => {
                let target = match Party::parse_contact(&user, &self.map) {
                    Ok(t) => t,
                    Err(e) => return Ok(Err(format!("Cannot grant to {user}: {e}"))),
                };
                self.store.grant(&target, permission.as_str(), who).await?;
                format!("OK: {target} may use {}.", permission.as_str())
            }
            AdminCommand::Permissions { action: PermissionsCommand::Revoke { user, permission } } => {
                let target = match Party::parse_contact(&user, &self.map) {
                    Ok(t) => t,
                    Err(e) => return Ok(Err(format!("Cannot revoke from {user}: {e}"))),
                };
                if self.store.revoke(&target, permission.as_str()).await? {
                    format!("OK: {target} may no longer use {}.", permission.as_str())
                } else {
                    format!("{target} did not have {}.", permission.as_str())
                }
            }
            AdminCommand::Permissions { action: PermissionsCommand::List } => {
                let grants = self.store.permissions().await?;
                if grants.is_empty() {
                    "No permissions granted.".into()
                } else {
                    let lines: Vec<_> = grants.iter().map(|(p, perm)| format!("- {p}: {perm}")).collect();
                    format!("Permissions:\n{}", lines.join("\n"))
                }
            }
            AdminCommand::Users { action: UsersCommand::List } => {
                let mut lines = vec!["XMPP users (ghosts):".to_owned()];
                for (ghost, name) in self.store.ghosts().await? {
                    let jid = MatrixUserId::parse(&ghost)
                        .ok()
                        .and_then(|g| self.map.jid_for_ghost(&g))
                        .and_then(Result::ok)
                        .map(|j| j.to_string())
                        .unwrap_or_default();
                    lines.push(format!("- {jid} as {ghost}{}", name.map(|n| format!(" ({n})")).unwrap_or_default()));
                }
                lines.push("Matrix users with a chat with the bot:".to_owned());
                for (user, _) in self.store.bot_dm_users().await? {
                    lines.push(format!("- {user}"));
                }
                lines.join("\n")
            }
            AdminCommand::Users { action: UsersCommand::Info { user } } => {
                let who = match Party::parse_contact(&user, &self.map) {
                    Ok(p) => p,
                    Err(e) => return Ok(Err(format!("Cannot read {user}: {e}"))),
                };
                let perms = self.store.permissions_of(&who).await?;
                let rooms = self.store.rooms_of(&who).await?;
                let watches = self.store.begin().await?.watches_by(&who).await?;
                let mut lines = vec![format!("{who}{}", if self.is_admin(&who) { " (admin)" } else { "" })];
                lines.push(format!(
                    "permissions: {}",
                    if perms.is_empty() { "none".to_owned() } else { perms.join(", ") }
                ));
                for (room, m) in rooms {
                    lines.push(format!("- room {room} as {} ({})", m.nick, m.role.as_str()));
                }
                lines.push(format!("watches: {}", watches.len()));
                lines.join("\n")
            }
            AdminCommand::Broadcast { text } => {
                let text = text.join(" ");
                if text.trim().is_empty() {
                    return Ok(Err("Nothing to broadcast: broadcast TEXT".into()));
                }
                let notice = Text::notice(format!("Notice from the bridge admins: {text}"));
                let mut actions = vec![];
                for (user, room) in self.store.bot_dm_users().await? {
                    if let (Ok(_), Ok(room)) = (MatrixUserId::parse(&user), RoomId::parse(&room)) {
                        actions.push(Action::MatrixPost {
                            room,
                            user: self.map.bot(),
                            text: notice.clone(),
                            nick: None,
                        });
                    }
                }
                for jid in self.store.known_xmpp_users().await? {
                    if let Ok(to) = BareJid::parse(&jid) {
                        actions.push(Action::XmppNotice { to, text: notice.clone() });
                    }
                }
                let n = actions.len();
                self.queue_all(actions).await?;
                format!("OK: the notice goes to {n} people.")
            }
        }))
    }

    /// An admin command from XMPP (the `admin` ad-hoc command); the caller checked the rights.
    pub async fn xmpp_admin(self: &Arc<Self>, from: &BareJid, line: &str, file: Option<(String, String)>) -> String {
        self.run_admin_command(&Party::Xmpp(from.clone()), line, &AdminInput { reply_to: None, file }).await
    }

    /// A message in the control room: an admin's command, or a refusal; the answer is a reply
    /// to the command, with lists as HTML.
    pub(super) async fn control_room_message(
        self: &Arc<Self>,
        sender: &MatrixUserId,
        body: &str,
        event_id: &str,
        reply_to: Option<String>,
    ) -> Option<Action> {
        let room = self.control_room()?;
        let who = Party::Matrix(sender.clone());
        let answer = if self.is_admin(&who) {
            self.run_admin_command(&who, body, &AdminInput { reply_to, file: None }).await
        } else {
            tracing::info!(%sender, command = body, "non-admin tried an admin command");
            let refusal = format!("{sender}: only the bridge's admins can run commands here.");
            if let Err(e) = self.store.audit(&who, body, false, &refusal).await {
                tracing::warn!(error = %e, "cannot write the audit log");
            }
            refusal
        };
        let html = Some(as_html(&answer));
        Some(Action::MatrixNotice { room, body: answer, html, reply_to: Some(event_id.to_owned()) })
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
pub(super) struct AdminInput {
    /// The event the command answers (Matrix), e.g. the file to import.
    pub reply_to: Option<String>,
    /// A file given with the command (XMPP form): name and content.
    pub file: Option<(String, String)>,
}

/// An answer as HTML: lines starting with `- ` become a list, lines starting with `| ` a table
/// (cells split at ` | `, the first row the header), others paragraphs; all escaped.
pub fn as_html(text: &str) -> String {
    let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    let mut out = String::new();
    let mut in_list = false;
    let mut table: Option<usize> = None;
    for line in text.lines() {
        if let Some(row) = line.strip_prefix("| ") {
            if in_list {
                out.push_str("</ul>");
                in_list = false;
            }
            let cells: Vec<&str> = row.trim_end_matches(" |").split(" | ").collect();
            let tag = if table.is_none() { "th" } else { "td" };
            if table.is_none() {
                out.push_str("<table>");
            }
            table = Some(table.unwrap_or(0) + 1);
            out.push_str("<tr>");
            for c in cells {
                out.push_str(&format!("<{tag}>{}</{tag}>", escape(c.trim())));
            }
            out.push_str("</tr>");
            continue;
        }
        if table.take().is_some() {
            out.push_str("</table>");
        }
        match line.strip_prefix("- ") {
            Some(item) => {
                if !in_list {
                    out.push_str("<ul>");
                    in_list = true;
                }
                out.push_str(&format!("<li>{}</li>", escape(item)));
            }
            None => {
                if in_list {
                    out.push_str("</ul>");
                    in_list = false;
                }
                out.push_str(&format!("<p>{}</p>", escape(line)));
            }
        }
    }
    if in_list {
        out.push_str("</ul>");
    }
    if table.is_some() {
        out.push_str("</table>");
    }
    out
}

/// When the bridge started (for `status`).
pub(super) fn started() -> Instant {
    Instant::now()
}

#[cfg(test)]
mod tests {
    #[test]
    fn answers_become_escaped_html() {
        assert_eq!(
            super::as_html("Permissions:\n- <a>: sms\n- b & c: chat\ndone"),
            "<p>Permissions:</p><ul><li>&lt;a&gt;: sms</li><li>b &amp; c: chat</li></ul><p>done</p>"
        );
        assert_eq!(
            super::as_html("Options:\n| name | value |\n| a<b | on |\nend"),
            "<p>Options:</p><table><tr><th>name</th><th>value</th></tr><tr><td>a&lt;b</td><td>on</td></tr></table><p>end</p>"
        );
    }
}
