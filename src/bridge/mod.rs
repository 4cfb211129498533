//! The bridge's services: it takes what the adapters report, applies the rules, writes the
//! resulting actions to the outbox (together with the inbound de-duplication record, in one
//! transaction), and runs the outbox lanes that carry the actions out.

mod admin;
pub mod avatars;
mod calls;
mod content;
mod deliver;
mod fetch;
mod lanes;
mod markers;
mod matrix_in;
pub mod muc;
pub mod portal;
mod presence;
mod room_delivery;
mod room_markers;
mod rooms;
mod sms;
mod user_commands;
mod xmpp_in;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::core::coalesce::Coalescer;
use crate::core::ids::{BareJid, MatrixUserId, RoomId};
use crate::core::mapping::IdentityMap;
use crate::core::presence::Presence;
use crate::matrix::client::MatrixClient;
use crate::store::{DmPortal, Store};
use crate::xmpp::connection::XmppSender;

pub use lanes::Lanes;

pub struct Bridge {
    pub config: Arc<Config>,
    pub map: IdentityMap,
    pub store: Store,
    pub matrix: MatrixClient,
    pub xmpp: XmppSender,
    pub hs_token: String,
    lanes: Lanes,
    /// Matrix users' display names as last seen in membership events (for XMPP nicks).
    displaynames: Mutex<HashMap<MatrixUserId, String>>,
    /// Ghosts known to be registered, with the display name last set (saves a query per message).
    ghosts: Mutex<HashMap<MatrixUserId, Option<String>>>,
    /// Current direct chat per pair, with a generation that a membership change bumps
    /// (clearing the map), so a lookup that raced with the change is not cached.
    dms: Mutex<DmCache>,
    presence: PresenceState,
    markers: MarkerState,
    /// Bridged rooms by ID (`None`: known not to be one).
    rooms: Mutex<HashMap<RoomId, Option<crate::store::BridgedRoom>>>,
    /// Portal rooms of MUCs on XMPP servers, and who is in those MUCs.
    portals: Mutex<portal::PortalIndex>,
    /// Held while a presence subscription is decided and recorded (its caps are counted in the
    /// database, and stanzas of different conversations are handled concurrently).
    pub consent_gate: tokio::sync::Mutex<()>,
    /// New portal rooms (created on alias lookups anyone can make): a burst, then a few an hour.
    portal_budget: Mutex<crate::core::budget::Budget>,
    avatars: Mutex<avatars::AvatarState>,
    /// The admins' control room, once found or created.
    control: Mutex<Option<RoomId>>,
    started: std::time::Instant,
    /// Gaps in the homeserver's transaction ids shortly after a recovery (see `core::txn_gaps`).
    pub strands: Mutex<crate::core::txn_gaps::StrandGuard>,
    /// This database's id, part of every txnId and stanza id (unique across database moves).
    instance: String,
    /// SMTP transport of missed-call notices (set at start when `missed_calls.mail` is configured).
    pub mailer: std::sync::OnceLock<crate::calls::mailer::Mailer>,
    /// The SMS gateway and its settings (set at start when `sms` is configured).
    pub sms: std::sync::OnceLock<Arc<crate::sms::SmsService>>,
    /// The missed-call module, when configured (its settings change through admin commands).
    pub calls: std::sync::OnceLock<Arc<crate::calls::service::CallsService>>,
    /// The config as last (re)loaded: what `reload` can change without a restart is read here.
    live_config: std::sync::RwLock<Arc<Config>>,
    /// Files admins posted in the control room lately (for `contacts import`), newest last.
    uploads: Mutex<std::collections::VecDeque<(MatrixUserId, crate::core::inbound::FileRef)>>,
    /// A user command changed a missed-call choice: refresh the module's settings after commit.
    calls_dirty: std::sync::atomic::AtomicBool,
}

/// Presence bookkeeping: coalescing per person, each XMPP user's resources, and the rate at
/// which presence may make new ghosts, per remote domain (see `presence.rs`).
struct PresenceState {
    matrix: Coalescer<MatrixUserId, Presence>,
    xmpp: Coalescer<BareJid, Presence>,
    xmpp_resources: Mutex<HashMap<BareJid, HashMap<String, Presence>>>,
    ghost_budgets: Mutex<crate::core::budget::Budgets>,
}

/// Typing and read-marker bookkeeping, per room.
#[derive(Default)]
struct MarkerState {
    /// Whether the Matrix side of a DM was typing at the last `m.typing`.
    typing: Mutex<HashMap<RoomId, bool>>,
    /// Rooms where a ghost's typing notification is on.
    ghost_typing: Mutex<HashSet<RoomId>>,
    /// The last stanza id marked displayed per room.
    displayed: Mutex<HashMap<RoomId, String>>,
    /// Who was typing in each hosted room at the last `m.typing`.
    room_typing: Mutex<HashMap<RoomId, HashSet<MatrixUserId>>>,
}

/// Cache generation and the current direct chat per (XMPP user, Matrix user).
type DmCache = (u64, HashMap<(BareJid, MatrixUserId), DmPortal>);

impl Bridge {
    pub fn new(
        config: Arc<Config>,
        store: Store,
        matrix: MatrixClient,
        xmpp: XmppSender,
        hs_token: String,
        instance: String,
    ) -> Arc<Self> {
        let map = IdentityMap {
            homeserver: config.homeserver.domain.clone(),
            component: config.xmpp.component_jid.clone(),
            ghost_prefix: config.appservice.ghost_prefix.clone(),
            bot_localpart: config.appservice.bot_localpart.clone(),
        };
        Arc::new(Self {
            live_config: std::sync::RwLock::new(config.clone()),
            config,
            map,
            store,
            matrix,
            xmpp,
            hs_token,
            lanes: Lanes::default(),
            displaynames: Mutex::new(HashMap::new()),
            ghosts: Mutex::new(HashMap::new()),
            dms: Mutex::new((0, HashMap::new())),
            presence: PresenceState::default(),
            markers: MarkerState::default(),
            rooms: Mutex::new(HashMap::new()),
            portals: Mutex::new(portal::PortalIndex::default()),
            portal_budget: Mutex::new(crate::core::budget::Budget::per_hour(20, 60)),
            consent_gate: tokio::sync::Mutex::new(()),
            control: Mutex::new(None),
            avatars: Mutex::new(avatars::AvatarState::default()),
            started: admin::started(),
            strands: Mutex::new(crate::core::txn_gaps::StrandGuard::armed(std::time::Instant::now())),
            instance,
            mailer: std::sync::OnceLock::new(),
            sms: std::sync::OnceLock::new(),
            calls: std::sync::OnceLock::new(),
            uploads: Mutex::new(std::collections::VecDeque::new()),
            calls_dirty: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// A transaction was answered with an error: the homeserver will recover, which can strand.
    pub fn note_failed_transaction(&self) {
        if let Ok(mut guard) = self.strands.lock() {
            guard.arm(std::time::Instant::now());
        }
    }

    /// The Matrix txnId of outbox action `id` (a retry reuses it; the homeserver drops repeats).
    pub(crate) fn txn_id(&self, id: i64) -> String {
        format!("ucb{}-{id}", self.instance)
    }

    /// The stanza id of outbox action `id` (repeated as XEP-0359 origin-id).
    pub(crate) fn stanza_id(&self, id: i64) -> String {
        format!("ucb-{}-{id}", self.instance)
    }

    /// Queue actions in one transaction and start their lanes.
    async fn queue_all(self: &Arc<Self>, actions: Vec<crate::core::action::Action>) -> crate::store::Result<()> {
        if actions.is_empty() {
            return Ok(());
        }
        let mut tx = self.store.begin().await?;
        let rows = tx.enqueue_all(actions).await?;
        tx.commit().await?;
        self.dispatch(rows);
        Ok(())
    }

    fn remember_displayname(&self, user: &MatrixUserId, name: Option<&str>) {
        if let (Some(name), Ok(mut names)) = (name, self.displaynames.lock()) {
            names.insert(user.clone(), name.to_owned());
        }
    }

    /// The display name last seen, if any; `Some(None)` means "known to have none".
    fn known_displayname(&self, user: &MatrixUserId) -> Option<Option<String>> {
        let names = self.displaynames.lock().ok()?;
        names.get(user).map(|n| Some(n.clone()).filter(|n| !n.is_empty()))
    }

    fn displayname(&self, user: &MatrixUserId) -> Option<String> {
        self.known_displayname(user).flatten()
    }

    fn cached_ghost(&self, ghost: &MatrixUserId) -> Option<Option<String>> {
        self.ghosts.lock().ok().and_then(|g| g.get(ghost).cloned())
    }

    fn cache_ghost(&self, ghost: &MatrixUserId, displayname: Option<String>) {
        if let Ok(mut g) = self.ghosts.lock() {
            g.insert(ghost.clone(), displayname);
        }
    }

    /// The cached direct chat of a pair, and the cache generation to pass to [`Self::cache_dm`].
    fn cached_dm(&self, xmpp: &BareJid, matrix: &MatrixUserId) -> (u64, Option<DmPortal>) {
        match self.dms.lock() {
            Ok(d) => (d.0, d.1.get(&(xmpp.clone(), matrix.clone())).cloned()),
            Err(_) => (u64::MAX, None),
        }
    }

    /// Cache (or with `None` drop) a pair's direct chat, unless memberships changed since
    /// `generation` was read.
    fn cache_dm(&self, generation: u64, portal: Option<&DmPortal>, xmpp: &BareJid, matrix: &MatrixUserId) {
        if let Ok(mut d) = self.dms.lock() {
            let key = (xmpp.clone(), matrix.clone());
            match portal {
                Some(p) if d.0 == generation => d.1.insert(key, p.clone()),
                _ => d.1.remove(&key),
            };
        }
    }

    /// The pair's current direct chat, from the cache or else the database (then cached), with
    /// the cache generation to pass to [`Self::cache_dm`] for a portal derived from it.
    async fn current_dm(&self, xmpp: &BareJid, matrix: &MatrixUserId) -> crate::store::Result<(u64, Option<DmPortal>)> {
        let (generation, cached) = self.cached_dm(xmpp, matrix);
        if cached.is_some() {
            return Ok((generation, cached));
        }
        let portal = self.store.current_dm(xmpp, matrix).await?;
        if let Some(p) = &portal {
            self.cache_dm(generation, Some(p), xmpp, matrix);
        }
        Ok((generation, portal))
    }

    /// Memberships changed: cached direct chats may be stale.
    fn forget_cached_dms(&self) {
        if let Ok(mut d) = self.dms.lock() {
            d.0 = d.0.wrapping_add(1);
            d.1.clear();
        }
    }
}

/// What a sender is told when their message could not be stored (transient failures were
/// already retried by [`crate::store::retrying`]). A full disk is said as such: it is the
/// administrator's to fix, and the sender's client may try again later.
pub(crate) fn store_refusal(
    e: &crate::store::StoreError,
    what: &'static str,
) -> (crate::core::action::Refusal, String) {
    use crate::core::action::Refusal;
    tracing::error!(error = %e, what, "could not accept");
    if e.is_full() {
        (
            Refusal::Busy,
            "The bridge's storage is full, so it takes nothing new until its administrator frees space; \
             this was not accepted. Please send it again later."
                .to_owned(),
        )
    } else {
        (Refusal::Internal, "The bridge could not store this; please send it again later.".to_owned())
    }
}
