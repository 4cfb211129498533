//! Running user commands (from the bot DM on Matrix or messages to the component on XMPP), and
//! sending the status-change notices they set up.

use std::sync::Arc;

use crate::bridge::Bridge;
use crate::commands::user::{self, NotifyCommand, RoomCommand, Switch, UserCommand, When};
use crate::core::action::{Action, Text};
use crate::core::notify_choice::Kind;
use crate::core::presence::Presence;
use crate::core::watch::{self, Change, Party};
use crate::store::{StoreTx, Watch};

impl Bridge {
    /// Run a user's command inside `tx`; the answer is text for the user.
    pub(super) async fn run_user_command(
        &self,
        tx: &mut StoreTx,
        caller: &Party,
        text: &str,
        reply_room: Option<&crate::core::ids::RoomId>,
        actions: &mut Vec<Action>,
    ) -> crate::store::Result<String> {
        let prefix = self.current_config().admins.command_prefix.clone();
        // A bare number answers a choice the bridge offered (`sms NAME` with several numbers).
        if let Some(n) = crate::core::menus::bare_choice(text) {
            return self.menu_answer(caller, n, actions).await;
        }
        match user::parse_with(text, &prefix) {
            Ok(command) => self.run_parsed_command(tx, caller, command, reply_room, actions).await,
            // An admin command sent here: say where it runs, or refuse it.
            Err(_) if crate::commands::admin::parse_with(text, &prefix).is_ok() => {
                tracing::info!(%caller, command = text, "admin command outside the control room");
                Ok(match (self.is_admin(caller), caller) {
                    (false, _) => {
                        let refusal = "Only the bridge's admins can run admin commands.";
                        // Refused attempts are audited like the commands admins run.
                        tx.audit(caller, text, false, refusal).await?;
                        refusal.into()
                    }
                    (true, Party::Matrix(_)) => {
                        "That is an admin command: run it in the control room (send `control-room` for an invitation)."
                            .into()
                    }
                    (true, Party::Xmpp(_)) => {
                        "That is an admin command: run it with the ad-hoc command 'admin'.".into()
                    }
                })
            }
            Err(usage) => Ok(usage),
        }
    }

    /// Run a command already parsed (from a message, or from an XEP-0050 form).
    pub(super) async fn run_parsed_command(
        &self,
        tx: &mut StoreTx,
        caller: &Party,
        command: UserCommand,
        reply_room: Option<&crate::core::ids::RoomId>,
        actions: &mut Vec<Action>,
    ) -> crate::store::Result<String> {
        if let Err(refusal) = command.access().check(self.is_admin(caller)) {
            return Ok(refusal);
        }
        Ok(match command {
            UserCommand::MissedCalls { switch } => self.missed_calls_switch(tx, caller, switch == Switch::On).await?,
            UserCommand::Notifications { kind, switch, via, to } => {
                self.notifications_command(tx, caller, kind, switch, via, to).await?
            }
            UserCommand::Journal { action, filter } => {
                self.journal_command(tx, caller, action, filter, reply_room, actions).await?
            }
            UserCommand::MissedChats { switch } => {
                let on = switch == Switch::On;
                tx.set_notification_enabled(caller, crate::core::notify_choice::Kind::MissedChats, on).await?;
                match (self.current_config().missed_chats.enabled, on) {
                    (false, _) => "OK, noted; missed-chat summaries are not in use on this bridge, though.".into(),
                    (true, true) => "OK: you get a summary of chats left unread while you are away.".into(),
                    (true, false) => "OK: no more missed-chat summaries; `missed-chats on` brings them back.".into(),
                }
            }
            UserCommand::Language { language } => {
                let lang = language.trim().to_ascii_lowercase();
                let known = self.calls.get().map(|c| c.languages()).unwrap_or_else(|| vec!["de".into(), "en".into()]);
                if !known.contains(&lang) {
                    return Ok(format!(
                        "'{language}' is not a language of the notices; choose one of: {}.",
                        known.join(", ")
                    ));
                }
                tx.set_user_setting(caller, "language", Some(&lang)).await?;
                self.calls_dirty.store(true, std::sync::atomic::Ordering::Release);
                format!("OK: your notices are in '{lang}' from now on.")
            }
            UserCommand::StartChat { group, without, shared } => {
                self.start_chat_preview(tx, caller, &group, &without, shared).await?
            }
            UserCommand::Confirm => self.confirm_start_chat(caller, reply_room, actions),
            UserCommand::Groups { scope: user::GroupsScope::Mine { action } } => {
                self.own_groups_command(tx, caller, action).await?
            }
            UserCommand::Help => match caller {
                Party::Xmpp(_) => format!(
                    "This is the ucbridge gateway. To write to the Matrix user @user:server, write to user\\40server@{}.\n{}{}",
                    self.map.component,
                    self.chatbot_help_line().map(|l| format!("{l}\n")).unwrap_or_default(),
                    user::help()
                ),
                Party::Matrix(_) => {
                    format!(
                        "{}{}",
                        self.chatbot_help_line().map(|l| format!("{l}\n")).unwrap_or_default(),
                        user::help()
                    )
                }
            },
            UserCommand::Notify { action: NotifyCommand::Add { contact, when } } => {
                let target = match Party::parse_contact(&contact, &self.map) {
                    Ok(t) => t,
                    Err(e) => return Ok(format!("Cannot watch {contact}: {e}")),
                };
                if &target == caller {
                    return Ok("You cannot watch yourself.".into());
                }
                let existing = tx.watches_by(caller).await?.into_iter().find(|w| w.target == target);
                if when == When::Pickup {
                    // Pickup rights (the pickup groups) stand for consent here: a colleague who
                    // may take someone's calls may know that one is waiting.
                    if let Err(refusal) = self.may_watch_pickup(caller, &target) {
                        return Ok(refusal);
                    }
                    let w = Watch {
                        on_pickup: true,
                        ..existing.unwrap_or(Watch {
                            watcher: caller.clone(),
                            target: target.clone(),
                            on_available: false,
                            on_offline: false,
                            on_pickup: true,
                        })
                    };
                    tx.add_watch(&w).await?;
                    return Ok(format!(
                        "OK: I will tell you when a call rings at {target} while they are not available, so you can pick it up."
                    ));
                }
                if let Err(refusal) = self.may_watch(caller, &target).await? {
                    if let (Party::Matrix(user), Party::Xmpp(jid)) = (caller, &target) {
                        self.ask_to_share(user, jid).await;
                    }
                    return Ok(refusal.text);
                }
                let w = Watch {
                    watcher: caller.clone(),
                    target: target.clone(),
                    on_available: when.on_available(),
                    on_offline: when.on_offline(),
                    on_pickup: existing.is_some_and(|w| w.on_pickup),
                };
                tx.add_watch(&w).await?;
                format!("OK: I will tell you when {target} {}.", describe(&w))
            }
            UserCommand::Room { action: RoomCommand::Create { alias, name, public, with } } => {
                self.room_create_command(caller, alias, name, public, with, reply_room, actions).await
            }
            UserCommand::Room { action: RoomCommand::Leave { room } } => {
                self.leave_room_command(tx, caller, &room, actions).await?
            }
            UserCommand::Presence { action } => self.presence_command(tx, caller, action).await?,
            UserCommand::Sms { target } => self.sms_command(caller, &target.join(" "), actions).await?,
            UserCommand::Whoami => {
                let other = match caller {
                    Party::Matrix(u) => format!("on XMPP you are {}", self.map.jid_for_matrix(u)),
                    Party::Xmpp(j) => format!("on Matrix you are {}", self.map.ghost_for(j)),
                };
                let admin = if self.is_admin(caller) { " You are an admin of the bridge." } else { "" };
                format!("You are {caller}; {other}.{admin}")
            }
            UserCommand::ControlRoom => match (caller, self.control_room()) {
                (Party::Matrix(user), Some(room)) if self.is_admin(caller) => {
                    actions.push(Action::MatrixRoomAct {
                        room,
                        op: crate::core::action::RoomOp::Invite { user: user.clone() },
                    });
                    "OK: you are invited to the control room.".into()
                }
                (Party::Matrix(_), None) if self.is_admin(caller) => {
                    "The control room is not ready yet; try again in a moment.".into()
                }
                (Party::Xmpp(_), _) if self.is_admin(caller) => {
                    "On XMPP, run admin commands with the ad-hoc command 'admin' of the bridge.".into()
                }
                _ => "Only the bridge's admins can use the control room.".into(),
            },
            UserCommand::Notify { action: NotifyCommand::List } => {
                let watches = tx.watches_by(caller).await?;
                if watches.is_empty() {
                    "You have no notifications. Add one with: notify add CONTACT".into()
                } else {
                    let lines: Vec<_> =
                        watches.iter().map(|w| format!("- {}: when they {}", w.target, describe(w))).collect();
                    format!("Your notifications:\n{}", lines.join("\n"))
                }
            }
            UserCommand::Notify { action: NotifyCommand::Cancel { contact } } => {
                let target = match Party::parse_contact(&contact, &self.map) {
                    Ok(t) => t,
                    Err(e) => return Ok(format!("Cannot read {contact}: {e}")),
                };
                if tx.remove_watch(caller, &target).await? {
                    format!("OK: no more notifications about {target}.")
                } else {
                    format!("You had no notification about {target}.")
                }
            }
        })
    }

    /// Someone's presence changed: queue the notices their watchers asked for.
    pub(super) async fn fire_watches(self: &Arc<Self>, target: Party, before: Option<&Presence>, after: &Presence) {
        let Some(change) = watch::change(before, after) else { return };
        let watches = match self.store.watchers_of(&target).await {
            Ok(w) => w,
            Err(e) => return tracing::warn!(%target, error = %e, "cannot read watches"),
        };
        let text = watch::notice(&target, change, after);
        let mut actions = Vec::new();
        for w in watches {
            let wanted = match change {
                Change::Available => w.on_available,
                Change::Offline => w.on_offline,
            };
            if !wanted {
                continue;
            }
            // The watcher's own choice (`notifications status-changes off`) silences every watch.
            match self.choice(&w.watcher, Kind::StatusChanges).await {
                Ok(choice) if choice.enabled => {}
                Ok(_) => {
                    tracing::info!(watcher = %w.watcher, %target, "watch not fired: status-change notices are off");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(watcher = %w.watcher, %target, error = %e, "cannot read notification choice");
                    continue;
                }
            }
            // Consent is checked again when a watch fires: it may have lapsed since (a DM left,
            // an approval taken back), and watches stored before the rule existed had none.
            match self.may_watch(&w.watcher, &target).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => {
                    tracing::info!(watcher = %w.watcher, %target, "watch not fired: no consent");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(watcher = %w.watcher, %target, error = %e, "cannot check watch consent");
                    continue;
                }
            }
            if let Some(action) = self.notice_to(&w.watcher, text.clone()).await {
                actions.push(action);
            }
        }
        if let Err(e) = self.queue_all(actions).await {
            tracing::warn!(%target, error = %e, "cannot queue watch notices");
        }
    }

    /// May `watcher` have pickup alerts about `target`: both in the phone directory, and the
    /// watcher in a pickup group with one of the target's phones. `Err` says why not.
    fn may_watch_pickup(&self, watcher: &Party, target: &Party) -> Result<(), String> {
        let Some(calls) = self.calls.get() else {
            return Err(
                "Pickup alerts need the bridge's phone directory (missed calls), which is not in use here.".into()
            );
        };
        let theirs = calls.extensions_of(target);
        if theirs.is_empty() {
            return Err(format!(
                "{target} has no phone in the bridge's directory: there are no calls of theirs to pick up."
            ));
        }
        if !theirs.iter().any(|e| calls.may_pick_up(watcher, e.as_str())) {
            return Err(format!(
                "You may not pick up {target}'s calls (they are not in a pickup group with your phone)."
            ));
        }
        Ok(())
    }

    /// An XMPP user ran a command through XEP-0050: the answer comes back in the iq result.
    pub(in crate::bridge) async fn xmpp_adhoc(
        self: &Arc<Self>,
        from: &crate::core::ids::BareJid,
        command: UserCommand,
    ) -> crate::store::Result<String> {
        let caller = Party::Xmpp(from.clone());
        let mut tx = self.store.begin().await?;
        let mut actions = vec![];
        let answer = self.run_parsed_command(&mut tx, &caller, command, None, &mut actions).await?;
        let rows = tx.enqueue_all(actions).await?;
        tx.commit().await?;
        self.dispatch(rows);
        self.after_commands().await;
        Ok(answer)
    }

    /// A message from an XMPP user to the component itself: a command; the answer comes from
    /// the component, through the outbox.
    pub async fn xmpp_command(
        self: &Arc<Self>,
        from: &crate::core::ids::BareJid,
        text: &str,
    ) -> crate::store::Result<()> {
        let caller = Party::Xmpp(from.clone());
        let mut tx = self.store.begin().await?;
        let mut actions = vec![];
        let answer = self.run_user_command(&mut tx, &caller, text, None, &mut actions).await?;
        actions.insert(0, Action::XmppNotice { to: from.clone(), text: Text::notice(answer) });
        let rows = tx.enqueue_all(actions).await?;
        tx.commit().await?;
        // The answer goes out once a changed choice is in effect, as on Matrix.
        self.after_commands().await;
        self.dispatch(rows);
        Ok(())
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

fn describe(w: &Watch) -> String {
    let kinds = [
        (w.on_available, "become available again"),
        (w.on_offline, "log off"),
        (w.on_pickup, "have a call to pick up"),
    ];
    let named: Vec<&str> = kinds.iter().filter(|(on, _)| *on).map(|(_, name)| *name).collect();
    named.join(" or ")
}
