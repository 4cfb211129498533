//! The bridge's side of what the phone tells the chat (`calls::phone`): presence from the phone
//! and pickup alerts.
//!
//! Presence from the phone speaks for the other network only (DESIGN "Presence"): a Matrix
//! user's connected call shows as busy to their XMPP subscribers and in hosted MUCs, an XMPP
//! user's on their ghost. The changes are applied in order by one worker; each busy call is
//! stored (`phone_busy`) with the person's own presence, so that a restart undoes what calls
//! that ended meanwhile left behind (`phone_presence_now`). Wherever a presence goes out, it goes
//! through [`Bridge::phone_shown`].

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::mpsc;

use crate::bridge::Bridge;
use crate::calls::phone::{PhoneChange, PickupRing};
use crate::core::action::{Action, Text};
use crate::core::phone_presence::{PhoneCalls, after_call};
use crate::core::presence::{Presence, State, rank};
use crate::core::watch::{self, Party, PickupCall};
use crate::store::{PhoneBusy, Watch};

/// Who is on the phone, and the worker that applies the changes in order.
#[derive(Default)]
pub(super) struct PhoneState {
    calls: Mutex<PhoneCalls>,
    jobs: OnceLock<mpsc::UnboundedSender<Job>>,
}

enum Job {
    Changes(Vec<PhoneChange>),
    Now(Vec<PhoneChange>),
}

fn offline() -> Presence {
    Presence { state: State::Offline, note: None }
}

impl Bridge {
    /// What to show for `who`, whose own presence is `own`: busy while on the phone.
    pub(super) fn phone_shown(&self, who: &Party, own: Presence) -> Presence {
        match self.phone.calls.lock() {
            Ok(calls) => calls.shown(who, own),
            Err(_) => own,
        }
    }

    /// The busy presence shown while `who` is on the phone.
    pub(super) fn phone_busy_presence(&self, who: &Party) -> Option<Presence> {
        self.phone.calls.lock().ok()?.busy(who)
    }

    fn phone_people(&self) -> Vec<Party> {
        self.phone.calls.lock().map(|c| c.people()).unwrap_or_default()
    }

    fn phone_job(self: &Arc<Self>, job: Job) {
        let tx = self.phone.jobs.get_or_init(|| {
            let (tx, mut rx) = mpsc::unbounded_channel();
            let bridge = self.clone();
            tokio::spawn(async move {
                while let Some(job) = rx.recv().await {
                    match job {
                        Job::Changes(changes) => bridge.phone_changes(changes).await,
                        Job::Now(busy) => bridge.phone_now(busy).await,
                    }
                }
            });
            tx
        });
        if tx.send(job).is_err() {
            tracing::warn!("the phone presence worker is gone");
        }
    }

    async fn phone_changes(self: &Arc<Self>, changes: Vec<PhoneChange>) {
        for change in changes {
            for party in &change.accounts {
                match &change.busy {
                    Some(note) => self.phone_connected(party, &change.call, note).await,
                    None => self.phone_ended(party, &change.call).await,
                }
            }
        }
    }

    /// After a restart: show what the calls in progress say, and undo what is stored of calls
    /// that are over.
    async fn phone_now(self: &Arc<Self>, busy: Vec<PhoneChange>) {
        let stored = match self.store.phone_busy().await {
            Ok(rows) => rows,
            Err(e) => return tracing::warn!(error = %e, "cannot read who was on the phone"),
        };
        let mut now: HashSet<(Party, String)> = HashSet::new();
        for change in &busy {
            for party in &change.accounts {
                now.insert((party.clone(), change.call.clone()));
            }
        }
        if let Ok(mut calls) = self.phone.calls.lock() {
            for row in &stored {
                calls.connected(&row.party, &row.call_id, &row.note);
            }
        }
        for row in &stored {
            if !now.contains(&(row.party.clone(), row.call_id.clone())) {
                tracing::info!(party = %row.party, call = row.call_id, "call ended while the bridge was down");
                self.phone_ended(&row.party, &row.call_id).await;
            }
        }
        let known: HashSet<(Party, String)> = stored.into_iter().map(|r| (r.party, r.call_id)).collect();
        for change in busy {
            let Some(note) = &change.busy else { continue };
            for party in &change.accounts {
                if !known.contains(&(party.clone(), change.call.clone())) {
                    self.phone_connected(party, &change.call, note).await;
                }
            }
        }
    }

    /// A person's own presence as the bridge knows it now (`None`: not known).
    async fn own_presence(&self, who: &Party) -> Option<Presence> {
        match who {
            Party::Matrix(u) => match self.presence.matrix.last(u) {
                Some(p) => Some(p),
                None => self.store.matrix_presence(u).await.ok().flatten(),
            },
            Party::Xmpp(j) => self.presence.xmpp.last(j),
        }
    }

    async fn phone_connected(self: &Arc<Self>, who: &Party, call: &str, note: &str) {
        let own = self.own_presence(who).await;
        let row = PhoneBusy { party: who.clone(), call_id: call.to_owned(), note: note.to_owned(), own: own.clone() };
        if let Err(e) = self.store.add_phone_busy(&row).await {
            tracing::warn!(%who, call, error = %e, "cannot store a busy call");
        }
        let first = self.phone.calls.lock().map(|mut c| c.connected(who, call, note)).unwrap_or(false);
        if first {
            tracing::info!(%who, call, "on the phone: shown busy");
            // Busy is no change a watch reports ("available again", "logs off"): no watches.
            self.show_presence(who, &own.unwrap_or_else(offline)).await;
        }
    }

    async fn phone_ended(self: &Arc<Self>, who: &Party, call: &str) {
        let stored = match self.store.phone_busy().await {
            Ok(rows) => rows.into_iter().find(|r| &r.party == who && r.call_id == call).and_then(|r| r.own),
            Err(e) => {
                tracing::warn!(%who, error = %e, "cannot read the presence stored with a call");
                None
            }
        };
        if let Err(e) = self.store.remove_phone_busy(who, call).await {
            tracing::warn!(%who, call, error = %e, "cannot remove a busy call");
        }
        let busy = self.phone_busy_presence(who);
        let last = self.phone.calls.lock().map(|mut c| c.ended(who, call)).unwrap_or(false);
        if last {
            let own = after_call(self.own_presence(who).await, stored);
            tracing::info!(%who, call, ?own, "off the phone: own presence shown again");
            self.show_presence(who, &own).await;
            if let Some(busy) = busy {
                self.fire_watches(who.clone(), Some(&busy), &own).await;
            }
        }
    }

    /// Send `who`'s presence (their own `own`, shown as [`Bridge::phone_shown`] says) to the other
    /// network: a Matrix user's to their XMPP subscribers and rooms, an XMPP user's on the ghost.
    async fn show_presence(&self, who: &Party, own: &Presence) {
        match who {
            Party::Matrix(u) => {
                let shown = self.phone_shown(who, own.clone());
                self.push_matrix_presence(u, &shown).await;
            }
            Party::Xmpp(j) => self.set_ghost_presence(j, own).await,
        }
    }

    /// `who` changed their own presence: while on the phone it is stored with the call, to be
    /// shown when the call ends (also after a restart).
    pub(super) async fn note_own_presence(&self, who: &Party, own: &Presence) {
        if self.phone_busy_presence(who).is_some()
            && let Err(e) = self.store.set_phone_busy_own(who, own).await
        {
            tracing::warn!(%who, error = %e, "cannot store the presence to show after the call");
        }
    }

    /// The XMPP users on the phone (their ghosts' busy presence is kept alive like any other).
    pub(super) fn xmpp_people_on_the_phone(&self) -> Vec<crate::core::ids::BareJid> {
        self.phone_people()
            .into_iter()
            .filter_map(|p| match p {
                Party::Xmpp(j) => Some(j),
                Party::Matrix(_) => None,
            })
            .collect()
    }

    /// Does `w`'s watcher get an alert for a call ringing at `extension` of the watched contact?
    /// The watch asks for pickup alerts, and the watcher may pick up calls there (pickup groups).
    /// And the watcher has not turned pickup alerts off (`notifications pickup off`).
    pub(crate) async fn wants_pickup_alert(&self, w: &Watch, extension: &str) -> bool {
        let may = self.calls.get().is_some_and(|c| c.may_pick_up(&w.watcher, extension));
        if !watch::wants_pickup_alert(w.on_pickup, may) {
            return false;
        }
        match self.choice(&w.watcher, crate::core::notify_choice::Kind::Pickup).await {
            Ok(choice) => choice.enabled,
            Err(e) => {
                // Alerting is the safer side of a database error: the watch asked for it.
                tracing::warn!(watcher = %w.watcher, error = %e, "cannot read the notification choice");
                true
            }
        }
    }

    /// A call rang at a line owner's phone: alert the watchers who may pick it up, if the owner
    /// is not available (the most available of their accounts, a call of theirs counting busy).
    async fn pickup_alerts(self: Arc<Self>, ring: PickupRing) {
        let mut presence: Option<Presence> = None;
        for account in &ring.contact {
            let own = self.own_presence(account).await.unwrap_or_else(offline);
            let shown = self.phone_shown(account, own);
            if presence.as_ref().is_none_or(|p| rank(shown.state) > rank(p.state)) {
                presence = Some(shown);
            }
        }
        let presence = presence.unwrap_or_else(offline);
        if !watch::calls_for_pickup(&presence) {
            return tracing::debug!(call = ring.call, "the phone's owner is available: no pickup alerts");
        }
        let mut told = HashSet::new();
        let mut actions = Vec::new();
        for target in &ring.contact {
            let watches = match self.store.watchers_of(target).await {
                Ok(w) => w,
                Err(e) => {
                    tracing::warn!(%target, error = %e, "cannot read watches");
                    continue;
                }
            };
            for w in watches {
                if ring.contact.contains(&w.watcher) || !self.wants_pickup_alert(&w, &ring.extension).await {
                    continue;
                }
                if !told.insert(w.watcher.clone()) {
                    continue;
                }
                let language = self.calls.get().map(|c| c.language_of(&w.watcher)).unwrap_or_default();
                let call = PickupCall {
                    caller_name: ring.caller_name.as_deref(),
                    caller_number: ring.caller_number.as_deref(),
                    contact: target,
                    extension: &ring.extension,
                    contact_presence: &presence,
                };
                let text = watch::pickup_notice(&language, &call);
                tracing::info!(watcher = %w.watcher, %target, call = ring.call, "pickup alert");
                if let Some(action) = self.notice_to(&w.watcher, text).await {
                    actions.push(action);
                }
            }
        }
        if let Err(e) = self.queue_all(actions).await {
            tracing::warn!(call = ring.call, error = %e, "cannot queue pickup alerts");
        }
    }

    /// A notice from the bridge to a person: in their chat with the bot (Matrix), from the
    /// component (XMPP). `None`: a Matrix user without a chat with the bot.
    pub(super) async fn notice_to(&self, to: &Party, text: String) -> Option<Action> {
        match to {
            Party::Xmpp(jid) => Some(Action::XmppNotice { to: jid.clone(), text: Text::notice(text) }),
            Party::Matrix(user) => match self.store.bot_dm(user).await {
                Ok(Some(room)) => {
                    Some(Action::MatrixPost { room, user: self.map.bot(), text: Text::notice(text), nick: None })
                }
                Ok(None) => {
                    tracing::info!(%user, "a notice for a user without a chat with the bot");
                    None
                }
                Err(e) => {
                    tracing::warn!(%user, error = %e, "cannot find the bot chat");
                    None
                }
            },
        }
    }

    pub(super) fn on_phone_presence(self: &Arc<Self>, changes: Vec<PhoneChange>) {
        self.phone_job(Job::Changes(changes));
    }

    pub(super) fn on_phone_presence_now(self: &Arc<Self>, busy: Vec<PhoneChange>) {
        self.phone_job(Job::Now(busy));
    }

    pub(super) fn on_call_ringing(self: &Arc<Self>, ring: PickupRing) {
        tokio::spawn(self.clone().pickup_alerts(ring));
    }
}
