//! Outbox lanes: one worker per lane with queued work, delivering the lane's actions strictly
//! in order; lanes run concurrently.
//!
//! The database is the truth, but a worker does not read it per message: whoever commits an
//! action hands the committed row to its lane in memory ([`Bridge::dispatch`]). The database is
//! read when a lane is (re)started by the sweep: at start-up, and every few seconds for lanes
//! without a worker, which also catches anything a crash left behind.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::status::Carrier;
use crate::bridge::Bridge;
use crate::core::action::{Action, XmppTarget};
use crate::core::metrics;
use crate::core::outbox::DeliveryError;
use crate::core::outbox::{Next, after_attempt};
use crate::core::refusal::RefusalKind;
use crate::store::{MappedMessage, OutboxRow, StoreTx, now_ms};

/// How much of a refused message its sender is shown, to know which one it was.
const QUOTE_CHARS: usize = 100;

/// Rows read from the database per reload of a lane.
const RELOAD_BATCH: i64 = 500;

#[derive(Default)]
struct LaneState {
    /// Committed rows not yet delivered, in id order.
    queue: VecDeque<OutboxRow>,
    /// The database may hold rows this queue does not: reload before going on.
    reload: bool,
}

/// The lanes that have a running worker.
#[derive(Default)]
pub struct Lanes {
    running: Mutex<HashMap<String, LaneState>>,
    /// Actions delivered since the start (how `app` tells a busy spell from a quiet one).
    delivered: AtomicU64,
    /// What a delivered action became, by outbox id: recorded with its completion.
    records: Mutex<HashMap<i64, MappedMessage>>,
}

impl StoreTx {
    /// Queue an action in this transaction; hand the returned row to [`Bridge::dispatch`]
    /// after the commit.
    pub async fn enqueue_row(&mut self, action: Action) -> crate::store::Result<OutboxRow> {
        let mut rows = self.enqueue_all(vec![action]).await?;
        rows.pop().ok_or(crate::store::StoreError::Corrupt { context: "enqueue", reason: "no row queued".into() })
    }

    /// Queue several actions, in order, in one batch.
    pub async fn enqueue_all(&mut self, actions: Vec<Action>) -> crate::store::Result<Vec<OutboxRow>> {
        Ok(self.enqueue_counted(None, &[], actions).await?.unwrap_or_default())
    }

    /// Claim a stanza id (`(sender, id)`), count the messages and queue `actions`, in one batch
    /// (see [`StoreTx::claim_count_enqueue`]); `None`: claimed before, drop the transaction.
    pub async fn enqueue_counted(
        &mut self,
        claim: Option<(&str, &str)>,
        touches: &[crate::core::journal::ChatTouch],
        actions: Vec<Action>,
    ) -> crate::store::Result<Option<Vec<OutboxRow>>> {
        let Some(ids) = self.claim_count_enqueue(claim, touches, &actions).await? else { return Ok(None) };
        let now = now_ms();
        Ok(Some(
            ids.into_iter()
                .zip(actions)
                .map(|(id, action)| OutboxRow { id, action, attempts: 0, next_attempt_at: 0, created_at: now })
                .collect(),
        ))
    }
}

impl Bridge {
    /// Hand committed rows to their lanes, starting workers as needed.
    pub fn dispatch(self: &Arc<Self>, rows: Vec<OutboxRow>) {
        let Ok(mut running) = self.lanes.running.lock() else {
            return;
        };
        for row in rows {
            let lane = row.action.lane().to_string();
            match running.get_mut(&lane) {
                Some(state) => state.queue.push_back(row),
                None => {
                    running.insert(lane.clone(), LaneState { queue: VecDeque::from([row]), reload: false });
                    let bridge = self.clone();
                    tokio::spawn(async move { bridge.run_lane(lane).await });
                }
            }
        }
    }

    /// Keep what the action `id` became, to record when its delivery completes (one round trip
    /// for both). Only for a delivery that then returns `Ok`.
    pub(in crate::bridge) fn record_on_completion(&self, id: i64, record: MappedMessage) {
        if let Ok(mut records) = self.lanes.records.lock() {
            records.insert(id, record);
        }
    }

    /// Remove a delivered action, with what it became. A record the database refuses (not a
    /// passing failure) is given up with a warning rather than delivering the action again.
    async fn complete_delivered(&self, id: i64, record: Option<&MappedMessage>) -> crate::store::Result<()> {
        let Some(record) = record else { return self.store.complete(id).await };
        match self.store.complete_mapped(id, record).await {
            Err(e) if !e.is_transient() => {
                tracing::warn!(id, error = %e, "cannot record a bridged message");
                self.store.complete(id).await
            }
            done => done,
        }
    }

    /// How many actions were delivered since the start.
    pub fn deliveries(&self) -> u64 {
        self.lanes.delivered.load(Ordering::Relaxed)
    }

    /// Start a worker that reads `lane` from the database, unless one runs (it has the rows).
    fn restart_lane(self: &Arc<Self>, lane: String) {
        let Ok(mut running) = self.lanes.running.lock() else {
            return;
        };
        if running.contains_key(&lane) {
            return;
        }
        running.insert(lane.clone(), LaneState { queue: VecDeque::new(), reload: true });
        drop(running);
        let bridge = self.clone();
        tokio::spawn(async move { bridge.run_lane(lane).await });
    }

    /// Start workers for lanes with queued work in the database.
    pub async fn sweep(self: &Arc<Self>) {
        match self.store.pending_lanes().await {
            Ok(lanes) => lanes.into_iter().for_each(|l| self.restart_lane(l)),
            Err(e) => tracing::warn!(error = %e, "outbox sweep failed"),
        }
    }

    /// Sweep every few seconds until the process ends; prune old de-duplication records
    /// (kept for a week) once an hour.
    pub async fn sweep_forever(self: Arc<Self>) {
        const KEEP_DEDUPE_MS: i64 = 7 * 24 * 3600 * 1000;
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        let mut ticks: u64 = 0;
        let mut outbox_kinds = std::collections::BTreeSet::new();
        loop {
            tick.tick().await;
            self.sweep().await;
            self.record_outbox(&mut outbox_kinds).await;
            if ticks.is_multiple_of(720) {
                match self.store.prune_dedupe(now_ms() - KEEP_DEDUPE_MS).await {
                    Ok(n) if n > 0 => tracing::info!(removed = n, "pruned old de-duplication records"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "pruning de-duplication records failed"),
                }
            }
            ticks += 1;
        }
    }

    /// The lane's next row, reloading from the database when asked to; `None` ends the worker
    /// (and forgets the lane, atomically with finding it empty).
    async fn next_row(&self, lane: &str) -> Option<OutboxRow> {
        loop {
            let reload = {
                let Ok(mut running) = self.lanes.running.lock() else { return None };
                let state = running.get_mut(lane)?;
                if !state.reload {
                    match state.queue.front() {
                        Some(row) => return Some(row.clone()),
                        None => {
                            running.remove(lane);
                            return None;
                        }
                    }
                }
                state.reload = false;
                true
            };
            if reload {
                match self.store.lane_rows(lane, RELOAD_BATCH).await {
                    Ok(rows) => {
                        let Ok(mut running) = self.lanes.running.lock() else { return None };
                        let state = running.get_mut(lane)?;
                        let last = rows.last().map_or(i64::MIN, |r| r.id);
                        // Rows dispatched meanwhile are either in `rows` (committed before the
                        // read) or newer than all of them.
                        let newer: Vec<_> = state.queue.drain(..).filter(|r| r.id > last).collect();
                        state.reload = i64::try_from(rows.len()).unwrap_or(i64::MAX) >= RELOAD_BATCH;
                        state.queue = rows.into_iter().chain(newer).collect();
                    }
                    Err(e) => {
                        tracing::warn!(lane, error = %e, "outbox read failed; retrying");
                        if let Ok(mut running) = self.lanes.running.lock()
                            && let Some(state) = running.get_mut(lane)
                        {
                            state.reload = true;
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }
    }

    /// The head row was delivered or given up: drop it from the lane's queue.
    fn pop_head(&self, lane: &str, id: i64) {
        if let Ok(mut running) = self.lanes.running.lock()
            && let Some(state) = running.get_mut(lane)
            && state.queue.front().is_some_and(|r| r.id == id)
        {
            state.queue.pop_front();
        }
    }

    fn set_head_attempts(&self, lane: &str, id: i64, attempts: u32, at: i64) {
        if let Ok(mut running) = self.lanes.running.lock()
            && let Some(head) = running.get_mut(lane).and_then(|s| s.queue.front_mut())
            && head.id == id
        {
            head.attempts = attempts;
            head.next_attempt_at = at;
        }
    }

    async fn run_lane(self: Arc<Self>, lane: String) {
        while let Some(row) = self.next_row(&lane).await {
            let wait = row.next_attempt_at - now_ms();
            if wait > 0 {
                tokio::time::sleep(Duration::from_millis(wait.unsigned_abs())).await;
            }
            let attempts = row.attempts.saturating_add(1);
            let result = self.deliver(row.id, &row.action).await;
            self.note_carrier_outcome(&row.action, &result);
            let outcome = match after_attempt(attempts, result.clone()) {
                Next::Done => {
                    // Delivered: recording it must not fail into a second delivery, so it is
                    // retried on its own until the database takes it.
                    let record = self.lanes.records.lock().ok().and_then(|mut r| r.remove(&row.id));
                    until_stored(&lane, row.id, || self.complete_delivered(row.id, record.as_ref())).await;
                    self.pop_head(&lane, row.id);
                    self.lanes.delivered.fetch_add(1, Ordering::Relaxed);
                    let waited = now_ms().saturating_sub(row.created_at).max(0);
                    metrics::delivered(&row.action.lane(), Duration::from_millis(waited.unsigned_abs()));
                    Ok(())
                }
                Next::RetryAfter(delay) => {
                    let error = result.err().map(|e| e.to_string()).unwrap_or_default();
                    tracing::info!(lane, id = row.id, attempts, ?delay, error, "delivery failed; will retry");
                    metrics::delivery_retry(&row.action.lane());
                    match &row.action {
                        Action::Mail { .. } => metrics::mail_retry(),
                        Action::SmsSend { .. } => metrics::sms_failed(),
                        _ => {}
                    }
                    let at = now_ms().saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
                    self.set_head_attempts(&lane, row.id, attempts, at);
                    self.store.retry_later(row.id, attempts, at, &error).await
                }
                Next::GiveUp(reason) => {
                    tracing::warn!(lane, id = row.id, reason, "delivery refused; telling the sender");
                    metrics::given_up(&row.action.lane());
                    if matches!(row.action, Action::SmsSend { .. }) {
                        metrics::sms_failed();
                    }
                    until_stored(&lane, row.id, || self.give_up(row.id, &row.action, &reason)).await;
                    self.pop_head(&lane, row.id);
                    Ok(())
                }
            };
            if let Err(e) = outcome {
                // Recording the retry failed: the row stays at the head and is attempted again,
                // which is what the retry would have done anyway.
                tracing::warn!(lane, id = row.id, error = %e, "outbox update failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }

    /// A mail or SMS attempt tells how its server or gateway is (a refusal of the message itself
    /// means the carrier answered).
    fn note_carrier_outcome(&self, action: &Action, result: &Result<(), DeliveryError>) {
        let carrier = match action {
            Action::Mail { .. } => Carrier::Smtp,
            Action::SmsSend { .. } => Carrier::Sms,
            _ => return,
        };
        let outcome = match result {
            Err(DeliveryError::Transient(e)) => Err(e.clone()),
            _ => Ok(()),
        };
        self.note_carrier(carrier, outcome);
    }

    /// Replace a refused action by a notice to its sender, atomically.
    async fn give_up(self: &Arc<Self>, id: i64, action: &Action, reason: &str) -> crate::store::Result<()> {
        let notice = match action {
            Action::MatrixDirect { from, to, stanza_id, text, .. } => Some(Action::XmppBounce {
                from: to.clone(),
                to: from.clone(),
                stanza_id: stanza_id.clone(),
                refusal: RefusalKind::NotFound,
                reason: format!("Your message could not be delivered to {to} on Matrix: {reason}"),
                quote: Some(quote(&text.body)),
            }),
            Action::SmsSend { to, origin, .. } => self.sms_failure_notice(to, origin.as_ref(), reason),
            Action::Mail { to, message_id, .. } => self.mail_refused_notice(to, message_id, reason),
            Action::MatrixReactions { target: XmppTarget::Dm { from, to, .. }, stanza_id, .. }
            | Action::MatrixRetract { target: XmppTarget::Dm { from, to, .. }, stanza_id, .. } => {
                Some(Action::XmppBounce {
                    from: to.clone(),
                    to: from.clone(),
                    stanza_id: stanza_id.clone(),
                    refusal: RefusalKind::NotFound,
                    reason: format!("This did not reach {to} on Matrix: {reason}"),
                    quote: None,
                })
            }
            // What a Matrix user did that XMPP did not take: a notice in their direct chat, from
            // the XMPP user's ghost (the bot is not in it).
            Action::XmppChat { to, event: Some((room, _)), .. }
            | Action::XmppReactions { to, room, .. }
            | Action::XmppRetract { to, room, .. } => Some(Action::MatrixPost {
                room: room.clone(),
                user: self.map.ghost_for(to),
                text: crate::core::action::Text::notice(format!("This did not reach {to} on XMPP: {reason}")),
                nick: None,
            }),
            // What an XMPP occupant of a hosted room did that Matrix did not take: a message
            // from the bridge, as the room's participants must not see it.
            Action::MatrixRoomSay { room, user, text, .. } => {
                let body = format!(
                    "Your message in {} did not reach Matrix: {reason}\nYour message: “{}”",
                    self.muc_address(room).await?,
                    quote(&text.body)
                );
                self.map
                    .jid_for_ghost(user)
                    .and_then(Result::ok)
                    .map(|to| Action::XmppNotice { to, text: crate::core::action::Text::notice(body) })
            }
            Action::MatrixReactions { target: XmppTarget::Room { room, .. }, user, .. }
            | Action::MatrixRetract { target: XmppTarget::Room { room, .. }, user, .. } => {
                let body = format!("This did not reach Matrix in {}: {reason}", self.muc_address(room).await?);
                self.map
                    .jid_for_ghost(user)
                    .and_then(Result::ok)
                    .map(|to| Action::XmppNotice { to, text: crate::core::action::Text::notice(body) })
            }
            // A Matrix user's message that the remote MUC's server did not take (an error the
            // MUC answers with later is reported by `linked_bounce`).
            Action::LinkedMucMessage { room, muc, from, .. }
            | Action::LinkedMucReactions { room, muc, from, .. }
            | Action::LinkedMucRetract { room, muc, from, .. } => Some(Action::MatrixPost {
                room: room.clone(),
                user: self.map.bot(),
                text: crate::core::action::Text::notice(format!("{from}: your message did not reach {muc}: {reason}")),
                nick: None,
            }),
            // Joins, notices and bounces have nobody left to tell.
            _ => None,
        };
        let mut tx = self.store.begin().await?;
        tx.complete(id).await?;
        let row = match notice {
            Some(notice) => Some(tx.enqueue_row(notice).await?),
            None => None,
        };
        tx.commit().await?;
        self.dispatch(row.into_iter().collect());
        Ok(())
    }
}

impl Bridge {
    /// How XMPP users know a hosted room: its MUC address (its room id if it is gone).
    async fn muc_address(&self, room: &crate::core::ids::RoomId) -> crate::store::Result<String> {
        Ok(match self.hosted_room(room).await? {
            Some(r) => self.muc_of(&r).to_string(),
            None => room.to_string(),
        })
    }
}

/// The start of a refused message, for its sender to know which one it was.
fn quote(body: &str) -> String {
    match body.char_indices().nth(QUOTE_CHARS) {
        Some((end, _)) => format!("{}…", &body[..end]),
        None => body.to_owned(),
    }
}

/// Repeat `write` until it succeeds: the outcome of a delivery that already happened is recorded
/// however long the database is away (a restart, a full disk), and the lane waits meanwhile.
async fn until_stored<F, Fut>(lane: &str, id: i64, mut write: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = crate::store::Result<()>>,
{
    let mut pause = Duration::from_millis(100);
    while let Err(e) = write().await {
        tracing::warn!(lane, id, error = %e, "could not record a delivery; retrying");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}
