//! Outbox lanes: one worker per lane with queued work, delivering the lane's actions strictly
//! in order; lanes run concurrently. A periodic sweep restarts lanes after a restart or a
//! missed wake-up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::bridge::Bridge;
use crate::core::action::{Action, Refusal};
use crate::core::outbox::{Next, after_attempt};
use crate::store::now_ms;

/// Which lanes have a running worker, and whether it must look again before it stops.
#[derive(Default)]
pub struct Lanes {
    running: Mutex<HashMap<String, bool>>,
}

impl Bridge {
    /// Make sure a worker runs for `lane`.
    pub fn kick(self: &Arc<Self>, lane: String) {
        let Ok(mut running) = self.lanes.running.lock() else {
            return;
        };
        if let Some(recheck) = running.get_mut(&lane) {
            *recheck = true;
            return;
        }
        running.insert(lane.clone(), false);
        drop(running);
        let bridge = self.clone();
        tokio::spawn(async move { bridge.run_lane(lane).await });
    }

    /// Start workers for every lane with queued work.
    pub async fn sweep(self: &Arc<Self>) {
        match self.store.pending_lanes().await {
            Ok(lanes) => lanes.into_iter().for_each(|l| self.kick(l)),
            Err(e) => tracing::warn!(error = %e, "outbox sweep failed"),
        }
    }

    /// Sweep every few seconds until the process ends; prune old de-duplication records
    /// (kept for a week) once an hour.
    pub async fn sweep_forever(self: Arc<Self>) {
        const KEEP_DEDUPE_MS: i64 = 7 * 24 * 3600 * 1000;
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        let mut ticks: u64 = 0;
        loop {
            tick.tick().await;
            self.sweep().await;
            if ticks.is_multiple_of(720) {
                match self.store.prune_dedupe(now_ms() - KEEP_DEDUPE_MS).await {
                    Ok(n) if n > 0 => {
                        tracing::info!(removed = n, "pruned old de-duplication records")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "pruning de-duplication records failed"),
                }
            }
            ticks += 1;
        }
    }

    /// Stop the lane's worker unless work arrived meanwhile. `true` if it must go on.
    fn lane_idle(&self, lane: &str) -> bool {
        let Ok(mut running) = self.lanes.running.lock() else {
            return false;
        };
        match running.get_mut(lane) {
            Some(recheck) if *recheck => {
                *recheck = false;
                true
            }
            _ => {
                running.remove(lane);
                false
            }
        }
    }

    async fn run_lane(self: Arc<Self>, lane: String) {
        loop {
            let row = match self.store.head_of_lane(&lane).await {
                Ok(Some(row)) => row,
                Ok(None) => {
                    if self.lane_idle(&lane) {
                        continue;
                    }
                    return;
                }
                Err(e) => {
                    tracing::warn!(lane, error = %e, "outbox read failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let wait = row.next_attempt_at - now_ms();
            if wait > 0 {
                tokio::time::sleep(Duration::from_millis(wait.unsigned_abs())).await;
            }
            let attempts = row.attempts.saturating_add(1);
            let result = self.deliver(row.id, &row.action).await;
            let outcome = match after_attempt(attempts, result.clone()) {
                Next::Done => self.store.complete(row.id).await,
                Next::RetryAfter(delay) => {
                    let error = result.err().map(|e| e.to_string()).unwrap_or_default();
                    tracing::info!(
                        lane,
                        id = row.id,
                        attempts,
                        ?delay,
                        error,
                        "delivery failed; will retry"
                    );
                    let at = now_ms()
                        .saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
                    self.store.retry_later(row.id, attempts, at, &error).await
                }
                Next::GiveUp(reason) => {
                    tracing::warn!(
                        lane,
                        id = row.id,
                        reason,
                        "delivery refused; telling the sender"
                    );
                    self.give_up(row.id, &row.action, &reason).await
                }
            };
            if let Err(e) = outcome {
                tracing::warn!(lane, id = row.id, error = %e, "outbox update failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }

    /// Replace a refused action by a notice to its sender, atomically.
    async fn give_up(
        self: &Arc<Self>,
        id: i64,
        action: &Action,
        reason: &str,
    ) -> crate::store::Result<()> {
        let notice = match action {
            Action::MatrixDirect {
                from,
                to,
                stanza_id,
                ..
            } => Some(Action::XmppBounce {
                from: to.clone(),
                to: from.clone(),
                stanza_id: stanza_id.clone(),
                refusal: Refusal::NotFound,
                reason: format!("Your message could not be delivered to {to} on Matrix: {reason}"),
            }),
            // Joins, notices and bounces have nobody left to tell.
            _ => None,
        };
        let mut tx = self.store.begin().await?;
        tx.complete(id).await?;
        if let Some(notice) = &notice {
            tx.enqueue(notice).await?;
        }
        tx.commit().await?;
        if let Some(notice) = notice {
            self.kick(notice.lane());
        }
        Ok(())
    }
}
