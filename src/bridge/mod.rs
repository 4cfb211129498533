//! The bridge's services: it takes what the adapters report, applies the rules, writes the
//! resulting actions to the outbox (together with the inbound de-duplication record, in one
//! transaction), and runs the outbox lanes that carry the actions out. Each kind of conversation
//! has its folder, holding both directions and its caches: `direct/` (direct chats), `hosted/`
//! (hosted rooms), `linked/` (linked MUCs); the files here are shared by all kinds.

mod admin;
pub mod avatars;
mod bridge_info;
mod calls;
mod chatbot;
mod chatbot_contact;
mod chatbot_images;
mod chatbot_muc;
mod deliver;
pub mod direct;
mod fetch;
mod ghosts;
mod group_chats;
mod grow;
pub mod hosted;
pub mod http_in;
mod journal;
mod journal_export;
mod lanes;
pub mod linked;
mod matrix_in;
mod media;
mod missed_chats;
mod notification_choices;
mod phone;
mod photo_hashes;
mod presence;
mod sizes;
mod sms;
mod status;
mod user_commands;
mod xmpp_in;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::core::coalesce::Coalescer;
use crate::core::ids::{BareJid, MatrixUserId, RoomId};
use crate::core::mapping::IdentityMap;
use crate::core::presence::Presence;
use crate::matrix::out::MatrixOut;
use crate::store::Store;
use crate::xmpp::out::XmppOut;

pub use lanes::Lanes;

pub struct Bridge {
    pub config: Arc<Config>,
    pub map: IdentityMap,
    pub store: Store,
    pub matrix: Arc<dyn MatrixOut>,
    /// Links in texts to Matrix become a sanitised `formatted_body` (see `crate::links`); set
    /// at start (a change of `links` needs a restart, `reload` says so).
    links: crate::links::LinkRules,
    pub xmpp: Arc<dyn XmppOut>,
    pub hs_token: String,
    lanes: Lanes,
    /// Matrix users' display names as last seen in membership events (for XMPP nicks).
    displaynames: Mutex<HashMap<MatrixUserId, String>>,
    /// Ghosts known to be registered, with the display name last set (saves a query per message).
    ghosts: Mutex<HashMap<MatrixUserId, Option<String>>>,
    /// Direct chats' caches: the current chat per pair, typing and read markers.
    direct: direct::State,
    /// Hosted rooms' caches: the rooms by ID, who is typing in them.
    hosted: hosted::State,
    /// Linked MUCs: their rooms, who is in them, and the budget for new ones.
    linked: linked::State,
    presence: PresenceState,
    /// Who is on the phone (presence from the phone, `phone.rs`).
    phone: phone::PhoneState,
    /// Held while a presence subscription is decided and recorded (its caps are counted in the
    /// database, and stanzas of different conversations are handled concurrently).
    pub consent_gate: tokio::sync::Mutex<()>,
    avatars: Mutex<avatars::AvatarState>,
    /// Matrix users' photo hashes for their XMPP presence, per avatar URL.
    photos: Mutex<photo_hashes::PhotoHashes>,
    /// Hosted rooms' avatar hashes (XEP-0486: disco#info shows it).
    room_photos: Mutex<photo_hashes::PhotoHashes<crate::core::ids::RoomId>>,
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
    /// The AI assistant, when configured (`chatbot.rs`).
    pub chatbot: std::sync::OnceLock<Arc<crate::chatbot::Chatbot>>,
    /// The config as last (re)loaded: what `reload` can change without a restart is read here.
    live_config: std::sync::RwLock<Arc<Config>>,
    /// Files admins posted in the control room lately (for `contacts import`), newest last.
    uploads: Mutex<std::collections::VecDeque<(MatrixUserId, crate::core::inbound::FileRef)>>,
    /// A user command changed a missed-call choice: refresh the module's settings after commit.
    calls_dirty: std::sync::atomic::AtomicBool,
    /// Choices offered in command answers (`sms NAME`'s numbers, `start-chat`'s list).
    menus: Mutex<crate::core::menus::Menus>,
    /// What the bridge last learnt about the peers it depends on (`status.rs`).
    status: status::Status,
}

/// Presence bookkeeping: coalescing per person, each XMPP user's resources, and the rate at
/// which presence may make new ghosts, per remote domain (see `presence.rs`).
struct PresenceState {
    matrix: Coalescer<MatrixUserId, Presence>,
    xmpp: Coalescer<BareJid, Presence>,
    xmpp_resources: Mutex<HashMap<BareJid, HashMap<String, Presence>>>,
    ghost_budgets: Mutex<crate::core::budget::Budgets>,
    /// Matrix users with no presence on record (neither here nor in the database), so that
    /// every message to them does not ask the database again (see `known_matrix_state`).
    matrix_unknown: Mutex<std::collections::HashSet<MatrixUserId>>,
}

impl Bridge {
    pub fn new(
        config: Arc<Config>,
        store: Store,
        matrix: Arc<dyn MatrixOut>,
        links: crate::links::LinkRules,
        xmpp: Arc<dyn XmppOut>,
        hs_token: String,
        instance: String,
    ) -> Arc<Self> {
        let map = IdentityMap {
            homeserver: config.homeserver.domain.clone(),
            component: config.xmpp.component_jid.clone(),
            ghost_prefix: config.appservice.ghost_prefix.clone(),
            bot_localpart: config.appservice.bot_localpart.clone(),
            chatbot_localpart: config.chatbot.as_ref().map(|c| c.localpart.clone()),
        };
        Arc::new(Self {
            live_config: std::sync::RwLock::new(config.clone()),
            config,
            map,
            store,
            matrix,
            links,
            xmpp,
            hs_token,
            lanes: Lanes::default(),
            displaynames: Mutex::new(HashMap::new()),
            ghosts: Mutex::new(HashMap::new()),
            direct: direct::State::default(),
            hosted: hosted::State::default(),
            linked: linked::State::default(),
            presence: PresenceState::default(),
            phone: phone::PhoneState::default(),
            consent_gate: tokio::sync::Mutex::new(()),
            control: Mutex::new(None),
            avatars: Mutex::new(avatars::AvatarState::default()),
            photos: Mutex::new(photo_hashes::PhotoHashes::default()),
            room_photos: Mutex::new(photo_hashes::PhotoHashes::default()),
            started: admin::started(),
            strands: Mutex::new(crate::core::txn_gaps::StrandGuard::armed(std::time::Instant::now())),
            instance,
            mailer: std::sync::OnceLock::new(),
            sms: std::sync::OnceLock::new(),
            calls: std::sync::OnceLock::new(),
            chatbot: std::sync::OnceLock::new(),
            uploads: Mutex::new(std::collections::VecDeque::new()),
            calls_dirty: std::sync::atomic::AtomicBool::new(false),
            menus: Mutex::new(crate::core::menus::Menus::default()),
            status: status::Status::default(),
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

    /// Queue `action` for a stanza `from` sent with `stanza_id`, claiming the id in the same
    /// transaction, and start its lane. Repeated whole while the database restarts: the claim
    /// makes a repeat after a commit whose answer was lost a no-op (the sweep delivers that row).
    /// `false`: the id was claimed before (a resent stanza), nothing queued.
    pub(in crate::bridge) async fn queue_claimed(
        self: &Arc<Self>,
        from: &str,
        stanza_id: Option<&str>,
        action: crate::core::action::Action,
        what: &'static str,
    ) -> Result<bool, crate::core::refusal::Refusal> {
        let action = &action;
        let stored = crate::store::retrying(what, || async move {
            let mut tx = self.store.begin().await?;
            let touches = crate::core::journal::touches(action, crate::store::now_ms());
            let claim = stanza_id.map(|id| (from, id));
            // Claimed before: the transaction is dropped, which undoes the rest of the batch.
            let Some(rows) = tx.enqueue_counted(claim, &touches, vec![action.clone()]).await? else {
                return Ok(None);
            };
            tx.commit().await?;
            Ok(Some(rows))
        })
        .await
        .map_err(|e| store_refusal(&e, what))?;
        let queued = stored.is_some();
        if let Some(rows) = stored {
            self.dispatch(rows);
        }
        Ok(queued)
    }
}

/// What a sender is told when their message could not be stored (transient failures were
/// already retried by [`crate::store::retrying`]). A full disk is said as such: it is the
/// administrator's to fix, and the sender's client may try again later.
pub(crate) fn store_refusal(e: &crate::store::StoreError, what: &'static str) -> crate::core::refusal::Refusal {
    use crate::core::refusal::Refusal;
    tracing::error!(error = %e, what, "could not accept");
    if e.is_full() {
        Refusal::busy(
            "The bridge's storage is full, so it takes nothing new until its administrator frees space; \
             this was not accepted. Please send it again later.",
        )
    } else {
        Refusal::internal("The bridge could not store this; please send it again later.")
    }
}
