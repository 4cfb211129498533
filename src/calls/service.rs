//! The missed-call module wired into the running bridge: accepting telephony events (webhook
//! and AMI) into the database, one task that owns the [`CallTracker`], and for every finished
//! call the journal rows and the notices' outbox rows, written in one transaction.
//!
//! Nothing lost, nothing doubled:
//! - an event is stored (`call_event`) before the webhook answers 200;
//! - at start the stored events (of calls not yet finished) are replayed into a fresh tracker;
//! - a finished call's journal rows, its notices' outbox rows, its `call_done` mark and the
//!   removal of its events commit together, so a crash before the commit replays the call and
//!   a crash after it finds the call done (a replayed webhook of a done call is ignored);
//! - the notices are outbox actions: e-mail is sent by [`Mailer`] (the row goes only after the
//!   SMTP server accepted the message), chat notices are ordinary Matrix / XMPP sends.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio::sync::mpsc;

use super::contacts::{self, Contact, ContactIndex, Region};
use super::event::{CallEvent, Direction, Extension};
use super::mail::{self, LinkPrefix, MailSettings, Templates};
use super::model::{CallSummary, CallTracker};
use super::rules::{
    self, Channel, Directory, Facts, JournalEntry, JournalKind, Notice, RuleSettings, UserFacts, UserId,
};
use crate::bridge::Bridge;
use crate::config::Config;
use crate::config::calls::{CallMail, CallUser, MissedCalls, Smtp, SmtpTls};
use crate::core::action::{Action, Text};
use crate::core::ids::{BareJid, MatrixUserId};
use crate::core::outbox::DeliveryError;
use crate::core::presence::{Presence, State};
use crate::core::watch::Party;
use crate::store::{NewJournalRow, OutboxRow, StoreError, now_ms};

const DAY_MS: i64 = 24 * 3600 * 1000;
/// How long a finished call's id is remembered against replays.
const KEEP_DONE_MS: i64 = 7 * DAY_MS;

/// Accepted events with their stored ids, in the order they were stored.
type Batch = Vec<(i64, CallEvent)>;

/// The running module.
pub struct CallsService {
    /// The section as read at start (webhook, journal token, AMI: these need a restart).
    pub settings: MissedCalls,
    region: Region,
    /// What the config file says (replaced by `reload`).
    base: std::sync::Mutex<Arc<Base>>,
    /// The settings in effect: the config with the admins' and users' stored choices laid over
    /// it. Each call reads one snapshot; a command or a reload swaps in a new one.
    live: std::sync::RwLock<Arc<Live>>,
    bridge: Arc<Bridge>,
    events: mpsc::Sender<Batch>,
}

/// The module's settings from the config file.
struct Base {
    rules: RuleSettings,
    users: Vec<CallUser>,
    /// Contacts from `contacts.files`.
    contacts: Vec<Contact>,
    templates: Arc<Templates>,
    render: MailSettings,
}

/// The settings one call is handled with.
pub struct Live {
    pub rules: RuleSettings,
    directory: Directory,
    users: HashMap<UserId, CallUser>,
    contacts: Arc<ContactIndex>,
    templates: Arc<Templates>,
    /// Rendering options (also for chat notices when e-mail is off).
    pub render: MailSettings,
    /// Stored overrides that no longer read: (name, why).
    pub bad_overrides: Vec<(String, String)>,
}

/// Sends the stored e-mails.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// The longest one message's SMTP exchange may take (`smtp.timeout_secs`).
    timeout: Duration,
}

impl Mailer {
    pub fn new(smtp: &Smtp) -> anyhow::Result<Self> {
        let builder = match smtp.tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
                .context("missed_calls.mail.smtp.host")?,
            SmtpTls::Tls => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host).context("missed_calls.mail.smtp.host")?
            }
        };
        let mut builder = builder.port(smtp.port()).timeout(Some(Duration::from_secs(smtp.timeout_secs)));
        if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Self { transport: builder.build(), timeout: Duration::from_secs(smtp.timeout_secs) })
    }

    /// Send one stored message. A permanent refusal (5xx) is `Permanent`; everything else
    /// (connection refused, timeouts, 4xx) is retried.
    pub async fn send(&self, from: &str, to: &[String], raw: &str) -> Result<(), DeliveryError> {
        let bad = |e: String| DeliveryError::Permanent(e);
        let from: Address = from.parse().map_err(|e| bad(format!("envelope sender {from}: {e}")))?;
        let to: Vec<Address> =
            to.iter().map(|t| t.parse().map_err(|e| bad(format!("recipient {t}: {e}")))).collect::<Result<_, _>>()?;
        let envelope = lettre::address::Envelope::new(Some(from), to).map_err(|e| bad(e.to_string()))?;
        // lettre's timeout covers only the TCP connect: a server that accepts the connection and
        // never answers (black-holed) would hold the mail lane forever without this bound.
        let sent = tokio::time::timeout(self.timeout, self.transport.send_raw(&envelope, raw.as_bytes()))
            .await
            .map_err(|_| DeliveryError::Transient(format!("SMTP: no answer within {:?}", self.timeout)))?;
        match sent {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(DeliveryError::Permanent(format!("SMTP server refused the mail: {e}"))),
            Err(e) => Err(DeliveryError::Transient(format!("SMTP: {e}"))),
        }
    }
}

impl Bridge {
    /// Deliver an [`Action::Mail`].
    pub(crate) async fn deliver_mail(&self, from: &str, to: &[String], raw: &str) -> Result<(), DeliveryError> {
        match self.mailer.get() {
            Some(mailer) => mailer.send(from, to, raw).await,
            // Mail queued under a config that had `missed_calls.mail`, and now it is gone: keep it.
            None => Err(DeliveryError::Transient("missed_calls.mail is not configured".into())),
        }
    }

    /// The admins' notice that a missed-call e-mail was refused for good (a 5xx): in the control
    /// room, so the loss is seen where the bridge is run, not only in its log.
    pub(crate) fn mail_refused_notice(&self, to: &[String], message_id: &str, reason: &str) -> Option<Action> {
        let room = self.control_room()?;
        let body =
            format!("A missed-call e-mail to {} was not sent: {reason} (Message-ID {message_id})", to.join(", "));
        Some(Action::MatrixNotice { room, body, html: None, reply_to: None })
    }

    /// A person's presence changed: remember when they were last seen available (the
    /// "repeated calls while the user has not logged on" exception).
    pub(crate) async fn note_logon(&self, who: &Party, presence: &Presence) {
        if presence.state == State::Offline || self.config.missed_calls.is_none() {
            return;
        }
        if let Err(e) = self.store.record_logon(&who.key(), now_ms()).await {
            tracing::warn!(%who, error = %e, "cannot record last logon");
        }
    }
}

/// Read the templates: the built-in ones, or `templates_dir/<language>/*.j2`.
fn load_templates(config: &Config, mail: Option<&CallMail>) -> anyhow::Result<Templates> {
    let Some(dir) = mail.and_then(|m| m.templates_dir.as_ref()) else {
        return Ok(Templates::builtin()?);
    };
    let dir = config.resolve(dir);
    let mut sources = Vec::new();
    let entries =
        std::fs::read_dir(&dir).with_context(|| format!("missed_calls.mail.templates_dir {}", dir.display()))?;
    for entry in entries {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        let lang = entry.file_name().to_string_lossy().into_owned();
        for file in mail::TEMPLATE_FILES {
            let path = entry.path().join(file);
            if let Ok(source) = std::fs::read_to_string(&path) {
                sources.push((lang.clone(), file.to_owned(), source));
            }
        }
    }
    let templates = Templates::from_sources(sources).context("missed_calls.mail.templates_dir")?;
    if templates.languages().is_empty() {
        anyhow::bail!(
            "config key `missed_calls.mail.templates_dir`: {} has no <language>/ directory with {}",
            dir.display(),
            mail::TEMPLATE_FILES.join(", ")
        );
    }
    Ok(templates)
}

fn load_contacts(config: &Config, settings: &MissedCalls) -> anyhow::Result<Vec<Contact>> {
    let mut all = Vec::new();
    for file in &settings.contacts.files {
        let path = config.resolve(file);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("config key `missed_calls.contacts.files`: cannot read {}", path.display()))?;
        let is_csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        let parsed = if is_csv { contacts::parse_csv(&text) } else { contacts::parse_vcards(&text) };
        let parsed = parsed.with_context(|| format!("config key `missed_calls.contacts.files`: {}", path.display()))?;
        tracing::info!(file = %path.display(), contacts = parsed.len(), "contacts imported");
        all.extend(parsed);
    }
    Ok(all)
}

impl CallsService {
    /// Build the module from the config (`None` when `missed_calls` is absent) and start its
    /// tasks: the event processor (after replaying stored events) and the AMI client.
    pub async fn start(config: &Config, bridge: Arc<Bridge>) -> anyhow::Result<Option<Arc<Self>>> {
        let Some(settings) = config.missed_calls.clone() else { return Ok(None) };
        let region = Region::parse(&settings.contacts.region).context("missed_calls.contacts.region")?;
        let base = Base::load(config, &settings, region)?;
        if let Some(mail) = &settings.mail {
            let mailer = Mailer::new(&mail.smtp)?;
            let _ = bridge.mailer.set(mailer);
        }
        if settings.rules.channels.contains(&Channel::Sms) && bridge.sms().is_none() {
            tracing::warn!("missed_calls.rules.channels contains sms, but there is no `sms:` section: no SMS notices");
        }
        let placeholder = Live {
            rules: base.rules.clone(),
            directory: Directory::default(),
            users: HashMap::new(),
            contacts: Arc::new(ContactIndex::default()),
            templates: base.templates.clone(),
            render: base.render.clone(),
            bad_overrides: vec![],
        };
        let (events, rx) = mpsc::channel(1024);
        let service = Arc::new(Self {
            settings,
            region,
            base: std::sync::Mutex::new(Arc::new(base)),
            live: std::sync::RwLock::new(Arc::new(placeholder)),
            bridge,
            events,
        });
        service.refresh(true).await.context("reading the stored missed-call settings")?;
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
        Ok(Some(service))
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
        let mut tx = self.bridge.store.begin().await?;
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
        self.bridge.store.journal(q).await
    }

    /// The one task that owns the call tracker.
    async fn process(self: Arc<Self>, mut rx: mpsc::Receiver<Batch>) {
        let mut tracker = CallTracker::new();
        let stored = loop {
            match self.bridge.store.pending_call_events().await {
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
                Ok(event) => self.apply(&mut tracker, id, event).await,
                Err(e) => {
                    tracing::warn!(id, error = %e, "dropping an unreadable stored call event");
                    let _ = self.bridge.store.drop_call_event(id).await;
                }
            }
        }
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
                        self.apply(&mut tracker, id, event).await;
                    }
                }
                _ = tick.tick() => {
                    let idle_ms = i64::try_from(self.settings.idle_expiry_secs).unwrap_or(i64::MAX).saturating_mul(1000);
                    for summary in tracker.expire_idle(now_ms().saturating_sub(idle_ms)) {
                        tracing::info!(call = %summary.call_id, "call had no event for a long time; closing it");
                        self.finish(&summary).await;
                    }
                    if ticks.is_multiple_of(60) {
                        let _ = self.bridge.store.prune_calls_done(now_ms() - KEEP_DONE_MS).await;
                    }
                    ticks += 1;
                }
            }
        }
    }

    async fn apply(&self, tracker: &mut CallTracker, id: i64, event: CallEvent) {
        let kind = event.kind();
        let call = event.call_id().clone();
        match tracker.apply(event) {
            Ok(None) => {}
            Ok(Some(summary)) => self.finish(&summary).await,
            Err(e) => {
                tracing::warn!(%call, kind, error = %e, "call event does not fit the call; dropped");
                if let Err(e) = self.bridge.store.drop_call_event(id).await {
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
                Ok(rows) => return self.bridge.dispatch(rows),
                Err(e) => {
                    tracing::warn!(call = %summary.call_id, error = %e, "cannot record a finished call; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    /// The key numbers are compared by: E.164 when the number is valid, else its digits.
    fn key_of(&self, number: &str) -> String {
        rules::number_key(&contacts::normalize(number, self.region).unwrap_or_else(|| number.to_owned()))
    }

    fn day_start(&self, live: &Live, at: i64) -> i64 {
        let offset = i64::from(live.render.utc_offset_minutes) * 60_000;
        (at + offset).div_euclid(DAY_MS) * DAY_MS - offset
    }

    /// Journal, notices and outbox rows for a finished call, in one transaction.
    async fn handle(&self, summary: &CallSummary) -> Result<Vec<OutboxRow>, StoreError> {
        let store = &self.bridge.store;
        let live = self.live();
        let live = live.as_ref();
        let number = summary.caller.visible_number();
        let contact = number.and_then(|n| live.contacts.lookup(n));
        let key = number.map(|n| self.key_of(n)).unwrap_or_default();
        let mut facts = Facts {
            contact_found: contact.is_some(),
            caller_e164: number.and_then(|n| contacts::normalize(n, self.region)),
            users: HashMap::new(),
        };
        let day_start = self.day_start(live, summary.started_at);
        for user in self.candidates(live, summary) {
            let Some(cfg) = live.users.get(&user) else { continue };
            let mut f = UserFacts { last_logon_at: store.last_logon(&cfg.logon_keys()).await?, ..Default::default() };
            if !key.is_empty() {
                f.notices_today_same_number = store.notices_since(user.as_str(), &key, day_start).await?.0;
                f.last_notice_same_number_at = store.last_notice(user.as_str(), &key).await?;
            }
            facts.users.insert(user, f);
        }
        let decision = rules::decide(&live.rules, &live.directory, summary, &facts);

        let mut actions = Vec::new();
        let mut queued: HashMap<UserId, Vec<&'static str>> = HashMap::new();
        for notice in &decision.notices {
            for channel in &notice.channels {
                let action = match channel {
                    Channel::Email => self.mail_action(live, notice, contact),
                    Channel::Chat => self.chat_action(live, notice, contact).await?,
                    Channel::Sms => self.sms_action(live, notice, contact),
                };
                if let Some(action) = action {
                    actions.push(action);
                    queued.entry(notice.user.clone()).or_default().push(channel_name(*channel));
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

    /// People who may be told about this call (for their facts).
    fn candidates(&self, live: &Live, s: &CallSummary) -> Vec<UserId> {
        let mut out: Vec<UserId> = s
            .participants
            .iter()
            .filter_map(|p| live.directory.owner_of_extension(&p.extension))
            .map(|u| u.id.clone())
            .collect();
        if let Some(u) = live.directory.owner_of_number(&s.called) {
            out.push(u.id.clone());
        }
        out.sort();
        out.dedup();
        out
    }

    /// One journal row per person involved: who rang (missed or answered), who answered, who
    /// called (outgoing).
    fn journal_rows(&self, live: &Live, s: &CallSummary, contact: Option<&Contact>) -> Vec<NewJournalRow> {
        let direction = match s.direction {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
            Direction::Internal => "internal",
        };
        let base = |user: &UserId, kind: &str| NewJournalRow {
            user: user.to_string(),
            kind: kind.to_owned(),
            call_id: s.call_id.to_string(),
            direction: direction.to_owned(),
            number: None,
            number_key: String::new(),
            name: None,
            contact_id: None,
            extension: None,
            started_at: s.started_at,
            ended_at: s.ended_at,
            ring_ms: 0,
            answered_by: s.answered.as_ref().map(|a| a.by.to_string()),
            notified: false,
            channels: String::new(),
            skip_reason: None,
        };
        let mut rows: Vec<NewJournalRow> = Vec::new();
        let caller_owner = s.caller.visible_number().and_then(|n| live.directory.owner_of_number(n));
        if s.direction != Direction::Inbound
            && let Some(owner) = caller_owner
        {
            let out_contact = live.contacts.lookup(&s.called);
            let mut row = base(&owner.id, "outgoing");
            row.number = Some(s.called.clone());
            row.number_key = self.key_of(&s.called);
            row.name = out_contact.and_then(Contact::display_name).map(str::to_owned);
            row.contact_id = out_contact.and_then(contact_id);
            row.extension = s.caller.number.clone();
            rows.push(row);
        }
        if s.direction == Direction::Outbound {
            return rows;
        }
        // The people whose phones rang, once each (two extensions of one person merge).
        let mut rang: Vec<(UserId, Extension, i64, bool)> = Vec::new();
        for p in &s.participants {
            let Some(owner) = live.directory.owner_of_extension(&p.extension) else { continue };
            let answered = p.answered || s.answered.as_ref().is_some_and(|a| a.by == p.extension);
            match rang.iter_mut().find(|(u, ..)| *u == owner.id) {
                Some(r) => {
                    r.3 |= answered;
                    if p.ring_ms > r.2 {
                        r.1 = p.extension.clone();
                        r.2 = p.ring_ms;
                    }
                }
                None => rang.push((owner.id.clone(), p.extension.clone(), p.ring_ms, answered)),
            }
        }
        if let Some(a) = &s.answered
            && let Some(owner) = live.directory.owner_of_extension(&a.by)
            && !rang.iter().any(|(u, ..)| *u == owner.id)
        {
            rang.push((owner.id.clone(), a.by.clone(), 0, true));
        }
        if rang.is_empty()
            && let Some(owner) = live.directory.owner_of_number(&s.called)
        {
            rang.push((owner.id.clone(), Extension::new(s.called.clone()), 0, s.answered.is_some()));
        }
        for (user, extension, ring_ms, _) in rang {
            // Missed = nobody took the call; a call a colleague took counts as answered.
            let kind = if s.answered.is_some() { "answered" } else { "missed" };
            let mut row = base(&user, kind);
            row.number = s.caller.visible_number().map(str::to_owned);
            row.number_key = row.number.as_deref().map(|n| self.key_of(n)).unwrap_or_default();
            row.name = contact
                .and_then(Contact::display_name)
                .map(str::to_owned)
                .or_else(|| s.caller.name.clone())
                .map(|n| mail::one_line(&n));
            row.contact_id = contact.and_then(contact_id);
            row.extension = Some(extension.to_string());
            row.ring_ms = ring_ms;
            if caller_owner.is_some_and(|o| o.id == user) {
                continue; // calling oneself
            }
            rows.push(row);
        }
        rows
    }

    fn mail_action(&self, live: &Live, notice: &Notice, contact: Option<&Contact>) -> Option<Action> {
        let entry = live.directory.get(&notice.user)?;
        if entry.email.is_none() {
            tracing::info!(user = %notice.user, "no e-mail address; e-mail notice skipped");
            return None;
        }
        let message = match mail::build_message(&live.templates, &live.render, notice, entry, contact) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(user = %notice.user, error = %e, "cannot build the notice e-mail; skipped");
                return None;
            }
        };
        let envelope = message.envelope().clone();
        let raw = match String::from_utf8(message.formatted()) {
            Ok(raw) => raw,
            Err(e) => {
                tracing::warn!(user = %notice.user, error = %e, "notice e-mail is not UTF-8; skipped");
                return None;
            }
        };
        let message_id =
            mail::message_id(notice.summary.call_id.as_str(), &notice.user, &live.render.message_id_domain);
        Some(Action::Mail {
            message_id,
            from: envelope.from().map(ToString::to_string).unwrap_or_else(|| live.render.from_address.clone()),
            to: envelope.to().iter().map(ToString::to_string).collect(),
            raw,
        })
    }

    /// The SMS notice to the person's mobile, from the caller's number when
    /// `sms_caller_as_sender` is on and the caller's number is known.
    fn sms_action(&self, live: &Live, notice: &Notice, contact: Option<&Contact>) -> Option<Action> {
        let entry = live.directory.get(&notice.user)?;
        let mobile = entry.mobile.as_deref()?;
        let text = match mail::render(&live.templates, &live.render, notice, entry, contact) {
            Ok(r) => sms_text(&chat_text(&r.text)),
            Err(e) => {
                tracing::warn!(user = %notice.user, error = %e, "cannot render the SMS notice; skipped");
                return None;
            }
        };
        let caller = notice.summary.caller.visible_number().filter(|_| self.settings.sms_caller_as_sender);
        let action = self.bridge.sms_notice_action(mobile, caller, text);
        if action.is_none() {
            tracing::info!(user = %notice.user, "SMS notice skipped: SMS is off or the mobile number is invalid");
        }
        action
    }

    /// The notice in the person's chat with the bridge: the bot's DM on Matrix (if they have
    /// one), else a message from the component on XMPP.
    async fn chat_action(
        &self,
        live: &Live,
        notice: &Notice,
        contact: Option<&Contact>,
    ) -> Result<Option<Action>, StoreError> {
        let (Some(cfg), Some(entry)) = (live.users.get(&notice.user), live.directory.get(&notice.user)) else {
            return Ok(None);
        };
        let text = match mail::render(&live.templates, &live.render, notice, entry, contact) {
            Ok(r) => chat_text(&r.text),
            Err(e) => {
                tracing::warn!(user = %notice.user, error = %e, "cannot render the chat notice; skipped");
                return Ok(None);
            }
        };
        if let Some(user) = cfg.matrix_user.as_deref().and_then(|u| MatrixUserId::parse(u).ok()) {
            if let Some(room) = self.bridge.store.bot_dm(&user).await? {
                return Ok(Some(Action::MatrixPost {
                    room,
                    user: self.bridge.map.bot(),
                    text: Text::notice(text),
                    nick: None,
                }));
            }
            if cfg.xmpp_jid.is_none() {
                tracing::info!(%user, "no chat with the bridge bot yet; chat notice skipped");
                return Ok(None);
            }
        }
        Ok(cfg
            .xmpp_jid
            .as_deref()
            .and_then(|j| BareJid::parse(j).ok())
            .map(|to| Action::XmppNotice { to, text: Text::notice(text) }))
    }
}

/// The plain-text notice without the e-mail signature.
fn chat_text(text: &str) -> String {
    let body = text.split("\n-- \n").next().unwrap_or(text);
    body.trim().to_owned()
}

/// The notice as one line (SMS are short, and cost per part): the lines joined with ` | `,
/// runs of spaces collapsed.
fn sms_text(text: &str) -> String {
    let lines: Vec<String> =
        text.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).filter(|l| !l.is_empty()).collect();
    lines.join(" | ")
}

fn contact_id(c: &Contact) -> Option<String> {
    c.uid
        .clone()
        .or_else(|| c.phones.iter().find_map(|p| p.e164.clone()))
        .or_else(|| c.display_name().map(str::to_owned))
}

fn channel_name(c: Channel) -> &'static str {
    match c {
        Channel::Email => "email",
        Channel::Sms => "sms",
        Channel::Chat => "chat",
    }
}

impl Base {
    /// The settings in the config file; the checks that need the templates happen here.
    fn load(config: &Config, settings: &MissedCalls, _region: Region) -> anyhow::Result<Self> {
        let templates = load_templates(config, settings.mail.as_ref())?;
        let render = match &settings.mail {
            Some(m) => MailSettings {
                from_address: m.from_address.clone(),
                from_name: m.from_name.clone(),
                message_id_domain: m.message_id_domain.clone(),
                link_prefix: LinkPrefix::parse(&m.link_prefix)?,
                caller_as_sender: m.caller_as_sender,
                attach_vcard: m.attach_vcard,
                default_language: m.default_language.clone(),
                utc_offset_minutes: m.utc_offset_minutes,
            },
            None => MailSettings {
                from_address: "ucbridge@localhost".into(),
                from_name: None,
                message_id_domain: "ucbridge.invalid".into(),
                link_prefix: LinkPrefix::Tel,
                caller_as_sender: false,
                attach_vcard: false,
                default_language: "en".into(),
                utc_offset_minutes: 0,
            },
        };
        let languages = templates.languages();
        if !languages.contains(&render.default_language) {
            anyhow::bail!(
                "config key `missed_calls.mail.default_language`: no templates for {:?} (have {languages:?})",
                render.default_language
            );
        }
        for u in &settings.users {
            if let Some(l) = &u.language
                && !languages.contains(l)
            {
                anyhow::bail!("config key `missed_calls.users`: {}: no templates for language {l:?}", u.id);
            }
        }
        let contacts = load_contacts(config, settings)?;
        Ok(Self {
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

    fn base(&self) -> Arc<Base> {
        match self.base.lock() {
            Ok(b) => b.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Rebuild the settings in effect from the config and what is stored (after a command
    /// changed something); with `contacts`, re-read the imported contact files too.
    pub async fn refresh(&self, contacts: bool) -> Result<(), StoreError> {
        let store = &self.bridge.store;
        let base = self.base();
        let overrides = store.call_settings().await?;
        let blocks = store.block_list().await?;
        let prefs: HashMap<(String, String), String> =
            store.user_settings().await?.into_iter().map(|(p, n, v)| ((p, n), v)).collect();
        let contacts = if contacts {
            let mut all = base.contacts.clone();
            for import in store.contact_imports().await? {
                let format = super::import::Format::parse(&import.format).unwrap_or(super::import::Format::Csv);
                match super::import::read(&import.content, format, self.region) {
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
        let entries = base
            .users
            .iter()
            .map(|u| {
                let mut entry = u.entry();
                for key in u.logon_keys() {
                    match prefs.get(&(key.clone(), "missed_calls".to_owned())).map(String::as_str) {
                        Some("on") => entry.opt_in = Some(true),
                        Some("off") => entry.opt_in = Some(false),
                        _ => {}
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
            users: base.users.iter().map(|u| (UserId::new(&u.id), u.clone())).collect(),
            contacts,
            templates: base.templates.clone(),
            render,
            bad_overrides,
        };
        match self.live.write() {
            Ok(mut l) => *l = Arc::new(live),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(live),
        }
        Ok(())
    }

    /// Apply a re-read config: rules, users, templates, mail options and contact files change
    /// at once; the answer lists what needs a restart.
    pub async fn reload(&self, config: &Config) -> anyhow::Result<Vec<String>> {
        let Some(new) = &config.missed_calls else {
            return Ok(vec!["missed_calls (the section was removed; the module stops at the next restart)".into()]);
        };
        let base = Base::load(config, new, self.region)?;
        let old = &self.settings;
        let mut restart = Vec::new();
        let differs = crate::config::differs;
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
        self.refresh(true).await?;
        Ok(restart)
    }

    /// The template languages (for `language`).
    pub fn languages(&self) -> Vec<String> {
        self.live().templates.languages().to_vec()
    }

    /// A number as the block list keeps it: E.164 when it is a valid number, else its digits.
    pub fn block_key(&self, number: &str) -> String {
        contacts::normalize(number, self.region).unwrap_or_else(|| rules::number_key(number))
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
    pub fn check_option(&self, name: &str, value: &str) -> Result<(), String> {
        let live = self.live();
        let (mut rules, mut render) = (live.rules.clone(), live.render.clone());
        super::settings::apply(name, value, &mut rules, &mut render)
    }

    /// The directory entry of a chat account, if they own a line.
    pub fn user_of(&self, who: &Party) -> Option<UserId> {
        let key = who.key();
        self.base().users.iter().find(|u| u.logon_keys().contains(&key)).map(|u| UserId::new(&u.id))
    }

    /// Read a contact file for an import (nothing is stored here).
    pub fn read_contacts(
        &self,
        text: &str,
        format: super::import::Format,
    ) -> Result<super::import::Report, super::contacts::ContactError> {
        super::import::read(text, format, self.region)
    }

    /// How many contacts lookups use now.
    pub fn contact_count(&self) -> usize {
        self.live().contacts.len()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sms_notices_are_one_line() {
        assert_eq!(
            super::sms_text("You missed a call.\n\nCaller:   Erika\nNumber:   +49 30 1\n"),
            "You missed a call. | Caller: Erika | Number: +49 30 1"
        );
    }
}
