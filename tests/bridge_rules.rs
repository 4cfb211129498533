//! The bridge's decisions against in-memory fakes of the homeserver (`matrix::out::MatrixOut`)
//! and of the XMPP component (`xmpp::out::XmppOut`), with a real SQLite store: what an event
//! or a stanza makes the bridge do, without Synapse or Prosody. (The end-to-end suite checks
//! the same rules against the real peers.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ucbridge::bridge::Bridge;
use ucbridge::config::Config;
use ucbridge::core::action::Text;
use ucbridge::core::bridge_info::BridgeInfo;
use ucbridge::core::ids::{MatrixUserId, RoomId};
use ucbridge::core::inbound::{MatrixIn, Membership};
use ucbridge::core::outbox::DeliveryError;
use ucbridge::core::presence::{MatrixState, Presence};
use ucbridge::core::room::Role;
use ucbridge::core::watch::Party;
use ucbridge::matrix::client::{MatrixError, Relations, RoomOrigin, UploadedFile};
use ucbridge::matrix::out::MatrixOut;
use ucbridge::store::{HostedRoom, RoomMember, Store};
use ucbridge::xmpp::out::{Outgoing, XmppOut};
use ucbridge::xmpp::reply::{Answer, Envelope};

/// Records what the bridge sends on XMPP and the answers it gives; everything is taken.
#[derive(Default)]
struct FakeXmpp {
    sent: Mutex<Vec<Outgoing>>,
    answers: Mutex<Vec<Answer>>,
}

impl FakeXmpp {
    fn sent(&self) -> Vec<Outgoing> {
        self.sent.lock().unwrap().clone()
    }

    fn answers(&self) -> Vec<Answer> {
        self.answers.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl XmppOut for FakeXmpp {
    async fn answer(&self, _envelope: &Envelope, answer: Answer) {
        self.answers.lock().unwrap().push(answer);
    }

    async fn deliver(&self, out: Outgoing) -> Result<(), DeliveryError> {
        self.sent.lock().unwrap().push(out);
        Ok(())
    }

    async fn post(&self, out: Outgoing) {
        self.sent.lock().unwrap().push(out);
    }

    fn is_connected(&self) -> bool {
        true
    }

    async fn muc_features(
        &self,
        _muc: &ucbridge::core::ids::BareJid,
    ) -> Result<Option<ucbridge::core::muc_features::MucFeatures>, ucbridge::xmpp::linked_muc::DiscoError> {
        Ok(None)
    }

    async fn muc_avatar_hash(
        &self,
        _muc: &ucbridge::core::ids::BareJid,
    ) -> Result<Option<[u8; 20]>, ucbridge::xmpp::linked_muc::DiscoError> {
        Ok(None)
    }

    async fn muc_photo(
        &self,
        _muc: &ucbridge::core::ids::BareJid,
    ) -> Result<Option<Vec<u8>>, ucbridge::xmpp::linked_muc::DiscoError> {
        Ok(None)
    }
}

/// Records every call (name and arguments, as `Debug`) and answers each with success.
#[derive(Default)]
struct FakeHomeserver {
    calls: Mutex<Vec<String>>,
    /// Event ids handed out (`$event0`, `$event1`, …).
    ids: AtomicU64,
    rooms: AtomicU64,
    /// What `room_setup` and `joined_members` answer (none and nobody unless a test says).
    setup: Mutex<Option<ucbridge::core::adopt::RoomSetup>>,
    members: Mutex<Vec<(MatrixUserId, Option<String>)>>,
}

impl FakeHomeserver {
    fn record(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }

    fn next(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed)
    }

    /// Record a send and answer it with the next event id, which the record ends with
    /// (`… -> $event3`).
    fn sent(&self, call: String) -> Result<String, MatrixError> {
        let id = format!("$event{}", self.next());
        self.record(format!("{call} -> {id}"));
        Ok(id)
    }

    fn next_room(&self) -> u64 {
        self.rooms.fetch_add(1, Ordering::Relaxed)
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl MatrixOut for FakeHomeserver {
    async fn send_text(
        &self,
        room: &RoomId,
        user: &MatrixUserId,
        text: &Text,
        html: Option<&str>,
        txn_id: &str,
    ) -> Result<String, MatrixError> {
        self.sent(format!("send_text({:?}, {:?}, {:?}, {:?}, {:?})", room, user, text, html, txn_id))
    }

    async fn send_message(
        &self,
        room: &RoomId,
        user: &MatrixUserId,
        text: &Text,
        html: Option<&str>,
        relations: Relations<'_>,
        txn_id: &str,
    ) -> Result<String, MatrixError> {
        self.sent(format!(
            "send_message({:?}, {:?}, {:?}, {:?}, {:?}, {:?})",
            room, user, text, html, relations, txn_id
        ))
    }

    async fn send_file(
        &self,
        room: &RoomId,
        user: &MatrixUserId,
        file: &UploadedFile,
        relations: Relations<'_>,
        txn_id: &str,
    ) -> Result<String, MatrixError> {
        self.sent(format!("send_file({:?}, {:?}, {:?}, {:?}, {:?})", room, user, file, relations, txn_id))
    }

    async fn send_reaction(
        &self,
        room: &RoomId,
        user: &MatrixUserId,
        target: &str,
        key: &str,
        txn_id: &str,
    ) -> Result<String, MatrixError> {
        self.sent(format!("send_reaction({:?}, {:?}, {:?}, {:?}, {:?})", room, user, target, key, txn_id))
    }

    async fn redact(
        &self,
        room: &RoomId,
        user: &MatrixUserId,
        event_id: &str,
        txn_id: &str,
    ) -> Result<(), MatrixError> {
        self.record(format!("redact({:?}, {:?}, {:?}, {:?})", room, user, event_id, txn_id));
        Ok(())
    }

    async fn send_notice(
        &self,
        room: &RoomId,
        user: &MatrixUserId,
        body: &str,
        html: Option<&str>,
        reply_to: Option<&str>,
        txn_id: &str,
    ) -> Result<(), MatrixError> {
        self.record(format!(
            "send_notice({:?}, {:?}, {:?}, {:?}, {:?}, {:?})",
            room, user, body, html, reply_to, txn_id
        ));
        Ok(())
    }

    async fn register_ghost(&self, user: &MatrixUserId) -> Result<(), MatrixError> {
        self.record(format!("register_ghost({:?})", user));
        Ok(())
    }

    async fn set_presence(
        &self,
        user: &MatrixUserId,
        state: MatrixState,
        status_msg: Option<String>,
    ) -> Result<(), MatrixError> {
        self.record(format!("set_presence({:?}, {:?}, {:?})", user, state, status_msg));
        Ok(())
    }

    async fn presence(&self, user: &MatrixUserId, viewer: &MatrixUserId) -> Result<Presence, MatrixError> {
        self.record(format!("presence({:?}, {:?})", user, viewer));
        Ok(Presence::from_matrix(MatrixState::Offline, None))
    }

    async fn set_typing(&self, room: &RoomId, user: &MatrixUserId, typing: bool) -> Result<(), MatrixError> {
        self.record(format!("set_typing({:?}, {:?}, {:?})", room, user, typing));
        Ok(())
    }

    async fn send_read_receipt(&self, room: &RoomId, user: &MatrixUserId, event_id: &str) -> Result<(), MatrixError> {
        self.record(format!("send_read_receipt({:?}, {:?}, {:?})", room, user, event_id));
        Ok(())
    }

    async fn search_users(&self, term: &str, limit: u32) -> Result<Vec<(MatrixUserId, Option<String>)>, MatrixError> {
        self.record(format!("search_users({term:?}, {limit})"));
        Ok(vec![])
    }

    async fn displayname(&self, user: &MatrixUserId) -> Result<Option<String>, MatrixError> {
        self.record(format!("displayname({:?})", user));
        Ok(None)
    }

    async fn set_displayname(&self, user: &MatrixUserId, name: &str) -> Result<(), MatrixError> {
        self.record(format!("set_displayname({:?}, {:?})", user, name));
        Ok(())
    }

    async fn upload(&self, user: &MatrixUserId, bytes: Vec<u8>, content_type: &str) -> Result<String, MatrixError> {
        self.sent(format!("upload({:?}, {:?}, {:?})", user, bytes, content_type))
    }

    async fn set_avatar_url(&self, user: &MatrixUserId, mxc: &str) -> Result<(), MatrixError> {
        self.record(format!("set_avatar_url({:?}, {:?})", user, mxc));
        Ok(())
    }

    async fn avatar_url(&self, user: &MatrixUserId) -> Result<Option<String>, MatrixError> {
        self.record(format!("avatar_url({:?})", user));
        Ok(None)
    }

    async fn download(&self, mxc: &str) -> Result<(Vec<u8>, Option<String>), MatrixError> {
        self.record(format!("download({:?})", mxc));
        Ok((vec![], None))
    }

    async fn create_direct_room(&self, creator: &MatrixUserId, peer: &MatrixUserId) -> Result<RoomId, MatrixError> {
        self.record(format!("create_direct_room({:?}, {:?})", creator, peer));
        Ok(RoomId::parse(&format!("!new{}:hs.example", self.next_room())).expect("a room id"))
    }

    async fn create_group_room(
        &self,
        name: &str,
        alias: &str,
        open: bool,
        invite: &[MatrixUserId],
        moderators: &[MatrixUserId],
        marker: &str,
    ) -> Result<RoomId, MatrixError> {
        self.record(format!(
            "create_group_room({:?}, {:?}, {:?}, {:?}, {:?}, {:?})",
            name, alias, open, invite, moderators, marker
        ));
        Ok(RoomId::parse(&format!("!new{}:hs.example", self.next_room())).expect("a room id"))
    }

    async fn create_linked_room(&self, name: &str, alias_localpart: &str) -> Result<RoomId, MatrixError> {
        self.record(format!("create_linked_room({:?}, {:?})", name, alias_localpart));
        Ok(RoomId::parse(&format!("!new{}:hs.example", self.next_room())).expect("a room id"))
    }

    async fn invite(&self, room: &RoomId, by: &MatrixUserId, user: &MatrixUserId) -> Result<(), MatrixError> {
        self.record(format!("invite({:?}, {:?}, {:?})", room, by, user));
        Ok(())
    }

    async fn join(&self, room: &RoomId, user: &MatrixUserId) -> Result<(), MatrixError> {
        self.record(format!("join({:?}, {:?})", room, user));
        Ok(())
    }

    async fn leave(&self, room: &RoomId, user: &MatrixUserId) -> Result<(), MatrixError> {
        self.record(format!("leave({:?}, {:?})", room, user));
        Ok(())
    }

    async fn kick(
        &self,
        room: &RoomId,
        by: Option<&MatrixUserId>,
        user: &MatrixUserId,
        reason: &str,
    ) -> Result<(), MatrixError> {
        let by = by.map_or_else(String::new, |b| format!("{b:?}, "));
        self.record(format!("kick({:?}, {by}{:?}, {:?})", room, user, reason));
        Ok(())
    }

    async fn set_power_level(&self, room: &RoomId, user: &MatrixUserId, level: i64) -> Result<(), MatrixError> {
        self.record(format!("set_power_level({:?}, {:?}, {:?})", room, user, level));
        Ok(())
    }

    async fn set_topic(&self, room: &RoomId, topic: &str) -> Result<(), MatrixError> {
        self.record(format!("set_topic({:?}, {:?})", room, topic));
        Ok(())
    }

    async fn set_name(&self, room: &RoomId, name: &str) -> Result<(), MatrixError> {
        self.record(format!("set_name({:?}, {:?})", room, name));
        Ok(())
    }

    async fn set_room_avatar(&self, room: &RoomId, mxc: Option<&str>) -> Result<(), MatrixError> {
        self.record(format!("set_room_avatar({:?}, {:?})", room, mxc));
        Ok(())
    }

    async fn room_avatar(&self, _room: &RoomId) -> Result<Option<String>, MatrixError> {
        Ok(None)
    }

    async fn set_room_displayname(&self, room: &RoomId, user: &MatrixUserId, name: &str) -> Result<(), MatrixError> {
        self.record(format!("set_room_displayname({:?}, {:?}, {:?})", room, user, name));
        Ok(())
    }

    async fn room_origin(&self, room: &RoomId) -> Result<Option<RoomOrigin>, MatrixError> {
        self.record(format!("room_origin({:?})", room));
        Ok(None)
    }

    async fn resolve_alias(&self, alias: &str) -> Result<Option<RoomId>, MatrixError> {
        self.record(format!("resolve_alias({:?})", alias));
        Ok(None)
    }

    async fn joined_members(&self, room: &RoomId) -> Result<Vec<(MatrixUserId, Option<String>)>, MatrixError> {
        self.record(format!("joined_members({:?})", room));
        Ok(self.members.lock().unwrap().clone())
    }

    async fn room_setup(&self, room: &RoomId) -> Result<Option<ucbridge::core::adopt::RoomSetup>, MatrixError> {
        self.record(format!("room_setup({:?})", room));
        Ok(self.setup.lock().unwrap().clone())
    }

    async fn room_event(&self, room: &RoomId, event_id: &str) -> Result<Option<MatrixIn>, MatrixError> {
        self.record(format!("room_event({:?}, {:?})", room, event_id));
        Ok(None)
    }

    async fn room_event_as(
        &self,
        room: &RoomId,
        event_id: &str,
        user: Option<&MatrixUserId>,
    ) -> Result<Option<MatrixIn>, MatrixError> {
        self.record(format!("room_event_as({:?}, {:?}, {:?})", room, event_id, user));
        Ok(None)
    }

    async fn ping_homeserver(&self, transaction_id: &str) -> Result<(), MatrixError> {
        self.record(format!("ping_homeserver({:?})", transaction_id));
        Ok(())
    }

    async fn set_bridge_info(&self, room: &RoomId, bridge_id: &str, info: &BridgeInfo) -> Result<(), MatrixError> {
        self.record(format!("set_bridge_info({room}, {})", info.state_key(bridge_id)));
        Ok(())
    }

    async fn has_bridge_info(&self, room: &RoomId, bridge_id: &str, info: &BridgeInfo) -> Result<bool, MatrixError> {
        self.record(format!("has_bridge_info({room}, {})", info.state_key(bridge_id)));
        Ok(false)
    }

    async fn reachable(&self) -> Result<(), MatrixError> {
        Ok(())
    }
}

fn user(s: &str) -> MatrixUserId {
    MatrixUserId::parse(s).unwrap()
}

/// A bridge on a fresh SQLite file, with the fake homeserver and XMPP component, and rooms
/// capped at `cap` participants.
async fn bridge(cap: usize) -> (Arc<Bridge>, Arc<FakeHomeserver>, Store, tempfile::TempDir) {
    let (bridge, fake, _, store, dir) = bridge_and_xmpp(cap).await;
    (bridge, fake, store, dir)
}

async fn bridge_and_xmpp(cap: usize) -> (Arc<Bridge>, Arc<FakeHomeserver>, Arc<FakeXmpp>, Store, tempfile::TempDir) {
    // As main.rs does: the HTTP clients (SMS gateway, media) need rustls' crypto provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config/example.yaml")))
        .expect("the example config loads");
    config.rooms.max_participants = cap;
    let config = Arc::new(config);
    let store = Store::connect(&format!("sqlite://{}/bridge.db", dir.path().display()), 2).await.unwrap();
    let fake = Arc::new(FakeHomeserver::default());
    let xmpp = Arc::new(FakeXmpp::default());
    let links = config.links.rules().unwrap();
    let bridge = Bridge::new(config, store.clone(), fake.clone(), links, xmpp.clone(), "hs".into(), "t".into());
    (bridge, fake, xmpp, store, dir)
}

/// A hosted room of `owner` with `others` joined as participants.
async fn hosted_room(store: &Store, owner: &MatrixUserId, others: &[MatrixUserId]) -> RoomId {
    let room = RoomId::parse("!big:hs.example").unwrap();
    let r = HostedRoom {
        room: room.clone(),
        alias: None,
        name: None,
        topic: None,
        owner: Party::Matrix(owner.clone()),
        open: true,
    };
    store.save_room(&r).await.unwrap();
    let member = |u: &MatrixUserId, role| RoomMember {
        party: Party::Matrix(u.clone()),
        role,
        joined: true,
        nick: u.localpart().to_owned(),
    };
    store.save_member(&room, &member(owner, Role::Owner)).await.unwrap();
    for u in others {
        store.save_member(&room, &member(u, Role::Participant)).await.unwrap();
    }
    room
}

fn join(room: &RoomId, who: &MatrixUserId) -> MatrixIn {
    MatrixIn::Membership {
        room: room.clone(),
        sender: who.clone(),
        user: who.clone(),
        membership: Membership::Join,
        displayname: None,
        avatar_url: None,
        reason: None,
        is_direct: false,
    }
}

/// Poll the fake's calls until one matches (the outbox lanes run in the background).
async fn wait_call(fake: &FakeHomeserver, what: &str, pred: impl Fn(&str) -> bool) -> String {
    for _ in 0..100 {
        if let Some(c) = fake.calls().into_iter().find(|c| pred(c)) {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {what} among {:#?}", fake.calls());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_join_past_the_cap_is_undone_with_a_reason() {
    let (bridge, fake, store, _dir) = bridge(3).await;
    let owner = user("@own:hs.example");
    let room = hosted_room(&store, &owner, &[user("@a:hs.example"), user("@b:hs.example")]).await;
    bridge.accept_matrix_transaction("t1", vec![join(&room, &user("@late:hs.example"))]).await.unwrap();
    let kick = wait_call(&fake, "kick of the 4th", |c| c.starts_with("kick(") && c.contains("\"late\"")).await;
    assert!(kick.contains("full"), "{kick}");
    // Nobody else was removed, and the room still has its three.
    assert_eq!(fake.calls().iter().filter(|c| c.starts_with("kick(")).count(), 1, "{:#?}", fake.calls());
    assert_eq!(store.room_members(&room).await.unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_join_under_the_cap_is_kept() {
    let (bridge, fake, store, _dir) = bridge(4).await;
    let owner = user("@own:hs.example");
    let room = hosted_room(&store, &owner, &[user("@a:hs.example"), user("@b:hs.example")]).await;
    bridge.accept_matrix_transaction("t1", vec![join(&room, &user("@fourth:hs.example"))]).await.unwrap();
    // Positive control: the join is recorded; and no kick was asked for.
    for _ in 0..100 {
        if store.room_members(&room).await.unwrap().len() == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(store.room_members(&room).await.unwrap().len(), 4);
    assert!(!fake.calls().iter().any(|c| c.starts_with("kick(")), "{:#?}", fake.calls());
}

fn says(room: &RoomId, who: &MatrixUserId, id: &str, body: &str) -> MatrixIn {
    MatrixIn::Message {
        room: room.clone(),
        sender: who.clone(),
        event_id: id.into(),
        text: Text::plain(body),
        reply_to: None,
        replaces: None,
        mentions: vec![],
        sent_at: None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn only_moderators_remove_participants() {
    let (bridge, fake, store, _dir) = bridge(30).await;
    let (owner, a, b) = (user("@own:hs.example"), user("@a:hs.example"), user("@b:hs.example"));
    let room = hosted_room(&store, &owner, &[a.clone(), b.clone()]).await;
    // A participant asks the bot to remove someone: refused, with the reason, and b stays.
    bridge.accept_matrix_transaction("t1", vec![says(&room, &a, "$1", "!kick @b:hs.example")]).await.unwrap();
    wait_call(&fake, "the bot's refusal", |c| c.contains("refused: only moderators can remove participants")).await;
    assert!(!fake.calls().iter().any(|c| c.starts_with("kick(")), "{:#?}", fake.calls());
    assert_eq!(store.room_members(&room).await.unwrap().len(), 3);
    // The initiator (a moderator) may: b is removed on Matrix, and from the participants.
    bridge.accept_matrix_transaction("t2", vec![says(&room, &owner, "$2", "!kick @b:hs.example")]).await.unwrap();
    let kick = wait_call(&fake, "the kick of b", |c| c.starts_with("kick(") && c.contains("\"b\"")).await;
    assert!(kick.contains("removed by @own:hs.example"), "{kick}");
    assert_eq!(store.room_members(&room).await.unwrap().len(), 2);
}

fn chat(from: &str, to_local: &str, id: &str, body: &str) -> ucbridge::core::inbound::XmppChatIn {
    ucbridge::core::inbound::XmppChatIn {
        from: ucbridge::core::ids::BareJid::parse(from).unwrap(),
        to_local: to_local.into(),
        stanza_id: Some(id.into()),
        body: body.into(),
        nick: None,
        wants_receipt: false,
        markable: false,
        extras: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_xmpp_message_opens_a_direct_chat_and_later_ones_reuse_it() {
    let (bridge, fake, _store, _dir) = bridge(30).await;
    bridge.accept_xmpp_chat(chat("alice@localhost", "bob\\40localhost", "m1", "hello")).await.unwrap();
    wait_call(&fake, "the first message", |c| c.contains("\"hello\"")).await;
    bridge.accept_xmpp_chat(chat("alice@localhost", "bob\\40localhost", "m2", "again")).await.unwrap();
    wait_call(&fake, "the second message", |c| c.contains("\"again\"")).await;
    let calls = fake.calls();
    let created: Vec<_> = calls.iter().filter(|c| c.starts_with("create_direct_room(")).collect();
    assert_eq!(created.len(), 1, "one direct chat for the pair: {calls:#?}");
    assert!(created[0].contains("\"bob\""), "{calls:#?}");
    // The same stanza id again is a resend: bridged once.
    bridge.accept_xmpp_chat(chat("alice@localhost", "bob\\40localhost", "m2", "again")).await.unwrap();
    bridge.accept_xmpp_chat(chat("alice@localhost", "bob\\40localhost", "m3", "third")).await.unwrap();
    wait_call(&fake, "the third message", |c| c.contains("\"third\"")).await;
    assert_eq!(fake.calls().iter().filter(|c| c.contains("\"again\"")).count(), 1, "{:#?}", fake.calls());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_matrix_user_who_left_the_direct_chat_is_invited_back_by_the_next_message() {
    let (bridge, fake, store, _dir) = bridge(30).await;
    let (alice, bob) = (ucbridge::core::ids::BareJid::parse("alice@localhost").unwrap(), user("@bob:localhost"));
    bridge.accept_xmpp_chat(chat("alice@localhost", "bob\\40localhost", "m1", "hello")).await.unwrap();
    wait_call(&fake, "the first message", |c| c.contains("\"hello\"")).await;
    let dm = store.current_dm(&alice, &bob).await.unwrap().expect("the direct chat is recorded");
    // Bob leaves the chat.
    let leave = MatrixIn::Membership {
        room: dm.room.clone(),
        sender: bob.clone(),
        user: bob.clone(),
        membership: Membership::Leave,
        displayname: None,
        avatar_url: None,
        reason: None,
        is_direct: false,
    };
    bridge.accept_matrix_transaction("t1", vec![leave]).await.unwrap();
    let invites_before = fake.calls().iter().filter(|c| c.starts_with("invite(")).count();
    bridge.accept_xmpp_chat(chat("alice@localhost", "bob\\40localhost", "m2", "are you there?")).await.unwrap();
    wait_call(&fake, "the message after the leave", |c| c.contains("\"are you there?\"")).await;
    let calls = fake.calls();
    let invites: Vec<_> = calls.iter().filter(|c| c.starts_with("invite(")).collect();
    assert_eq!(invites.len(), invites_before + 1, "bob invited back once: {calls:#?}");
    assert!(invites.last().unwrap().contains("\"bob\""), "{calls:#?}");
    assert_eq!(calls.iter().filter(|c| c.starts_with("create_direct_room(")).count(), 1, "same room: {calls:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_xmpp_correction_edits_the_senders_own_message_and_nothing_else() {
    let (bridge, fake, _store, _dir) = bridge(30).await;
    bridge.accept_xmpp_chat(chat("alice@localhost", "bob\\40localhost", "m1", "helo")).await.unwrap();
    let first = wait_call(&fake, "the first message", |c| c.contains("\"helo\"")).await;
    let mut fix = chat("alice@localhost", "bob\\40localhost", "m2", "hello");
    fix.extras.replaces = Some("m1".into());
    bridge.accept_xmpp_chat(fix).await.unwrap();
    let edit = wait_call(&fake, "the correction", |c| c.contains("\"hello\"")).await;
    let event = first.rsplit(" -> ").next().expect("a send records its event id");
    assert!(edit.contains(&format!("replaces: Some(\"{event}\")")), "{edit} should replace {event}");
    // A correction of an id the bridge never saw is a plain message, not an edit of anything.
    let mut stray = chat("alice@localhost", "bob\\40localhost", "m3", "stray");
    stray.extras.replaces = Some("nope".into());
    bridge.accept_xmpp_chat(stray).await.unwrap();
    let plain = wait_call(&fake, "the stray correction", |c| c.contains("\"stray\"")).await;
    assert!(plain.contains("replaces: None"), "{plain}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_sms_to_someones_number_reaches_them_and_one_nobody_can_take_is_not_accepted() {
    let (bridge, fake, _store, _dir) = bridge(30).await;
    let mut config = (*bridge.config).clone();
    let sms = config.sms.as_mut().expect("the example config has an sms section");
    sms.numbers.push(ucbridge::sms::config::SmsNumber {
        number: "+49 30 5550201".into(),
        owner: Some("@anna:localhost".into()),
    });
    let settings = config.sms.clone().expect("SMS is on");
    let service = ucbridge::sms::SmsService::new(settings, &config.contact_files(), &config.appservice.url).unwrap();
    let _ = bridge.sms.set(Arc::new(service));
    let phone = |s: &str| ucbridge::core::ids::PhoneNumber::parse(s).unwrap();
    let to_anna = ucbridge::sms::inbound::IncomingSms {
        from: phone("+4917612345678"),
        to: Some(phone("+49305550201")),
        text: "call me back".into(),
        id: "k1".into(),
    };
    assert!(bridge.accept_incoming_sms("kannel", to_anna).await.unwrap());
    let sent = wait_call(&fake, "the SMS on Matrix", |c| c.contains("\"call me back\"")).await;
    assert!(sent.contains("+4917612345678") || sent.contains("4917612345678"), "from the number's ghost: {sent}");
    assert!(fake.calls().iter().any(|c| c.contains("\"anna\"")), "anna is invited: {:#?}", fake.calls());
    // To a number nobody owns, from someone nobody wrote to, with no control room yet: not
    // accepted, so the gateway keeps it and retries.
    let stray = ucbridge::sms::inbound::IncomingSms {
        from: phone("+4917600000000"),
        to: Some(phone("+49305559999")),
        text: "anyone?".into(),
        id: "k2".into(),
    };
    assert!(!bridge.accept_incoming_sms("kannel", stray).await.unwrap());
}

/// Poll what the fake component was given until `pred` finds something.
async fn wait_sent<T>(xmpp: &FakeXmpp, what: &str, pred: impl Fn(&Outgoing) -> Option<T>) -> T {
    for _ in 0..100 {
        if let Some(found) = xmpp.sent().iter().find_map(&pred) {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {what} among {:#?}", xmpp.sent());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_xmpp_user_cannot_correct_the_matrix_users_message() {
    let (bridge, fake, xmpp, store, _dir) = bridge_and_xmpp(30).await;
    let (alice, bob) = (ucbridge::core::ids::BareJid::parse("alice@localhost").unwrap(), user("@bob:localhost"));
    bridge.accept_xmpp_chat(chat("alice@localhost", "bob\\40localhost", "m1", "hello")).await.unwrap();
    wait_call(&fake, "the first message", |c| c.contains("\"hello\"")).await;
    let dm = store.current_dm(&alice, &bob).await.unwrap().expect("the direct chat is recorded");
    // Bob answers from Matrix: the message reaches alice on XMPP, under a stanza id.
    bridge.accept_matrix_transaction("t1", vec![says(&dm.room, &bob, "$bob1", "hi alice")]).await.unwrap();
    let id = wait_sent(&xmpp, "bob's message", |o| match o {
        Outgoing::Chat { to, text, id, .. } if to == &alice && text.body == "hi alice" => Some(id.clone()),
        _ => None,
    })
    .await;
    // Alice sends a correction of bob's message: refused at once, with the reason, and no edit
    // reaches Matrix.
    let mut fix = chat("alice@localhost", "bob\\40localhost", "m2", "hi bob (edited by alice)");
    fix.extras.replaces = Some(ucbridge::core::ids::StanzaId::new(id));
    let refused = bridge.accept_xmpp_chat(fix).await.expect_err("a correction of someone else's message");
    assert_eq!(refused.text, "You can only correct your own messages.");
    // Positive control: her next message does arrive, and the refused edit never did.
    bridge.accept_xmpp_chat(chat("alice@localhost", "bob\\40localhost", "m3", "sorry")).await.unwrap();
    wait_call(&fake, "the message after the refusal", |c| c.contains("\"sorry\"")).await;
    assert!(!fake.calls().iter().any(|c| c.contains("edited by alice")), "{:#?}", fake.calls());
}

fn adhoc(
    from: &str,
    node: &str,
    admin: Option<bool>,
    step: ucbridge::core::xmpp_in::AdhocStep,
) -> ucbridge::core::xmpp_in::XmppIn {
    ucbridge::core::xmpp_in::XmppIn::AdhocCommand(ucbridge::core::xmpp_in::AdhocCommand {
        sender: ucbridge::core::ids::BareJid::parse(from).unwrap(),
        node: node.into(),
        admin,
        attempted: format!("ad-hoc {node}"),
        step,
    })
}

fn envelope(from: &str) -> Option<Envelope> {
    let jid = |s: &str| xmpp_parsers::jid::Jid::new(s).unwrap();
    Some(Envelope::iq(jid(from), jid("bridge.example"), "c1".into()))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_ad_hoc_command_from_a_non_admin_is_refused_and_audited() {
    use ucbridge::core::xmpp_in::{AdhocStep, Submission};
    use ucbridge::xmpp::adhoc::CommandAnswer;
    let (bridge, _fake, xmpp, store, _dir) = bridge_and_xmpp(30).await;
    let who = "mallory@localhost";
    let line = AdhocStep::Submitted(Ok(Submission::Line("status".into())));
    bridge.accept_xmpp(adhoc(who, "admin", Some(true), line), envelope(who)).await;
    let refused = "Only the bridge's admins can run admin commands.";
    assert_eq!(xmpp.answers(), vec![Answer::Refused(ucbridge::core::refusal::Refusal::forbidden(refused))]);
    let audit = store.audit_log(10).await.unwrap();
    assert!(audit.iter().any(|(_, _, command, ok)| !ok && command == "ad-hoc admin"), "{audit:#?}");
    // Positive control: a user command's first step is its form, and an unknown node is not found.
    bridge.accept_xmpp(adhoc(who, "whoami", Some(false), AdhocStep::Form), envelope(who)).await;
    bridge.accept_xmpp(adhoc(who, "nope", None, AdhocStep::Form), envelope(who)).await;
    let answers = xmpp.answers();
    assert_eq!(answers[1], Answer::Command(CommandAnswer::Form));
    assert!(
        matches!(&answers[2], Answer::Refused(r) if r.kind == ucbridge::core::refusal::RefusalKind::NotFound),
        "{answers:#?}"
    );
}

fn invite(room: &RoomId, by: &MatrixUserId, who: &MatrixUserId, is_direct: bool) -> MatrixIn {
    MatrixIn::Membership {
        room: room.clone(),
        sender: by.clone(),
        user: who.clone(),
        membership: Membership::Invite,
        displayname: None,
        avatar_url: None,
        reason: None,
        is_direct,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admins_room_is_offered_and_adopted_on_confirmation_with_roles_from_its_power_levels() {
    use ucbridge::core::adopt::{PowerLevels, RoomSetup};
    let (bridge, fake, store, _dir) = bridge(30).await;
    let (ann, ben, eve, bot) =
        (user("@ann:localhost"), user("@ben:localhost"), user("@eve:localhost"), user("@ucbridge:localhost"));
    let room = RoomId::parse("!Made:localhost").unwrap();
    let power = PowerLevels {
        users: [(ann.clone(), 100), (ben.clone(), 50), (bot.clone(), 100)].into_iter().collect(),
        state_default: 50,
        kick: 50,
        ..PowerLevels::default()
    };
    *fake.setup.lock().unwrap() =
        Some(RoomSetup { power, alias: None, name: Some("Made".into()), topic: None, open: false });
    *fake.members.lock().unwrap() =
        vec![(ann.clone(), Some("Ann".into())), (ben.clone(), None), (eve.clone(), None), (bot.clone(), None)];
    // A moderator's invitation: refused, and the bot leaves.
    bridge.accept_matrix_transaction("t0", vec![invite(&room, &ben, &bot, false)]).await.unwrap();
    wait_call(&fake, "the refusal", |c| c.contains("only the room's admins")).await;
    wait_call(&fake, "the bot leaves", |c| c.starts_with("leave(")).await;
    // The admin's: an offer, which nobody else can take up.
    bridge.accept_matrix_transaction("t1", vec![invite(&room, &ann, &bot, false)]).await.unwrap();
    wait_call(&fake, "the offer", |c| c.contains("types confirm here")).await;
    bridge.accept_matrix_transaction("t2", vec![says(&room, &ben, "$1", "confirm")]).await.unwrap();
    wait_call(&fake, "ben cannot confirm", |c| c.contains("only @ann:localhost")).await;
    assert!(store.room(&room).await.unwrap().is_none());
    bridge.accept_matrix_transaction("t3", vec![says(&room, &ann, "$2", "confirm")]).await.unwrap();
    wait_call(&fake, "the adoption", |c| c.contains("bridged to XMPP now")).await;
    let hosted = store.room(&room).await.unwrap().expect("the room is hosted");
    assert_eq!(hosted.owner, Party::Matrix(ann.clone()));
    let roles: Vec<(Party, Role)> =
        store.room_members(&room).await.unwrap().into_iter().map(|m| (m.party, m.role)).collect();
    assert_eq!(roles.len(), 3, "the bot is no participant: {roles:?}");
    for (who, role) in [(&ann, Role::Owner), (&ben, Role::Moderator), (&eve, Role::Participant)] {
        assert!(roles.contains(&(Party::Matrix(who.clone()), role)), "{who}: {roles:?}");
    }
    assert!(fake.calls().iter().any(|c| c.starts_with("set_bridge_info(")), "{:#?}", fake.calls());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ghost_invited_into_a_room_that_is_not_bridged_explains_and_leaves() {
    let (bridge, fake, store, _dir) = bridge(30).await;
    let (ann, ghost) = (user("@ann:localhost"), user("@_xmpp_alice=40localhost:localhost"));
    let room = RoomId::parse("!group:localhost").unwrap();
    bridge.accept_matrix_transaction("t1", vec![invite(&room, &ann, &ghost, false)]).await.unwrap();
    wait_call(&fake, "the explanation", |c| c.contains("only once it is bridged")).await;
    wait_call(&fake, "the ghost leaves", |c| c.starts_with("leave(")).await;
    assert!(store.dm_by_room(&room).await.unwrap().is_none(), "the room became a direct chat");
    // Positive control: invited as a direct chat, the room becomes one.
    let dm = RoomId::parse("!dm:localhost").unwrap();
    bridge.accept_matrix_transaction("t2", vec![invite(&dm, &ann, &ghost, true)]).await.unwrap();
    assert!(store.dm_by_room(&dm).await.unwrap().is_some());
}
