//! Presence both ways. Matrix users' presence (pushed as ephemeral events) goes to every XMPP
//! subscriber of their address; XMPP users' presence (broadcast to the addresses they share it
//! with) becomes their ghost's presence. Updates are coalesced per person and sent only on
//! change. Presence is state, not a message: it is sent directly, not through the outbox, and
//! re-announced from the last known state after a reconnect or on a probe.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::bridge::Bridge;
use crate::core::ids::{BareJid, MatrixUserId};
use crate::core::presence::{MatrixState, Presence, State, XmppPresence};
use crate::core::watch::Party;
use crate::xmpp::outbound;

/// Coalescing window for presence floods.
const WINDOW: Duration = Duration::from_millis(300);

/// How available a state is, to pick one among an XMPP user's resources.
fn rank(state: State) -> u8 {
    match state {
        State::Available => 5,
        State::Busy => 4,
        State::DoNotDisturb => 3,
        State::Away => 2,
        State::Inactive => 1,
        State::Offline => 0,
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
                    bridge.fire_watches(Party::Matrix(user), before.as_ref(), &presence).await;
                }
            });
        }
    }

    async fn announce_matrix_presence(&self, user: &MatrixUserId, presence: &Presence) {
        tracing::debug!(%user, ?presence, "Matrix presence to XMPP subscribers");
        if let Err(e) = self.store.save_matrix_presence(user, presence).await {
            tracing::warn!(%user, error = %e, "cannot store presence");
        }
        let contact = self.map.jid_for_matrix(user);
        let subscribers = match self.store.subscribers(&contact.to_string()).await {
            Ok(s) => s,
            Err(e) => return tracing::warn!(%user, error = %e, "cannot read subscribers"),
        };
        for subscriber in subscribers {
            let Ok(to) = BareJid::parse(&subscriber) else { continue };
            if let Ok(stanza) = outbound::presence_between(&contact, &to, presence) {
                self.xmpp.send_reply(stanza).await;
            }
        }
        self.show_presence_in_rooms(user, presence).await;
    }

    /// What to tell an XMPP subscriber about a Matrix user: the last known presence, else what
    /// the homeserver says (asked as the subscriber's ghost, which shares a room with them),
    /// else offline.
    pub async fn presence_of_matrix_user(&self, user: &MatrixUserId, asking: &BareJid) -> Presence {
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
            match presence {
                Some(p) if p.available => {
                    resources.insert(resource, Presence::from_xmpp(&p));
                }
                _ => {
                    resources.remove(&resource);
                }
            }
            let best = resources.values().max_by_key(|p| rank(p.state)).cloned();
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
                    bridge.fire_watches(Party::Xmpp(from), before.as_ref(), &presence).await;
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
            for (jid, presence) in self.presence.xmpp.all_sent() {
                if presence.state != State::Offline {
                    self.set_ghost_presence(&jid, &presence).await;
                }
            }
        }
    }

    /// Synapse marks a user online whenever they send, type or mark something read; a ghost
    /// acts for someone who may be away, so their presence is set again after it acted.
    pub(super) async fn reassert_ghost_presence(&self, jid: &BareJid) {
        let Some(presence) = self.presence.xmpp.last(jid) else { return };
        let (state, status_msg) = presence.to_matrix();
        if state != MatrixState::Online {
            let ghost = self.map.ghost_for(jid);
            if let Err(e) = self.matrix.set_presence(&ghost, state, status_msg).await {
                tracing::debug!(%ghost, error = %e, "cannot restore ghost presence");
            }
        }
    }

    async fn set_ghost_presence(&self, jid: &BareJid, presence: &Presence) {
        let ghost = self.map.ghost_for(jid);
        tracing::debug!(%ghost, ?presence, "setting ghost presence");
        if let Err(e) = self.ensure_ghost(&ghost, &jid.to_string()).await {
            return tracing::warn!(%ghost, error = %e, "cannot register ghost for presence");
        }
        let (state, status_msg) = presence.to_matrix();
        if let Err(e) = self.matrix.set_presence(&ghost, state, status_msg).await {
            tracing::warn!(%ghost, error = %e, "cannot set ghost presence");
        }
    }
}
