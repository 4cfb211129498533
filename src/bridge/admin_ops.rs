//! The admin commands that change the bridge's set-up: linking Matrix rooms with MUCs, contact
//! groups, the missed-call block list, policy and options, contact imports, and `reload`.
//! Each answers `Ok(Err(text))` when it cannot do what was asked, with the reason.

use std::sync::Arc;

use crate::bridge::Bridge;
use crate::bridge::admin::AdminInput;
use crate::calls::service::CallsService;
use crate::commands::admin::{self, BlockCommand, ContactsCommand, GroupsCommand, MissedCallsCommand, OptionsCommand};
use crate::contacts::import::{Format, MAX_IMPORT_BYTES};
use crate::core::action::{Action, Text};
use crate::core::ids::{BareJid, MatrixUserId, RoomId};
use crate::core::inbound::{FileRef, MatrixIn};
use crate::core::room;
use crate::core::watch::Party;
use crate::store::ContactImport;

/// What a command answers: the text, or why it could not be done.
type Answer = crate::store::Result<Result<String, String>>;

/// How many recent control-room uploads are remembered.
const UPLOADS_KEPT: usize = 32;

impl Bridge {
    fn calls_module(&self) -> Result<&Arc<CallsService>, String> {
        self.calls.get().ok_or_else(|| {
            "Missed-call notifications are off on this bridge (no missed_calls section in the config).".into()
        })
    }

    /// A Matrix room given as `!id:server` or `#alias:server`.
    async fn resolve_room(&self, text: &str) -> Result<RoomId, String> {
        if text.starts_with('#') {
            return match self.matrix.resolve_alias(text).await {
                Ok(Some(room)) => Ok(room),
                Ok(None) => Err(format!("No room has the address {text}.")),
                Err(e) => Err(format!("Cannot look up {text}: {e}")),
            };
        }
        RoomId::parse(text).map_err(|e| format!("'{text}' is not a room ID (!id:server) or alias (#name:server): {e}"))
    }

    /// `rooms link`: an existing Matrix room becomes the portal of a MUC on an XMPP server.
    pub(super) async fn link_room(self: &Arc<Self>, matrix_room: &str, xmpp_muc: &str) -> Answer {
        let muc = match BareJid::parse(xmpp_muc) {
            Ok(m) if m.local().is_some() && m.domain() != self.map.component => m,
            Ok(_) => {
                return Ok(Err(format!(
                    "'{xmpp_muc}' is not a MUC on an XMPP server: write room@conference.server (rooms the bridge hosts are linked already)."
                )));
            }
            Err(e) => return Ok(Err(format!("'{xmpp_muc}' is not a MUC address: {e}"))),
        };
        let room = match self.resolve_room(matrix_room).await {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        };
        if Some(&room) == self.control_room().as_ref() {
            return Ok(Err("The control room cannot be linked.".into()));
        }
        if let Some(r) = self.bridged_room(&room).await? {
            return Ok(Err(format!("{room} is a room the bridge hosts; XMPP users reach it at {}.", self.muc_of(&r))));
        }
        if let Some(other) = self.portal_muc(&room).await? {
            return Ok(Err(format!("{room} is linked with {other} already; `rooms unlink {room}` first.")));
        }
        if let Some(other) = self.portal_room(&muc).await? {
            return Ok(Err(format!("{muc} has the portal room {other} already; `rooms unlink {muc}` first.")));
        }
        let bot = self.map.bot();
        if let Err(e) = self.matrix.join(&room, &bot).await {
            return Ok(Err(format!("The bridge bot cannot join {room} ({e}): invite {bot} to it first.")));
        }
        let members = match self.matrix.joined_members(&room).await {
            Ok(m) => m,
            Err(e) => return Ok(Err(format!("Cannot read the members of {room}: {e}"))),
        };
        self.store.save_xmpp_room(&room, &muc).await?;
        self.index_link(&room, &muc);
        let mut actions = vec![Action::MatrixPost {
            room: room.clone(),
            user: bot,
            text: Text::notice(format!("This room is now linked with the XMPP room {muc}.")),
            nick: None,
        }];
        let mut joining = 0;
        for (user, name) in members {
            if self.map.is_bridge_user(&user) {
                continue;
            }
            let nick = room::clean_nick(&name.unwrap_or_else(|| user.localpart().to_owned()));
            actions.push(Action::XmppPortalJoin { room: room.clone(), muc: muc.clone(), user, nick });
            joining += 1;
        }
        self.queue_all(actions).await?;
        tracing::info!(%room, %muc, "linked a Matrix room with a MUC");
        Ok(Ok(format!(
            "OK: {room} is now the portal of {muc}; its {joining} Matrix members join the MUC, and the MUC's occupants appear in the room."
        )))
    }

    /// `rooms unlink`: a portal room stops standing for its MUC (the room itself stays).
    pub(super) async fn unlink_room(self: &Arc<Self>, which: &str) -> Answer {
        let room = if which.starts_with('#') || which.starts_with('!') {
            match self.resolve_room(which).await {
                Ok(r) => r,
                Err(e) => return Ok(Err(e)),
            }
        } else {
            match BareJid::parse(which) {
                Ok(muc) => match self.portal_room(&muc).await? {
                    Some(r) => r,
                    None => return Ok(Err(format!("{muc} has no portal room."))),
                },
                Err(e) => return Ok(Err(format!("'{which}' is not a room ID, alias or MUC address: {e}"))),
            }
        };
        let Some(muc) = self.portal_muc(&room).await? else {
            return Ok(Err(format!("{room} is not linked with a MUC.")));
        };
        let mut actions = vec![];
        for (user, nick) in self.store.xmpp_occupants(&room).await? {
            actions.push(Action::XmppPortalLeave { room: room.clone(), muc: muc.clone(), user, nick });
        }
        for jid in self.index_unlink(&room, &muc) {
            actions.push(Action::MatrixLeave { room: room.clone(), user: self.map.ghost_for(&jid) });
        }
        actions.push(Action::MatrixPost {
            room: room.clone(),
            user: self.map.bot(),
            text: Text::notice(format!("This room is no longer linked with the XMPP room {muc}.")),
            nick: None,
        });
        self.store.delete_xmpp_room(&room).await?;
        self.queue_all(actions).await?;
        tracing::info!(%room, %muc, "unlinked a portal room");
        Ok(Ok(format!("OK: {room} is no longer linked with {muc}; the Matrix members left the MUC.")))
    }

    /// Read people typed in a command; `Err` names every one that does not read.
    fn parse_people(&self, people: &[String]) -> Result<Vec<Party>, String> {
        let mut out = Vec::new();
        let mut bad = Vec::new();
        for p in people {
            match Party::parse_contact(p, &self.map) {
                Ok(party) => out.push(party),
                Err(e) => bad.push(format!("{p}: {e}")),
            }
        }
        if bad.is_empty() { Ok(out) } else { Err(format!("Not a Matrix ID or JID: {}", bad.join("; "))) }
    }

    pub(super) async fn groups_command(self: &Arc<Self>, who: &Party, action: GroupsCommand) -> Answer {
        let store = &self.store;
        Ok(match action {
            GroupsCommand::Create { name } => {
                if let Err(e) = admin::check_group_name(&name) {
                    return Ok(Err(e));
                }
                if !store.create_group(&name, who).await? {
                    return Ok(Err(format!("The group {name} exists already.")));
                }
                Ok(format!("OK: the group {name} is created; add people with `groups add {name} USER...`."))
            }
            GroupsCommand::Delete { name } => match store.delete_group(&name).await? {
                true => Ok(format!("OK: the group {name} is deleted.")),
                false => Err(format!("There is no group {name}.")),
            },
            GroupsCommand::Add { name, members } | GroupsCommand::Remove { name, members }
                if !store.group_exists(&name).await? =>
            {
                let _ = members;
                Err(format!("There is no group {name}; create it with `groups create {name}`."))
            }
            GroupsCommand::Add { name, members } => {
                let people = match self.parse_people(&members) {
                    Ok(p) => p,
                    Err(e) => return Ok(Err(e)),
                };
                let mut added = vec![];
                for p in &people {
                    if store.add_group_member(&name, p).await? {
                        added.push(p.to_string());
                    }
                }
                let total = store.group_members(&name).await?.map_or(0, |m| m.len());
                Ok(format!(
                    "OK: {} added to {name}; it has {total} members.",
                    if added.is_empty() { "nobody new".to_owned() } else { added.join(", ") }
                ))
            }
            GroupsCommand::Remove { name, members } => {
                let people = match self.parse_people(&members) {
                    Ok(p) => p,
                    Err(e) => return Ok(Err(e)),
                };
                let mut removed = vec![];
                for p in &people {
                    if store.remove_group_member(&name, p).await? {
                        removed.push(p.to_string());
                    }
                }
                if removed.is_empty() {
                    Err(format!("None of them is in {name}."))
                } else {
                    Ok(format!("OK: {} removed from {name}.", removed.join(", ")))
                }
            }
            GroupsCommand::List { name } => {
                let groups: Vec<_> = store
                    .groups()
                    .await?
                    .into_iter()
                    .filter(|(n, _)| name.as_ref().is_none_or(|wanted| wanted == n))
                    .collect();
                if groups.is_empty() {
                    return Ok(match name {
                        Some(n) => Err(format!("There is no group {n}.")),
                        None => Ok("No contact groups yet: `groups create NAME`.".into()),
                    });
                }
                let mut lines = vec!["Contact groups:".to_owned(), "| group | members |".to_owned()];
                for (n, members) in groups {
                    let members: Vec<String> = members.iter().map(ToString::to_string).collect();
                    lines.push(format!(
                        "| {n} | {} |",
                        if members.is_empty() { "(empty)".to_owned() } else { members.join(", ") }
                    ));
                }
                Ok(lines.join("\n"))
            }
        })
    }

    pub(super) async fn block_command(self: &Arc<Self>, who: &Party, action: BlockCommand) -> Answer {
        let calls = match self.calls_module() {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        let entry = |words: &[String], extension: bool| -> Result<(&'static str, String), String> {
            let text = words.join(" ");
            if extension {
                let e = text.trim();
                if e.is_empty() || e.contains(char::is_whitespace) || e.len() > 32 {
                    return Err(format!("'{text}' is not an extension."));
                }
                return Ok(("extension", e.to_owned()));
            }
            let key = calls.block_key(&text);
            if key.trim_start_matches('+').is_empty() || key.len() > 32 {
                return Err(format!("'{text}' is not a phone number."));
            }
            Ok(("number", key))
        };
        let answer = match action {
            BlockCommand::Add { number, extension } => {
                let (kind, key) = match entry(&number, extension) {
                    Ok(e) => e,
                    Err(e) => return Ok(Err(e)),
                };
                if !self.store.block(kind, &key, who).await? {
                    return Ok(Err(format!("{key} is on the block list already.")));
                }
                calls.refresh(false).await?;
                match kind {
                    "extension" => format!("OK: the extension {key} is never told about missed calls."),
                    _ => format!("OK: missed calls from {key} are not reported any more."),
                }
            }
            BlockCommand::Remove { number, extension } => {
                let (kind, key) = match entry(&number, extension) {
                    Ok(e) => e,
                    Err(e) => return Ok(Err(e)),
                };
                if !self.store.unblock(kind, &key).await? {
                    let in_config = calls.config_block_list();
                    let from_config = in_config.numbers.iter().any(|n| calls.block_key(n) == key)
                        || in_config.extensions.iter().any(|e| e.as_str() == key);
                    return Ok(Err(if from_config {
                        format!("{key} is on the config's block list (missed_calls.rules.block_list); change it there.")
                    } else {
                        format!("{key} is not on the block list.")
                    }));
                }
                calls.refresh(false).await?;
                format!("OK: {key} is off the block list.")
            }
            BlockCommand::List => {
                let stored = self.store.block_list().await?;
                let config = calls.config_block_list();
                if stored.is_empty() && config.numbers.is_empty() && config.extensions.is_empty() {
                    return Ok(Ok("The block list is empty.".into()));
                }
                let mut lines = vec!["Block list:".to_owned(), "| entry | kind | from |".to_owned()];
                for b in stored {
                    lines.push(format!("| {} | {} | {} |", b.entry, b.kind, b.added_by));
                }
                for n in &config.numbers {
                    lines.push(format!("| {n} | number | config |"));
                }
                for e in &config.extensions {
                    lines.push(format!("| {e} | extension | config |"));
                }
                lines.join("\n")
            }
        };
        Ok(Ok(answer))
    }

    pub(super) async fn missed_calls_command(self: &Arc<Self>, who: &Party, action: MissedCallsCommand) -> Answer {
        let calls = match self.calls_module() {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        let set = |name: &str, value: Option<&str>| {
            let calls = calls.clone();
            let (name, value) = (name.to_owned(), value.map(str::to_owned));
            let bridge = self.clone();
            let who = who.clone();
            async move {
                bridge.store.set_call_setting(&name, value.as_deref(), &who).await?;
                calls.refresh(false).await
            }
        };
        let answer = match action {
            MissedCallsCommand::Policy { policy: None } => {
                let stored = self.store.call_settings().await?;
                let row = calls.options(&stored).into_iter().find(|r| r.name == "policy");
                match row {
                    Some(r) => format!(
                        "Policy: {}{} (none, first, last or all).",
                        r.value,
                        r.config.map(|c| format!(", set by an admin; the config says {c}")).unwrap_or_default()
                    ),
                    None => "Policy: unknown.".into(),
                }
            }
            MissedCallsCommand::Policy { policy: Some(p) } => {
                set("policy", Some(p.as_str())).await?;
                format!("OK: the policy is now {}.", p.as_str())
            }
            MissedCallsCommand::Options { action: None | Some(OptionsCommand::Show) } => {
                let stored = self.store.call_settings().await?;
                let mut lines =
                    vec!["Missed-call options:".to_owned(), "| option | value | config | meaning |".to_owned()];
                for r in calls.options(&stored) {
                    let config = r.config.unwrap_or_else(|| "(same)".into());
                    lines.push(format!("| {} | {} | {config} | {} |", r.name, r.value, r.about));
                }
                lines.push(
                    "Set one with `missed-calls options set NAME VALUE`, undo with `missed-calls options reset NAME`."
                        .into(),
                );
                lines.join("\n")
            }
            MissedCallsCommand::Options { action: Some(OptionsCommand::Set { name, value }) } => {
                if let Err(e) = calls.check_option(&name, &value) {
                    return Ok(Err(e));
                }
                set(&name, Some(value.trim())).await?;
                let now = crate::calls::settings::value(&name, &calls.live().rules, &calls.live().render);
                format!("OK: {name} is now {}.", now.unwrap_or(value))
            }
            MissedCallsCommand::Options { action: Some(OptionsCommand::Reset { name }) } => {
                let known = name == "policy" || crate::calls::settings::OPTIONS.iter().any(|(n, _)| *n == name);
                if !known {
                    // The same message as for `set`: it lists the options.
                    return Ok(Err(calls.check_option(&name, "").err().unwrap_or_default()));
                }
                set(&name, None).await?;
                let now = crate::calls::settings::value(&name, &calls.live().rules, &calls.live().render);
                format!("OK: {name} is back to the config's value, {}.", now.unwrap_or_default())
            }
        };
        Ok(Ok(answer))
    }

    /// An admin posted a file in the control room: remember it for `contacts import`.
    pub(super) fn remember_upload(&self, sender: &MatrixUserId, file: FileRef) {
        if let Ok(mut u) = self.uploads.lock() {
            u.push_back((sender.clone(), file));
            while u.len() > UPLOADS_KEPT {
                u.pop_front();
            }
        }
    }

    /// The answer to a file posted in the control room.
    pub(super) fn control_room_upload(&self, sender: &MatrixUserId, event_id: &str) -> Option<Action> {
        let room = self.control_room()?;
        let body = if self.is_admin(&Party::Matrix(sender.clone())) {
            "File received. To import its contacts, send `contacts import` (or answer the file with it).".to_owned()
        } else {
            format!("{sender}: only the bridge's admins can run commands here.")
        };
        Some(Action::MatrixNotice {
            room,
            html: Some(super::admin::as_html(&body)),
            body,
            reply_to: Some(event_id.to_owned()),
        })
    }

    /// The file a `contacts import` means: the one it answers, else the admin's last upload.
    async fn file_to_import(&self, who: &Party, input: &AdminInput) -> Result<FileRef, String> {
        let Party::Matrix(user) = who else {
            return Err("Give the file's content in the form (field 'content').".into());
        };
        let uploads: Vec<(MatrixUserId, FileRef)> =
            self.uploads.lock().map(|u| u.iter().cloned().collect()).unwrap_or_default();
        if let Some(answered) = &input.reply_to {
            if let Some((_, f)) = uploads.iter().find(|(_, f)| &f.event_id == answered) {
                return Ok(f.clone());
            }
            let room = self.control_room().ok_or("The control room is not ready yet.")?;
            return match self.matrix.room_event(&room, answered).await {
                Ok(Some(MatrixIn::File { file: f, .. })) => Ok(f),
                Ok(_) => Err("The message you answered is not a file.".into()),
                Err(e) => Err(format!("Cannot read the message you answered: {e}")),
            };
        }
        uploads.iter().rev().find(|(u, _)| u == user).map(|(_, f)| f.clone()).ok_or_else(|| {
            "Upload a vCard (.vcf) or CSV file to this room first, then send `contacts import` (or answer the file with it)."
                .into()
        })
    }

    async fn fetch_file(&self, file: &FileRef) -> Result<String, String> {
        let too_big =
            |n: u64| format!("{} is {n} bytes; the limit for contact files is {MAX_IMPORT_BYTES} bytes.", file.name);
        if let Some(size) = file.size
            && size > MAX_IMPORT_BYTES as u64
        {
            return Err(too_big(size));
        }
        let (bytes, _) =
            self.matrix.download(&file.mxc).await.map_err(|e| format!("Cannot download {}: {e}", file.name))?;
        if bytes.len() > MAX_IMPORT_BYTES {
            return Err(too_big(bytes.len() as u64));
        }
        String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8 text (a vCard or CSV file).", file.name))
    }

    pub(super) async fn contacts_command(
        self: &Arc<Self>,
        who: &Party,
        action: ContactsCommand,
        input: &AdminInput,
    ) -> Answer {
        let calls = match self.calls_module() {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        match action {
            ContactsCommand::List => {
                let imports = self.store.contact_imports().await?;
                let mut lines = vec![format!("Contacts in use: {}.", calls.contact_count())];
                if imports.is_empty() {
                    lines.push("No imported files (only the config's missed_calls.contacts.files).".into());
                } else {
                    lines.push("| file | format | contacts |".into());
                    for i in imports {
                        lines.push(format!("| {} | {} | {} |", i.name, i.format, i.contacts));
                    }
                }
                Ok(Ok(lines.join("\n")))
            }
            ContactsCommand::Import => {
                let (name, mimetype, content) = match &input.file {
                    Some((name, content)) => (name.clone(), None, content.clone()),
                    None => {
                        let file = match self.file_to_import(who, input).await {
                            Ok(f) => f,
                            Err(e) => return Ok(Err(e)),
                        };
                        match self.fetch_file(&file).await {
                            Ok(text) => (file.name.clone(), file.mimetype.clone(), text),
                            Err(e) => return Ok(Err(e)),
                        }
                    }
                };
                if content.len() > MAX_IMPORT_BYTES {
                    return Ok(Err(format!("The file is larger than the limit of {MAX_IMPORT_BYTES} bytes.")));
                }
                let format = Format::detect(&name, mimetype.as_deref(), &content);
                let report = match calls.read_contacts(&content, format) {
                    Ok(r) => r,
                    Err(e) => return Ok(Err(format!("{name} cannot be read: {e}"))),
                };
                if report.contacts.is_empty() {
                    let mut text = format!("{name} has no contact with a phone number; nothing was imported.");
                    for p in report.problems.iter().take(20) {
                        text.push_str(&format!("\n- {p}"));
                    }
                    return Ok(Err(text));
                }
                let n = report.contacts.len();
                let import = ContactImport {
                    name: name.clone(),
                    format: format.as_str().to_owned(),
                    content,
                    contacts: i64::try_from(n).unwrap_or(i64::MAX),
                };
                self.store.save_contact_import(&import, who).await?;
                calls.refresh(true).await?;
                let mut lines = vec![format!(
                    "OK: imported {n} contacts from {name} ({}); {} problems. Contacts in use: {}.",
                    format.as_str(),
                    report.problems.len(),
                    calls.contact_count()
                )];
                for p in report.problems.iter().take(20) {
                    lines.push(format!("- {p}"));
                }
                if report.problems.len() > 20 {
                    lines.push(format!("- … and {} more", report.problems.len() - 20));
                }
                Ok(Ok(lines.join("\n")))
            }
        }
    }

    /// `reload`: read the config file again; apply what can change while running and say what
    /// needs a restart. Connections stay up.
    pub(super) async fn reload(self: &Arc<Self>) -> Result<String, String> {
        let old = self.current_config();
        let mut new = crate::config::Config::load(&old.source)
            .map_err(|e| format!("The config was not reloaded, nothing changed: {e}"))?;
        // The same bar as at start-up: a weak or placeholder secret is not taken in.
        new.check_secrets().map_err(|e| format!("The config was not reloaded, nothing changed: {e}"))?;
        let differs = crate::config::differs;
        let mut restart = vec![];
        for (key, changed) in [
            ("homeserver", differs(&old.homeserver, &new.homeserver)),
            ("appservice", differs(&old.appservice, &new.appservice)),
            ("xmpp", differs(&old.xmpp, &new.xmpp)),
            ("database", !old.database_overridden && differs(&old.database, &new.database)),
            ("logging", differs(&old.logging, &new.logging)),
            ("admins.control_room", old.admins.control_room != new.admins.control_room),
            // The registration claims the aliases: a new prefix needs a new registration too.
            ("rooms.alias_prefix", old.rooms.alias_prefix != new.rooms.alias_prefix),
            ("limits.max_transaction_bytes", old.limits.max_transaction_bytes != new.limits.max_transaction_bytes),
            // The Matrix client and the SMS gateway are set up once, at start.
            ("links", differs(&old.links, &new.links)),
            ("sms", differs(&old.sms, &new.sms)),
        ] {
            if changed {
                restart.push(key.to_owned());
            }
        }
        // What only a restart changes keeps its running value.
        new.database = old.database.clone();
        new.database_overridden = old.database_overridden;
        let mut applied = vec![];
        for (key, changed) in [
            ("admins", differs(&(&old.admins.matrix, &old.admins.xmpp), &(&new.admins.matrix, &new.admins.xmpp))),
            ("admins.command_prefix", old.admins.command_prefix != new.admins.command_prefix),
            ("limits.max_message_bytes", old.limits.max_message_bytes != new.limits.max_message_bytes),
            ("rooms", differs(&old.rooms, &new.rooms)),
            ("missed_calls", differs(&old.missed_calls, &new.missed_calls)),
        ] {
            if changed {
                applied.push(key.to_owned());
            }
        }
        match (self.calls.get(), &new.missed_calls) {
            (Some(calls), _) => {
                let more = calls
                    .reload(&new)
                    .await
                    .map_err(|e| format!("The config was not reloaded, nothing changed: {e:#}"))?;
                restart.extend(more);
            }
            (None, Some(_)) => restart.push("missed_calls (the module starts at the next restart)".into()),
            (None, None) => {}
        }
        self.set_current_config(new);
        tracing::info!(file = %old.source.display(), ?applied, ?restart, "config reloaded");
        let mut text = format!("OK: reloaded {}.", old.source.display());
        text.push_str(&format!(
            "\nApplied: {}.",
            if applied.is_empty() { "nothing had changed".to_owned() } else { applied.join(", ") }
        ));
        if !restart.is_empty() {
            text.push_str(&format!("\nChanged, but needs a restart: {}.", restart.join(", ")));
        }
        Ok(text)
    }

    /// After user commands committed: refresh what they changed in the missed-call module.
    pub(super) async fn after_commands(&self) {
        if self.calls_dirty.swap(false, std::sync::atomic::Ordering::AcqRel)
            && let Some(calls) = self.calls.get()
            && let Err(e) = calls.refresh(false).await
        {
            tracing::warn!(error = %e, "cannot refresh the missed-call settings");
            self.calls_dirty.store(true, std::sync::atomic::Ordering::Release);
        }
    }
}
