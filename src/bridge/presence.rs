//! Presence both ways. Matrix users' presence (pushed as ephemeral events) goes to every XMPP
//! subscriber of their address; XMPP users' presence (broadcast to the addresses they share it
//! with) becomes their ghost's presence. Updates are coalesced per person and sent only on
//! change. Presence is state, not a message: it is sent directly, not through the outbox, and
//! re-announced from the last known state after a reconnect or on a probe.
//!
//! Consent: an XMPP user sees a Matrix user's presence (and may watch it) only if the two have a
//! conversation (a DM the Matrix user joined, or a hosted room both joined) or the Matrix user
//! approved their request, asked once in the Matrix user's chat with the bot. Remote input is
//! bounded: presence is taken only from XMPP users related to the Matrix user they send it to,
//! ghosts are registered for it at a limited rate per domain, and idle state is forgotten.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::bridge::Bridge;
use crate::commands::user::PresenceCommand;
use crate::core::action::{Action, Text};
use crate::core::budget::Budgets;
use crate::core::ids::{BareJid, MatrixUserId};
use crate::core::presence::{
    self as model, Consent, MatrixState, OnSubscribe, Presence, PromptLimits, State, XmppPresence,
};
use crate::core::refusal::Refusal;
use crate::core::watch::Party;
use crate::store::StoreTx;
use crate::xmpp::out::Outgoing;

/// Coalescing window for presence floods.
const WINDOW: Duration = Duration::from_millis(300);

/// Open consent prompts per Matrix user, and from one XMPP domain over all users.
const PROMPTS: PromptLimits = PromptLimits { per_user: 10, per_domain: 200 };
/// XMPP users (of one domain) recorded as sharing their presence with Matrix users.
const SHARES_PER_DOMAIN: u64 = 5_000;
/// Matrix contacts one XMPP user may be subscribed to.
const SUBSCRIPTIONS_PER_SUBSCRIBER: u64 = 500;
/// Online resources kept per XMPP user.
const RESOURCES_PER_JID: usize = 16;
/// Ghosts registered for presence per remote domain: a burst, then this many per second.
const GHOST_BURST: u32 = 20;
const GHOST_RATE: f64 = 1.0;
/// Remote domains tracked by the ghost rate limit.
const GHOST_DOMAINS: usize = 1_000;
/// Offline people are forgotten by the coalescers after this long without a change.
const IDLE_OFFLINE: Duration = Duration::from_secs(600);
/// How long an answer's stanzas wait for the command's transaction to commit.
const COMMIT_WAIT: Duration = Duration::from_secs(30);

/// Matrix users remembered as having no presence on record, at most.
const MATRIX_UNKNOWN_CAP: usize = 10_000;

impl Default for super::PresenceState {
    fn default() -> Self {
        Self {
            matrix: Default::default(),
            xmpp: Default::default(),
            xmpp_resources: Default::default(),
            ghost_budgets: Mutex::new(Budgets::per_second(GHOST_BURST, GHOST_RATE, GHOST_DOMAINS)),
            matrix_unknown: Mutex::new(std::collections::HashSet::new()),
        }
    }
}

impl Bridge {
    /// A Matrix user's presence changed.
    pub(super) fn matrix_presence(
        self: &Arc<Self>,
        user: MatrixUserId,
        state: MatrixState,
        status_msg: Option<String>,
    ) {
        let presence = Presence::from_matrix(state, status_msg.as_deref());
        if self.presence.matrix.offer(user.clone(), presence) {
            let bridge = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(WINDOW).await;
                if let Some((before, presence)) = bridge.presence.matrix.take(&user) {
                    bridge.announce_matrix_presence(&user, &presence).await;
                    bridge.after_own_presence(Party::Matrix(user), before, presence).await;
                }
            });
        }
    }

    /// A person's own presence changed (after coalescing): the logon, the presence to show
    /// after a call, and the watches, which hear of what is shown (no change while on the phone).
    async fn after_own_presence(self: &Arc<Self>, who: Party, before: Option<Presence>, own: Presence) {
        self.note_logon(&who, &own).await;
        self.note_own_presence(&who, &own).await;
        let before = before.map(|b| self.phone_shown(&who, b));
        let after = self.phone_shown(&who, own);
        self.fire_watches(who, before.as_ref(), &after).await;
    }

    async fn announce_matrix_presence(&self, user: &MatrixUserId, presence: &Presence) {
        if let Err(e) = self.store.save_matrix_presence(user, presence).await {
            tracing::warn!(%user, error = %e, "cannot store presence");
        }
        let shown = self.phone_shown(&Party::Matrix(user.clone()), presence.clone());
        self.push_matrix_presence(user, &shown).await;
    }

    /// Send what is shown of a Matrix user's presence to their XMPP subscribers allowed to see
    /// it and to their hosted rooms.
    pub(super) async fn push_matrix_presence(&self, user: &MatrixUserId, presence: &Presence) {
        tracing::debug!(%user, ?presence, "Matrix presence to XMPP subscribers");
        let contact = self.map.jid_for_matrix(user);
        let subscribers = match self.store.subscribers(&contact.to_string()).await {
            Ok(s) => s,
            Err(e) => return tracing::warn!(%user, error = %e, "cannot read subscribers"),
        };
        // Read once, and only if someone is told.
        let mut photo = None;
        for subscriber in subscribers {
            let Ok(to) = BareJid::parse(&subscriber) else { continue };
            // A subscription stays while its reason may lapse (the DM left, an approval taken
            // back): only those allowed now hear of it.
            if !self.presence_visible_to(user, &to).await {
                continue;
            }
            let hash = match photo {
                Some(hash) => hash,
                None => {
                    let hash = self.matrix_photo_hash(user).await;
                    photo = Some(hash);
                    hash
                }
            };
            let out = Outgoing::Presence { from: contact.clone(), to, presence: presence.clone(), photo: hash };
            self.xmpp.post(out).await;
        }
        self.show_presence_in_rooms(user, presence).await;
    }

    /// The state the bridge last heard a Matrix user is in (their homeserver's word), if any.
    pub(in crate::bridge) async fn known_matrix_state(&self, user: &MatrixUserId) -> Option<State> {
        if let Some(p) = self.presence.matrix.last(user) {
            return Some(p.state);
        }
        // A presence that arrives later is found above first (it passes the coalescer), so a
        // user remembered as unknown stays right until then.
        if self.presence.matrix_unknown.lock().is_ok_and(|u| u.contains(user)) {
            return None;
        }
        match self.store.matrix_presence(user).await {
            Ok(Some(p)) => Some(p.state),
            Ok(None) => {
                if let Ok(mut unknown) = self.presence.matrix_unknown.lock() {
                    // Bounded: names come from the network.
                    if unknown.len() >= MATRIX_UNKNOWN_CAP {
                        unknown.clear();
                    }
                    unknown.insert(user.clone());
                }
                None
            }
            Err(_) => None,
        }
    }

    /// What to tell an XMPP subscriber about a Matrix user: the last known presence, else what
    /// the homeserver says (asked as the subscriber's ghost, which shares a room with them),
    /// else offline.
    /// A call of theirs shows them busy.
    pub async fn presence_of_matrix_user(&self, user: &MatrixUserId, asking: &BareJid) -> Presence {
        let own = self.own_presence_of_matrix_user(user, asking).await;
        self.phone_shown(&Party::Matrix(user.clone()), own)
    }

    async fn own_presence_of_matrix_user(&self, user: &MatrixUserId, asking: &BareJid) -> Presence {
        if let Some(p) = self.presence.matrix.last(user) {
            return p;
        }
        if let Ok(Some(p)) = self.store.matrix_presence(user).await {
            return p;
        }
        let ghost = self.map.ghost_for(asking);
        if matches!(self.store.ghost(&ghost).await, Ok(Some(_)))
            && let Ok(p) = self.matrix.presence(user, &ghost).await
        {
            return p;
        }
        Presence::new(State::Offline, None)
    }

    /// An XMPP user's resource sent presence (`None`: the resource went offline).
    pub async fn xmpp_presence(self: &Arc<Self>, from: BareJid, resource: String, presence: Option<XmppPresence>) {
        let combined = {
            let Ok(mut all) = self.presence.xmpp_resources.lock() else { return };
            let resources = all.entry(from.clone()).or_insert_with(HashMap::new);
            let note = presence.as_ref().and_then(|p| p.status.clone());
            let presence = presence.filter(|p| p.available).map(|p| Presence::from_xmpp(&p));
            model::update_resources(resources, &resource, presence, RESOURCES_PER_JID);
            let best = model::best_resource(resources);
            if resources.is_empty() {
                all.remove(&from);
            }
            best.unwrap_or(Presence { state: State::Offline, note })
        };
        if self.presence.xmpp.offer(from.clone(), combined) {
            let bridge = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(WINDOW).await;
                if let Some((before, presence)) = bridge.presence.xmpp.take(&from) {
                    bridge.set_ghost_presence(&from, &presence).await;
                    bridge.after_own_presence(Party::Xmpp(from), before, presence).await;
                }
            });
        }
    }

    /// Synapse lets the presence of a user who does not sync lapse after a while; keep each
    /// ghost's presence current while its XMPP user is online.
    pub async fn keep_ghost_presence(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(25));
        tick.tick().await;
        loop {
            tick.tick().await;
            // Who went offline a while ago needs no slot any more (nor a keep-alive).
            let offline = |p: &Presence| p.state != State::Offline;
            let dropped =
                self.presence.xmpp.sweep(IDLE_OFFLINE, offline) + self.presence.matrix.sweep(IDLE_OFFLINE, offline);
            if dropped > 0 {
                tracing::debug!(dropped, "forgot idle offline presence");
            }
            self.sweep_avatars();
            let mut kept = std::collections::HashSet::new();
            for (jid, presence) in self.presence.xmpp.all_sent() {
                if presence.state != State::Offline {
                    self.set_ghost_presence(&jid, &presence).await;
                    kept.insert(jid);
                }
            }
            // Someone on the phone is shown busy even while logged off from XMPP.
            for jid in self.xmpp_people_on_the_phone() {
                if !kept.contains(&jid) {
                    let own = self.presence.xmpp.last(&jid).unwrap_or(Presence { state: State::Offline, note: None });
                    self.set_ghost_presence(&jid, &own).await;
                }
            }
        }
    }

    /// Synapse marks a user online whenever they send, type or mark something read; a ghost
    /// acts for someone who may be away, so their presence is set again after it acted.
    pub(super) async fn reassert_ghost_presence(&self, jid: &BareJid) {
        let Some(presence) = self.presence.xmpp.last(jid) else { return };
        let presence = self.phone_shown(&Party::Xmpp(jid.clone()), presence);
        let (state, status_msg) = presence.to_matrix();
        if state != MatrixState::Online {
            let ghost = self.map.ghost_for(jid);
            if let Err(e) = self.matrix.set_presence(&ghost, state, status_msg).await {
                tracing::debug!(%ghost, error = %e, "cannot restore ghost presence");
            }
        }
    }

    /// Show an XMPP user's presence (their own: a call of theirs shows busy) on their ghost.
    pub(super) async fn set_ghost_presence(&self, jid: &BareJid, own: &Presence) {
        let presence = &self.phone_shown(&Party::Xmpp(jid.clone()), own.clone());
        let ghost = self.map.ghost_for(jid);
        tracing::debug!(%ghost, ?presence, "setting ghost presence");
        if !self.may_create_ghost(&ghost, jid).await {
            return tracing::info!(%ghost, "too many new ghosts from this domain; presence not shown");
        }
        if let Err(e) = self.ensure_ghost(&ghost, &jid.to_string()).await {
            return tracing::warn!(%ghost, error = %e, "cannot register ghost for presence");
        }
        let (state, status_msg) = presence.to_matrix();
        if let Err(e) = self.matrix.set_presence(&ghost, state, status_msg).await {
            tracing::warn!(%ghost, error = %e, "cannot set ghost presence");
        }
    }

    /// A ghost that exists costs nothing more; a new one counts against its domain's rate.
    async fn may_create_ghost(&self, ghost: &MatrixUserId, jid: &BareJid) -> bool {
        if self.cached_ghost(ghost).is_some() || matches!(self.store.ghost(ghost).await, Ok(Some(_))) {
            return true;
        }
        self.presence.ghost_budgets.lock().map(|mut b| b.take(jid.domain(), std::time::Instant::now())).unwrap_or(false)
    }

    /// May `jid` see `user`'s presence now (a conversation, or `user` approved)? A store error
    /// counts as no.
    pub async fn presence_visible_to(&self, user: &MatrixUserId, jid: &BareJid) -> bool {
        match self.store.presence_allowed(user, jid).await {
            Ok(allowed) => allowed,
            Err(e) => {
                tracing::warn!(%user, %jid, error = %e, "cannot check presence consent");
                false
            }
        }
    }

    /// Is presence from `jid` to `user`'s address taken (shown as the ghost's presence, with
    /// its avatar)? Only from someone related to `user`: sharing their presence with them, in a
    /// conversation with them, or approved by them. Anyone else would only make the bridge
    /// register ghosts and keep state for strangers.
    pub async fn takes_presence_from(&self, jid: &BareJid, user: &MatrixUserId) -> bool {
        match self.store.shares_presence(jid, user).await {
            Ok(true) => true,
            Ok(false) => self.presence_visible_to(user, jid).await,
            Err(e) => {
                tracing::warn!(%user, %jid, error = %e, "cannot check presence sharing");
                false
            }
        }
    }

    /// Does the bridge hold presence of `jid` (shown on their ghost)? Their `unavailable` is then
    /// always taken, so a ghost never stays online after the relationship ended.
    pub fn tracks_xmpp_presence(&self, jid: &BareJid) -> bool {
        self.presence.xmpp.last(jid).is_some_and(|p| p.state != State::Offline)
            || self.presence.xmpp_resources.lock().map(|r| r.contains_key(jid)).unwrap_or(false)
    }

    /// What to do with `jid`'s request to see `user`'s presence (see [`model::on_subscribe`]).
    pub async fn subscription_decision(&self, user: &MatrixUserId, jid: &BareJid) -> crate::store::Result<OnSubscribe> {
        let related = self.store.in_conversation(user, jid).await?;
        let consent = if related { None } else { self.store.consent(user, jid).await? };
        let open = if related || consent.is_some() {
            (0, 0)
        } else {
            self.store.open_consent_requests(user, jid.domain()).await?
        };
        let mut decision = model::on_subscribe(related, consent, open, PROMPTS);
        if decision == OnSubscribe::Accept {
            let contact = self.map.jid_for_matrix(user).to_string();
            let subscriber = jid.to_string();
            if !self.store.is_subscribed(&contact, &subscriber).await?
                && self.store.subscription_count(&subscriber).await? >= SUBSCRIPTIONS_PER_SUBSCRIBER
            {
                decision = OnSubscribe::Drop;
            }
        }
        Ok(decision)
    }

    /// `user` now has a conversation with `jid` (joined their DM, or a hosted room with them): a
    /// request of `jid`'s still waiting for an answer needs none any more and is accepted, as any
    /// conversation partner's is. Call after the membership change is committed. (Without this a
    /// `subscribe` that overtakes the Matrix user's join stays pending.)
    pub async fn conversation_started(&self, user: &MatrixUserId, jid: &BareJid) {
        let result: crate::store::Result<bool> = async {
            if self.store.consent(user, jid).await? != Some(Consent::Pending)
                || !self.store.in_conversation(user, jid).await?
            {
                return Ok(false);
            }
            let contact = self.map.jid_for_matrix(user);
            self.store.add_subscription(&contact.to_string(), &jid.to_string()).await?;
            self.store.remove_consent_request(user, jid).await?;
            let presence = self.presence_of_matrix_user(user, jid).await;
            let (contact, subscriber) = (contact.clone(), jid.clone());
            let photo = self.matrix_photo_hash(user).await;
            self.xmpp.post(Outgoing::SubscriptionGranted { contact, subscriber, current: presence, photo }).await;
            Ok(true)
        }
        .await;
        match result {
            Ok(true) => tracing::info!(%user, %jid, "pending presence request accepted: they have a conversation now"),
            Ok(false) => {}
            Err(e) => tracing::warn!(%user, %jid, error = %e, "cannot settle a pending presence request"),
        }
    }

    /// Ask `user`, in their chat with the bot, whether `jid` may see their presence. `false`:
    /// not asked (no chat with the bot to ask in, or asked before).
    pub async fn ask_presence_consent(
        self: &Arc<Self>,
        user: &MatrixUserId,
        jid: &BareJid,
    ) -> crate::store::Result<bool> {
        let Some(room) = self.store.bot_dm(user).await? else {
            tracing::info!(%user, %jid, "presence request not asked: the user has no chat with the bot");
            return Ok(false);
        };
        if !self.store.add_consent_request(user, jid).await? {
            return Ok(false);
        }
        let text = format!(
            "{jid} wants to see when you are available. Answer `presence approve {jid}` or `presence deny {jid}`."
        );
        tracing::info!(%user, %jid, "asking for consent to presence");
        self.queue_all(vec![Action::MatrixPost { room, user: self.map.bot(), text: Text::notice(text), nick: None }])
            .await?;
        Ok(true)
    }

    /// `jid` started (`true`) or stopped sharing their presence with `user`'s address.
    pub async fn xmpp_shares_presence(&self, jid: &BareJid, user: &MatrixUserId, shares: bool) {
        let result = if shares {
            self.store.add_presence_share(jid, user, SHARES_PER_DOMAIN).await.map(|stored| {
                if !stored {
                    tracing::info!(%jid, %user, "too many presence shares from this domain; not recorded");
                }
            })
        } else {
            self.store.remove_presence_share(jid, user).await
        };
        if let Err(e) = result {
            tracing::warn!(%jid, %user, error = %e, "cannot record presence sharing");
        }
    }

    /// May `watcher` be told of `target`'s presence changes? `Err` is the refusal, saying why
    /// and how to get consent.
    pub(super) async fn may_watch(&self, watcher: &Party, target: &Party) -> crate::store::Result<Result<(), Refusal>> {
        let refused = |text: String| Err(Refusal::forbidden(text));
        Ok(match (watcher, target) {
            (Party::Xmpp(jid), Party::Matrix(user)) => {
                if self.store.presence_allowed(user, jid).await? {
                    Ok(())
                } else {
                    refused(format!(
                        "You cannot watch {user}: they have not agreed to share their presence with you. \
                         Add {} to your contacts (a subscription request); they are asked, and once they \
                         approve, try again.",
                        self.map.jid_for_matrix(user)
                    ))
                }
            }
            (Party::Matrix(user), Party::Xmpp(jid)) => {
                if self.store.shares_presence(jid, user).await? {
                    Ok(())
                } else {
                    refused(format!(
                        "You cannot watch {jid} yet: they do not share their presence with you. I have asked \
                         them (as {}); once they accept, try again.",
                        self.map.jid_for_matrix(user)
                    ))
                }
            }
            (Party::Matrix(_), Party::Matrix(_)) => refused(format!(
                "The bridge tells you about XMPP contacts; your Matrix client shows {target}'s presence if they share it with you."
            )),
            (Party::Xmpp(_), Party::Xmpp(_)) => refused(format!(
                "The bridge tells you about Matrix users; {target} shares their presence with you through your own XMPP server."
            )),
        })
    }

    /// Subscribe to `jid`'s presence from `user`'s address: the XMPP server asks `jid`, and
    /// their answer (`subscribed`) is what lets `user` watch them.
    pub(super) async fn ask_to_share(&self, user: &MatrixUserId, jid: &BareJid) {
        self.xmpp.post(Outgoing::SubscriptionRequest { from: self.map.jid_for_matrix(user), to: jid.clone() }).await;
    }

    /// `presence approve|deny|list`, for Matrix users. Writes go through `tx`; the stanzas an
    /// answer sends wait until it is committed (a probe in between must already see it).
    pub(super) async fn presence_command(
        &self,
        tx: &mut StoreTx,
        caller: &Party,
        action: PresenceCommand,
    ) -> crate::store::Result<String> {
        let Party::Matrix(user) = caller else {
            return Ok("Only Matrix users answer presence requests; on XMPP, your server asks you.".into());
        };
        let read = |text: &str| -> Result<BareJid, Refusal> {
            match BareJid::parse(text) {
                Ok(jid) if jid.local().is_some() && jid.domain() != self.map.component => Ok(jid),
                Ok(_) => Err(Refusal::bad_address(format!("{text} is not an XMPP user; write user@server."))),
                Err(e) => Err(Refusal::bad_address(format!("{text} is not an XMPP address: {e}"))),
            }
        };
        let contact = self.map.jid_for_matrix(user);
        Ok(match action {
            PresenceCommand::List => {
                let all = tx.consents_of(user).await?;
                if all.is_empty() {
                    "Nobody has asked to see your presence.".into()
                } else {
                    let lines: Vec<_> = all.iter().map(|(jid, c)| format!("- {jid}: {}", c.as_str())).collect();
                    format!("Requests to see your presence:\n{}", lines.join("\n"))
                }
            }
            PresenceCommand::Approve { jid } => {
                let jid = match read(&jid) {
                    Ok(j) => j,
                    Err(e) => return Ok(e.text),
                };
                let before = tx.answer_consent(user, &jid, Consent::Approved).await?;
                if before == Some(Consent::Approved) {
                    return Ok(format!("{jid} may see your presence already."));
                }
                if before != Some(Consent::Pending) {
                    return Ok(format!("OK: {jid} may see your presence once they add {contact} to their contacts."));
                }
                tx.add_subscription(&contact.to_string(), &jid.to_string()).await?;
                let presence = self.presence_of_matrix_user(user, &jid).await;
                let (contact, subscriber) = (contact.clone(), jid.clone());
                // The command's transaction is open: no avatar download here; a later presence
                // carries the hash if it is not known yet.
                let photo = self.matrix_photo_hash_known(user);
                let out = Outgoing::SubscriptionGranted { contact, subscriber, current: presence, photo };
                self.send_when_answered(user, &jid, Consent::Approved, out);
                format!("OK: {jid} can see your presence now.")
            }
            PresenceCommand::Deny { jid } => {
                let jid = match read(&jid) {
                    Ok(j) => j,
                    Err(e) => return Ok(e.text),
                };
                let before = tx.answer_consent(user, &jid, Consent::Denied).await?;
                let subscribed = tx.remove_subscription(&contact.to_string(), &jid.to_string()).await?;
                tx.remove_watch(&Party::Xmpp(jid.clone()), caller).await?;
                if before.is_some() || subscribed {
                    self.send_when_answered(
                        user,
                        &jid,
                        Consent::Denied,
                        Outgoing::SubscriptionWithdrawn { contact: contact.clone(), subscriber: jid.clone() },
                    );
                }
                if self.store.in_conversation(user, &jid).await? {
                    format!(
                        "OK, noted. You have a conversation with {jid}, though, which lets them see your presence while it lasts."
                    )
                } else {
                    format!("OK: {jid} cannot see your presence.")
                }
            }
        })
    }

    /// Send `stanzas` once `user`'s answer to `jid` is committed (or give up after a while:
    /// a rolled back answer sends nothing).
    fn send_when_answered(&self, user: &MatrixUserId, jid: &BareJid, answer: Consent, out: Outgoing) {
        let (store, xmpp, user, jid) = (self.store.clone(), self.xmpp.clone(), user.clone(), jid.clone());
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + COMMIT_WAIT;
            loop {
                match store.consent(&user, &jid).await {
                    Ok(Some(c)) if c == answer => break,
                    Err(e) => tracing::debug!(%user, %jid, error = %e, "waiting for a presence answer"),
                    _ => {}
                }
                if tokio::time::Instant::now() >= deadline {
                    return tracing::info!(%user, %jid, "presence answer not committed; nothing sent");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            xmpp.post(out).await;
        });
    }
}
