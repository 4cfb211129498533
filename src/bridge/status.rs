//! The bridge's view of what it depends on: the homeserver and XMPP links (watched, with a
//! notice in the control room when one is lost and when it is back), the SMTP server and the
//! SMS gateway (as their last delivery found them), for `/health` and the metrics; and the
//! bridge-info state events (MSC2346) that tell Matrix clients a room is bridged.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::core::action::Action;
use crate::core::bridge_info::BridgeInfo;
use crate::core::ids::{BareJid, MatrixUserId, RoomId};
use crate::core::link_watch::{Change, LinkWatch};
use crate::core::metrics::{self, Link};
use crate::http::DependencyState;
use crate::store::now_ms;

use super::Bridge;

/// How often the links are checked.
const XMPP_EVERY: Duration = Duration::from_secs(1);
const HOMESERVER_EVERY: Duration = Duration::from_secs(2);
/// A homeserver check that takes longer counts as failed.
const HOMESERVER_TIMEOUT: Duration = Duration::from_secs(3);

/// What the bridge last learnt about each dependency.
pub(crate) struct Status {
    state: Mutex<State>,
}

struct State {
    homeserver: LinkWatch,
    homeserver_error: Option<String>,
    xmpp: LinkWatch,
    /// The last mail delivery's outcome (`None`: none yet).
    smtp: Option<Result<(), String>>,
    /// The last SMS hand-over's outcome.
    sms: Option<Result<(), String>>,
}

impl Default for Status {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                // One slow answer from the homeserver is no outage; a lost component connection is.
                homeserver: LinkWatch::new(2),
                homeserver_error: None,
                xmpp: LinkWatch::new(1),
                smtp: None,
                sms: None,
            }),
        }
    }
}

/// A dependency that delivers outbox actions, whose state is its last delivery's outcome.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Carrier {
    Smtp,
    Sms,
}

impl Bridge {
    /// Record how a delivery through `carrier` went (`Err`: it failed for now, with why).
    pub(crate) fn note_carrier(&self, carrier: Carrier, outcome: Result<(), String>) {
        if let Ok(mut s) = self.status.state.lock() {
            match carrier {
                Carrier::Smtp => s.smtp = Some(outcome),
                Carrier::Sms => s.sms = Some(outcome),
            }
        }
    }

    /// Each dependency but the database (which `/health` asks itself), by name.
    pub(crate) fn dependencies(&self) -> Vec<(&'static str, DependencyState)> {
        let Ok(s) = self.status.state.lock() else { return Vec::new() };
        let carrier = |on: bool, last: &Option<Result<(), String>>| match (on, last) {
            (false, _) => DependencyState::Off,
            (true, None) => DependencyState::Unknown,
            (true, Some(Ok(()))) => DependencyState::Up,
            (true, Some(Err(e))) => DependencyState::Down(e.clone()),
        };
        let homeserver = if s.homeserver.is_up() {
            DependencyState::Up
        } else {
            DependencyState::Down(s.homeserver_error.clone().unwrap_or_else(|| "not reached yet".into()))
        };
        let xmpp = if self.xmpp.is_connected() {
            DependencyState::Up
        } else {
            DependencyState::Down(format!("no component connection to {}", self.config.xmpp.server))
        };
        vec![
            ("homeserver", homeserver),
            ("xmpp", xmpp),
            ("smtp", carrier(self.mailer.get().is_some(), &s.smtp)),
            ("sms_gateway", carrier(self.sms.get().is_some(), &s.sms)),
        ]
    }

    /// Check the component connection every second until the process ends.
    pub async fn watch_xmpp_forever(self: Arc<Self>) {
        loop {
            let up = self.xmpp.is_connected();
            let change = self.status.state.lock().ok().and_then(|mut s| s.xmpp.observe(up, now_ms()));
            if let Some(change) = change {
                self.tell_admins(Link::Xmpp, change).await;
            }
            tokio::time::sleep(XMPP_EVERY).await;
        }
    }

    /// Check that the homeserver answers every few seconds until the process ends.
    pub async fn watch_homeserver_forever(self: Arc<Self>) {
        loop {
            let outcome = match tokio::time::timeout(HOMESERVER_TIMEOUT, self.matrix.reachable()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {} s", HOMESERVER_TIMEOUT.as_secs())),
            };
            let change = self.status.state.lock().ok().and_then(|mut s| {
                let change = s.homeserver.observe(outcome.is_ok(), now_ms());
                s.homeserver_error = outcome.err();
                metrics::link_up(Link::Homeserver, s.homeserver.is_up());
                change
            });
            if let Some(change) = change {
                if matches!(change, Change::Back { .. }) {
                    metrics::reconnected(Link::Homeserver);
                }
                self.tell_admins(Link::Homeserver, change).await;
            }
            tokio::time::sleep(HOMESERVER_EVERY).await;
        }
    }

    /// A bridge-state notice in the control room. One about the homeserver waits in the outbox
    /// until it is back, which is when the admins can read it.
    async fn tell_admins(self: &Arc<Self>, link: Link, change: Change) {
        let (name, peer) = match link {
            Link::Homeserver => ("homeserver", self.config.homeserver.url.as_str()),
            Link::Xmpp => ("XMPP server", self.config.xmpp.server.as_str()),
        };
        let body = match change {
            Change::Lost => {
                tracing::warn!(peer, "bridge state: the {name} is unreachable");
                format!(
                    "⚠️ Bridge state: the {name} ({peer}) is unreachable since {} UTC. Messages are kept and \
                     delivered when it is back.",
                    clock(now_ms())
                )
            }
            Change::Back { after } => {
                tracing::info!(peer, away_secs = after.as_secs(), "bridge state: the {name} is back");
                format!("✅ Bridge state: the {name} ({peer}) is back after {} s.", after.as_secs().max(1))
            }
        };
        let Some(room) = self.control_room() else {
            return tracing::info!("no control room yet for a bridge-state notice");
        };
        let notice = Action::MatrixNotice { room, body, html: None, reply_to: None };
        if let Err(e) = self.queue_all(vec![notice]).await {
            tracing::warn!(error = %e, "cannot queue a bridge-state notice");
        }
    }

    /// Tell Matrix clients that `room` is bridged to `muc` (MSC2346). Best effort: a room
    /// without it works the same, so a failure is logged, not retried.
    pub(in crate::bridge) async fn announce_bridge(
        &self,
        room: &RoomId,
        muc: BareJid,
        creator: MatrixUserId,
        name: Option<String>,
    ) {
        let info = BridgeInfo { bridgebot: self.map.bot(), creator, channel: muc, channel_name: name };
        if let Err(e) = self.matrix.set_bridge_info(room, &self.config.appservice.id, &info).await {
            tracing::warn!(%room, error = %e, "cannot set the room's bridge info (m.bridge)");
        }
    }

    /// Refresh the outbox gauges: per lane kind, the actions waiting and the oldest's age.
    pub(in crate::bridge) async fn record_outbox(&self, kinds_seen: &mut std::collections::BTreeSet<String>) {
        let Ok(lanes) = self.store.outbox_lanes().await else { return };
        let now = now_ms();
        let mut per_kind: std::collections::BTreeMap<String, (u64, i64)> = std::collections::BTreeMap::new();
        for (lane, depth, oldest) in lanes {
            let entry = per_kind.entry(metrics::lane_key_kind(&lane).to_owned()).or_insert((0, i64::MAX));
            entry.0 += depth.max(0).unsigned_abs();
            entry.1 = entry.1.min(oldest);
        }
        for gone in kinds_seen.iter().filter(|k| !per_kind.contains_key(*k)) {
            metrics::outbox_empty(gone);
        }
        *kinds_seen = per_kind.keys().cloned().collect();
        let gauges: Vec<_> = per_kind
            .into_iter()
            .map(|(kind, (depth, oldest))| {
                (kind, depth, Duration::from_millis(now.saturating_sub(oldest).max(0).unsigned_abs()))
            })
            .collect();
        metrics::outbox(&gauges);
    }
}

/// `HH:MM:SS` of a time in ms since the epoch (UTC).
fn clock(ms: i64) -> String {
    let secs = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}
