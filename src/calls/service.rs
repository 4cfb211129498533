//! The running missed-call module: accepting telephony events (webhook and AMI) into the
//! database, one task that owns the [`CallTracker`], and for every finished call the journal
//! rows and the notices' outbox rows, written in one transaction. It reaches the rest of the
//! bridge only through [`CallsHost`] (outbox dispatch, SMS notices, the bot's ID).
//!
//! Nothing lost, nothing doubled:
//! - an event is stored (`call_event`) before the webhook answers 200;
//! - at start the stored events (of calls not yet finished) are replayed into a fresh tracker;
//! - a finished call's journal rows, its notices' outbox rows, its `call_done` mark and the
//!   removal of its events commit together, so a crash before the commit replays the call and
//!   a crash after it finds the call done (a replayed webhook of a done call is ignored);
//! - the notices are outbox actions: e-mail is sent by [`Mailer`](super::mailer::Mailer) (the
//!   row goes only after the SMTP server accepted the message), chat notices are ordinary
//!   Matrix / XMPP sends.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crate::core::setup::{SetupContext as _, SetupError};
use tokio::sync::mpsc;

use super::config::MissedCalls;
use super::event::CallEvent;
use super::live::{Base, Live};
use super::model::{CallSummary, CallTracker};
use super::notices::{Known, SMS_WITHDRAWN, channel_name};
use super::phone::{PhoneChange, Phones, PickupRing};
use super::rules::{self, Channel, Directory, Facts, JournalEntry, JournalKind, UserFacts, UserId};
use crate::contacts::ContactIndex;
use crate::core::action::Action;
use crate::core::ids::MatrixUserId;
use crate::core::phone::{Region, normalize};
use crate::store::{NewJournalRow, OutboxRow, Store, StoreError, now_ms};

const DAY_MS: i64 = 24 * 3600 * 1000;
/// How long a finished call's id is remembered against replays.
const KEEP_DONE_MS: i64 = 7 * DAY_MS;

/// Accepted events with their stored ids, in the order they were stored.
type Batch = Vec<(i64, CallEvent)>;

/// The running module.
pub struct CallsService {
    /// The section as read at start (webhook, journal token, AMI: these need a restart).
    pub settings: MissedCalls,
    pub(super) region: Region,
    /// What the config file says (replaced by `reload`).
    pub(super) base: std::sync::Mutex<Arc<Base>>,
    /// The settings in effect: the config with the admins' and users' stored choices laid over
    /// it. Each call reads one snapshot; a command or a reload swaps in a new one.
    pub(super) live: std::sync::RwLock<Arc<Live>>,
    pub(super) store: Store,
    pub(super) host: Arc<dyn CallsHost>,
    events: mpsc::Sender<Batch>,
}

/// What the module needs from the running bridge (implemented in `bridge::calls`), so this
/// library does not depend on the bridge.
pub trait CallsHost: Send + Sync {
    /// Hand committed outbox rows to their delivery lanes.
    fn dispatch(&self, rows: Vec<OutboxRow>);
    /// Whether the `sms:` section is configured.
    fn sms_on(&self) -> bool;
    /// A notice by SMS to `mobile`, from the caller's number when `caller` is given (`None`:
    /// SMS is off or the mobile number is invalid).
    fn sms_notice(&self, mobile: &str, caller: Option<&str>, text: String) -> Option<Action>;
    /// The bridge bot, who writes the chat notices on Matrix.
    fn bot(&self) -> MatrixUserId;
    /// Calls started or stopped showing people busy (presence from the phone), in order.
    fn phone_presence(&self, changes: Vec<PhoneChange>);
    /// After the replay at start: every call that shows someone busy now; anything stored
    /// before for other calls is over (they ended while the bridge was down, or expired).
    fn phone_presence_now(&self, busy: Vec<PhoneChange>);
    /// A call rang anew at a line owner's phone (pickup alerts).
    fn call_ringing(&self, ring: PickupRing);
}

impl CallsService {
    /// Build the module from its section of the config (its files resolved by the caller) and
    /// start its tasks: the event processor (after replaying stored events) and the AMI client.
    pub async fn start(settings: MissedCalls, store: Store, host: Arc<dyn CallsHost>) -> Result<Arc<Self>, SetupError> {
        let region = Region::parse(&settings.contacts.region).setup("missed_calls.contacts.region")?;
        let base = Base::load(&settings, region)?;
        if settings.rules.channels.contains(&Channel::Sms) && !host.sms_on() {
            tracing::warn!("missed_calls.rules.channels contains sms, but there is no `sms:` section: no SMS notices");
        }
        let placeholder = Live {
            rules: base.rules.clone(),
            directory: Directory::default(),
            contacts: Arc::new(ContactIndex::default()),
            templates: base.templates.clone(),
            render: base.render.clone(),
            bad_overrides: vec![],
            lines: base.lines.clone(),
            sms_chosen_by: HashMap::new(),
        };
        let (events, rx) = mpsc::channel(1024);
        let service = Arc::new(Self {
            settings,
            region,
            base: std::sync::Mutex::new(Arc::new(base)),
            live: std::sync::RwLock::new(Arc::new(placeholder)),
            store,
            host,
            events,
        });
        service.refresh(true).await.setup("reading the stored missed-call settings")?;
        tokio::spawn(service.clone().process(rx));
        if let Some(ami) = &service.settings.ami {
            let (tx, mut ami_rx) = mpsc::channel::<CallEvent>(1024);
            let mut client = super::ami::ClientConfig::new(&ami.address, &ami.username, &ami.secret);
            client.keepalive = Duration::from_secs(ami.keepalive_secs);
            client.ping_timeout = client.keepalive;
            let translator = super::ami::Translator::new(super::ami::TranslatorConfig {
                extensions: ami.extensions.clone(),
                ..Default::default()
            });
            tokio::spawn(super::ami::run(client, translator, tx));
            let svc = service.clone();
            tokio::spawn(async move {
                while let Some(event) = ami_rx.recv().await {
                    while let Err(e) = svc.accept(vec![event.clone()]).await {
                        tracing::warn!(error = %e, "cannot store an AMI event; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            });
            tracing::info!(address = %ami.address, "AMI client started");
        }
        tracing::info!(users = service.live().directory.users().len(), "missed-call notifications on");
        Ok(service)
    }

    /// Store accepted events, then hand them to the processor. When this returns `Ok`, the
    /// events survive a crash.
    pub async fn accept(&self, events: Vec<CallEvent>) -> Result<(), StoreError> {
        let mut rows = Vec::with_capacity(events.len());
        for e in &events {
            let json = serde_json::to_string(e)
                .map_err(|err| StoreError::Corrupt { context: "encode call event", reason: err.to_string() })?;
            rows.push((e.call_id().to_string(), json));
        }
        let mut tx = self.store.begin().await?;
        let ids = tx.add_call_events(&rows).await?;
        tx.commit().await?;
        let batch: Batch = ids.into_iter().zip(events).filter_map(|(id, e)| id.map(|id| (id, e))).collect();
        if !batch.is_empty() && self.events.send(batch).await.is_err() {
            tracing::warn!("call event processor is gone; events will be replayed at the next start");
        }
        Ok(())
    }

    /// Journal rows for the HTTP endpoint.
    pub async fn journal(&self, q: &crate::store::JournalQuery) -> Result<Vec<crate::store::JournalRow>, StoreError> {
        self.store.journal(q).await
    }

    /// The line a per-user journal token reads (by the token's hash): `Ok(None)` for an unknown
    /// token; `Ok(Some(None))` for a known one whose owner has no line (now).
    pub async fn journal_token_line(&self, token_hash: &str) -> Result<Option<Option<UserId>>, StoreError> {
        let Some(party) = self.store.journal_token_party(token_hash).await? else { return Ok(None) };
        Ok(Some(crate::core::watch::Party::from_key(&party).and_then(|p| self.user_of(&p))))
    }

    /// The one task that owns the call tracker.
    async fn process(self: Arc<Self>, mut rx: mpsc::Receiver<Batch>) {
        let mut tracker = CallTracker::new();
        let mut phones = Phones::default();
        let stored = loop {
            match self.store.pending_call_events().await {
                Ok(rows) => break rows,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read stored call events; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        let mut replayed = HashSet::new();
        if !stored.is_empty() {
            tracing::info!(events = stored.len(), "replaying stored call events");
        }
        for (id, json) in stored {
            replayed.insert(id);
            match serde_json::from_str::<CallEvent>(&json) {
                Ok(event) => self.apply(&mut tracker, &mut phones, id, event, false).await,
                Err(e) => {
                    tracing::warn!(id, error = %e, "dropping an unreadable stored call event");
                    let _ = self.store.drop_call_event(id).await;
                }
            }
        }
        // Presence from the phone after a restart: who the replayed calls show busy now.
        self.phone_after_replay(&phones);
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        let mut ticks: u64 = 0;
        loop {
            tokio::select! {
                batch = rx.recv() => {
                    let Some(batch) = batch else { return };
                    for (id, event) in batch {
                        if replayed.remove(&id) {
                            continue;
                        }
                        self.apply(&mut tracker, &mut phones, id, event, true).await;
                    }
                }
                _ = tick.tick() => {
                    let idle_ms = i64::try_from(self.settings.idle_expiry_secs).unwrap_or(i64::MAX).saturating_mul(1000);
                    for summary in tracker.expire_idle(now_ms().saturating_sub(idle_ms)) {
                        tracing::info!(call = %summary.call_id, "call had no event for a long time; closing it");
                        self.phone_after_event(&tracker, &mut phones, &summary.call_id, None, true);
                        self.finish(&summary).await;
                    }
                    if ticks.is_multiple_of(60) {
                        let _ = self.store.prune_calls_done(now_ms() - KEEP_DONE_MS).await;
                    }
                    ticks += 1;
                }
            }
        }
    }

    /// Apply one event (`live`: as it comes, not replayed at start).
    async fn apply(&self, tracker: &mut CallTracker, phones: &mut Phones, id: i64, event: CallEvent, live: bool) {
        let kind = event.kind();
        let call = event.call_id().clone();
        let ring = tracker.new_ring(&event);
        match tracker.apply(event) {
            Ok(None) => self.phone_after_event(tracker, phones, &call, ring, live),
            Ok(Some(summary)) => {
                self.phone_after_event(tracker, phones, &call, None, live);
                self.finish(&summary).await
            }
            Err(e) => {
                tracing::warn!(%call, kind, error = %e, "call event does not fit the call; dropped");
                if let Err(e) = self.store.drop_call_event(id).await {
                    tracing::warn!(error = %e, "cannot drop call event");
                }
            }
        }
    }

    /// Handle a finished call, retrying while the database fails (nothing may be lost).
    async fn finish(&self, summary: &CallSummary) {
        let mut delay = Duration::from_millis(250);
        loop {
            match self.handle(summary).await {
                Ok(rows) => return self.host.dispatch(rows),
                Err(e) => {
                    tracing::warn!(call = %summary.call_id, error = %e, "cannot record a finished call; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    /// The key numbers are compared by: E.164 when the number is valid, else its digits.
    pub(super) fn key_of(&self, number: &str) -> String {
        rules::number_key(&normalize(number, self.region).unwrap_or_else(|| number.to_owned()))
    }

    /// Journal, notices and outbox rows for a finished call, in one transaction.
    async fn handle(&self, summary: &CallSummary) -> Result<Vec<OutboxRow>, StoreError> {
        let store = &self.store;
        let live = self.live();
        let live = live.as_ref();
        let number = summary.caller.visible_number();
        let contact = number.and_then(|n| live.contacts.lookup(n));
        let key = number.map(|n| self.key_of(n)).unwrap_or_default();
        let mut facts = Facts {
            contact_found: contact.is_some(),
            caller_e164: number.and_then(|n| normalize(n, self.region)),
            users: HashMap::new(),
        };
        let day_start = live.render.zone.day_start(summary.started_at);
        for user in self.candidates(live, summary) {
            let Some(entry) = live.directory.get(&user) else { continue };
            let mut f = UserFacts { last_logon_at: store.last_logon(&entry.logon_keys()).await?, ..Default::default() };
            if !key.is_empty() {
                f.notices_today_same_number = store.notices_since(user.as_str(), &key, day_start).await?.0;
                f.last_notice_same_number_at = store.last_notice(user.as_str(), &key).await?;
            }
            facts.users.insert(user, f);
        }
        let decision = rules::decide(&live.rules, &live.directory, summary, &facts);

        let called_name = live.called_name(&summary.called, self.region);
        let mut actions = Vec::new();
        let mut queued: HashMap<UserId, Vec<&'static str>> = HashMap::new();
        for notice in &decision.notices {
            for channel in &notice.channels {
                let known = Known { caller: contact, called_name: called_name.as_deref() };
                let (action, used) = match channel {
                    Channel::Email => (self.mail_action(live, notice, known), *channel),
                    Channel::Chat => (self.chat_action(live, notice, known, None).await?, *channel),
                    Channel::Sms if self.sms_withdrawn(live, notice).await? => {
                        tracing::info!(user = %notice.user, "SMS chosen but no longer permitted; the chat instead");
                        if notice.channels.contains(&Channel::Chat) {
                            // The chat notice goes anyway.
                            (None, Channel::Chat)
                        } else {
                            (self.chat_action(live, notice, known, Some(SMS_WITHDRAWN)).await?, Channel::Chat)
                        }
                    }
                    Channel::Sms => (self.sms_action(live, notice, known), *channel),
                };
                if let Some(action) = action {
                    actions.push(action);
                    queued.entry(notice.user.clone()).or_default().push(channel_name(used));
                }
            }
        }
        let mut skipped: HashMap<Option<UserId>, String> = HashMap::new();
        for s in &decision.skipped {
            skipped.entry(s.user.clone()).or_insert_with(|| s.reason.code().to_owned());
        }
        tracing::info!(call = %summary.call_id, notices = actions.len(), notified = ?decision.notified(),
            skipped = ?decision.skipped.iter().map(|s| s.reason.code()).collect::<Vec<_>>(), "call finished");

        let mut tx = store.begin().await?;
        if !tx.finish_call(summary.call_id.as_str()).await? {
            tracing::info!(call = %summary.call_id, "call was handled before; ignored");
            tx.commit().await?;
            return Ok(Vec::new());
        }
        for mut row in self.journal_rows(live, summary, contact) {
            let user = UserId::new(&row.user);
            if let Some(channels) = queued.get(&user) {
                row.notified = true;
                row.channels = channels.join(",");
            } else if row.kind != "outgoing" {
                row.skip_reason = skipped.get(&Some(user)).or_else(|| skipped.get(&None)).cloned();
            }
            let id = tx.add_journal(&row).await?;
            if row.kind == "outgoing" {
                self.settle(&mut tx, id, &row).await?;
            }
        }
        let mut rows = Vec::with_capacity(actions.len());
        for action in actions {
            rows.push(tx.enqueue_row(action).await?);
        }
        tx.commit().await?;
        for channel in queued.values().flatten() {
            crate::core::metrics::missed_call_notice(channel);
        }
        Ok(rows)
    }

    /// "After the fact": an outgoing call marks earlier missed calls from that number processed.
    async fn settle(&self, tx: &mut crate::store::StoreTx, id: i64, row: &NewJournalRow) -> Result<(), StoreError> {
        let open = tx.open_missed_calls(&row.user, row.started_at).await?;
        if open.is_empty() {
            return Ok(());
        }
        let entry = |id, kind, r: &NewJournalRow| JournalEntry {
            id,
            user: UserId::new(&r.user),
            kind,
            number: Some(r.number_key.clone()).filter(|k| !k.is_empty()),
            contact_id: r.contact_id.clone(),
            at: r.started_at,
            processed: false,
        };
        let earlier: Vec<JournalEntry> = open.iter().map(|o| entry(o.id, JournalKind::Missed, &o.entry)).collect();
        let settled = rules::settled_by(&entry(id, JournalKind::Outgoing, row), &earlier);
        if !settled.is_empty() {
            tracing::info!(user = %row.user, call = %row.call_id, settled = ?settled, "missed calls called back");
            tx.mark_processed(&settled, &row.call_id, now_ms()).await?;
        }
        Ok(())
    }
}
