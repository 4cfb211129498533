//! One conformance suite for the store, run against SQLite (a real file) and PostgreSQL
//! (`UCB_TEST_PG_URL`, default `postgres://postgres@127.0.0.1:5432/test`; each test gets a
//! fresh database). Both backends must behave the same.

use sqlx::Connection;
use ucbridge::core::action::{Action, Text, TextKind};
use ucbridge::core::ids::{BareJid, MatrixUserId, RoomId};
use ucbridge::core::presence::{Consent, Presence, State};
use ucbridge::core::room::Role;
use ucbridge::core::watch::Party;
use ucbridge::store::{
    ArchiveFilter, ArchivedAct, DirectChat, HostedRoom, JournalQuery, MappedMessage, NewArchived, NewJournalRow, Page,
    PeerMembership, RoomMember, Store, Watch,
};

/// A database for one test, removed afterwards.
struct TestDb {
    url: String,
    _dir: Option<tempfile::TempDir>,
    pg_admin: Option<(String, String)>,
}

impl TestDb {
    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("ucb.db").display());
        Self { url, _dir: Some(dir), pg_admin: None }
    }

    async fn postgres() -> Self {
        sqlx::any::install_default_drivers();
        let admin =
            std::env::var("UCB_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let name = format!("ucb_store_{}_{:x}", std::process::id(), rand::random::<u64>());
        let mut conn = sqlx::AnyConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is required for the store tests: {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await.unwrap();
        let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap();
        Self { url: format!("{base}/{name}"), _dir: None, pg_admin: Some((admin, name)) }
    }

    async fn open(&self) -> Store {
        Store::connect(&self.url, 4).await.unwrap()
    }

    async fn drop_db(self) {
        if let Some((admin, name)) = &self.pg_admin {
            let mut conn = sqlx::AnyConnection::connect(admin).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
}

fn jid(s: &str) -> BareJid {
    BareJid::parse(s).unwrap()
}
fn mxid(s: &str) -> MatrixUserId {
    MatrixUserId::parse(s).unwrap()
}
fn room(s: &str) -> RoomId {
    RoomId::parse(s).unwrap()
}

fn chat(n: u32) -> Action {
    Action::XmppChat {
        from: mxid("@bob:hs"),
        to: jid("alice@x"),
        nick: None,
        text: Text::plain(format!("m{n} ✓")),
        event: Some((room("!r:hs"), format!("$e{n}").into())),
        extras: Default::default(),
    }
}

async fn transactions_are_claimed_once_across_restarts(db: &TestDb) {
    let store = db.open().await;
    let mut tx = store.begin().await.unwrap();
    assert!(tx.claim_transaction("t1").await.unwrap());
    tx.commit().await.unwrap();
    store.close().await;
    // A new process (fresh pool; migrations run again and must be a no-op).
    let store = db.open().await;
    let mut tx = store.begin().await.unwrap();
    assert!(!tx.claim_transaction("t1").await.unwrap());
    assert!(tx.claim_transaction("t2").await.unwrap());
    assert!(tx.claim_stanza("alice@x", "id1").await.unwrap());
    assert!(!tx.claim_stanza("alice@x", "id1").await.unwrap());
    assert!(tx.claim_stanza("carol@x", "id1").await.unwrap());
    tx.commit().await.unwrap();
    // Pruning forgets records older than the cut-off, and only those.
    assert_eq!(store.prune_dedupe(0).await.unwrap(), 0);
    assert_eq!(store.prune_dedupe(ucbridge::store::now_ms() + 1000).await.unwrap(), 4);
    let mut tx = store.begin().await.unwrap();
    assert!(tx.claim_transaction("t1").await.unwrap());
    tx.commit().await.unwrap();
}

async fn uncommitted_work_is_not_kept(db: &TestDb) {
    let store = db.open().await;
    {
        let mut tx = store.begin().await.unwrap();
        assert!(tx.claim_transaction("lost").await.unwrap());
        tx.enqueue(&chat(1)).await.unwrap();
        // dropped without commit: as if the process died before answering the homeserver
    }
    assert_eq!(store.outbox_len().await.unwrap(), 0);
    let mut tx = store.begin().await.unwrap();
    assert!(tx.claim_transaction("lost").await.unwrap(), "the retried transaction must be processed");
    tx.commit().await.unwrap();
}

async fn outbox_keeps_lane_order_and_never_reuses_ids(db: &TestDb) {
    let store = db.open().await;
    let mut tx = store.begin().await.unwrap();
    let mut ids = vec![];
    for n in 0..5 {
        ids.push(tx.enqueue(&chat(n)).await.unwrap());
    }
    let other = Action::MatrixJoin { room: room("!r:hs"), user: mxid("@_xmpp_a=40x:hs") };
    tx.enqueue(&other).await.unwrap();
    tx.commit().await.unwrap();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    let mut lanes = store.pending_lanes().await.unwrap();
    lanes.sort();
    assert_eq!(lanes, vec![chat(0).lane().to_string(), other.lane().to_string()]);

    let head = store.head_of_lane(&chat(0).lane().to_string()).await.unwrap().unwrap();
    assert_eq!((head.id, head.attempts, head.action.clone()), (ids[0], 0, chat(0)));
    store.retry_later(head.id, 3, 12345, "peer down").await.unwrap();
    let again = store.head_of_lane(&chat(0).lane().to_string()).await.unwrap().unwrap();
    assert_eq!((again.id, again.attempts, again.next_attempt_at), (ids[0], 3, 12345));

    for (n, id) in ids.iter().enumerate() {
        let head = store.head_of_lane(&chat(0).lane().to_string()).await.unwrap().unwrap();
        assert_eq!(head.id, *id);
        assert_eq!(head.action, chat(u32::try_from(n).unwrap()));
        store.complete(*id).await.unwrap();
    }
    assert!(store.head_of_lane(&chat(0).lane().to_string()).await.unwrap().is_none());
    // The table is empty for this lane; a new id must still be larger than every old one,
    // because ids become Matrix txnIds and stanza ids.
    let mut tx = store.begin().await.unwrap();
    let fresh = tx.enqueue(&chat(9)).await.unwrap();
    tx.commit().await.unwrap();
    assert!(fresh > *ids.last().unwrap());
    assert_eq!(store.outbox_len().await.unwrap(), 2);
}

async fn direct_chats_follow_the_latest_room(db: &TestDb) {
    let store = db.open().await;
    let (a, b) = (jid("alice@x"), mxid("@bob:hs"));
    assert!(store.current_dm(&a, &b).await.unwrap().is_none());
    let first = DirectChat { room: room("!one:hs"), xmpp: a.clone(), matrix: b.clone(), peer: PeerMembership::Invited };
    store.save_dm(&first).await.unwrap();
    assert_eq!(store.current_dm(&a, &b).await.unwrap(), Some(first.clone()));

    let mut tx = store.begin().await.unwrap();
    assert!(tx.set_peer_membership(&room("!one:hs"), &b, PeerMembership::Left).await.unwrap());
    assert!(!tx.set_peer_membership(&room("!nope:hs"), &b, PeerMembership::Left).await.unwrap());
    assert_eq!(tx.dm_by_room(&room("!one:hs")).await.unwrap().unwrap().peer, PeerMembership::Left);
    tx.commit().await.unwrap();

    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let second = DirectChat { room: room("!two:hs"), xmpp: a.clone(), matrix: b.clone(), peer: PeerMembership::Joined };
    store.save_dm(&second).await.unwrap();
    assert_eq!(store.current_dm(&a, &b).await.unwrap(), Some(second));
    store.forget_dm(&room("!two:hs")).await.unwrap();
    assert_eq!(store.current_dm(&a, &b).await.unwrap().unwrap().room, room("!one:hs"));
    assert!(store.current_dm(&jid("carol@x"), &b).await.unwrap().is_none());
}

async fn ghosts_and_subscriptions(db: &TestDb) {
    let store = db.open().await;
    let g = mxid("@_xmpp_alice=40x:hs");
    assert_eq!(store.ghost(&g).await.unwrap(), None);
    store.save_ghost(&g, None).await.unwrap();
    assert_eq!(store.ghost(&g).await.unwrap(), Some(None));
    store.save_ghost(&g, Some("Alice ✨")).await.unwrap();
    assert_eq!(store.ghost(&g).await.unwrap(), Some(Some("Alice ✨".into())));

    let contact = "bob\\40hs@bridge.x";
    assert!(!store.is_subscribed(contact, "alice@x").await.unwrap());
    store.add_subscription(contact, "alice@x").await.unwrap();
    store.add_subscription(contact, "alice@x").await.unwrap();
    assert!(store.is_subscribed(contact, "alice@x").await.unwrap());
    assert_eq!(store.subscriptions().await.unwrap(), vec![(contact.to_owned(), "alice@x".to_owned())]);
    assert_eq!(store.subscribers(contact).await.unwrap(), vec!["alice@x".to_owned()]);
    assert!(store.subscribers("nobody@bridge.x").await.unwrap().is_empty());
    store.remove_subscription(contact, "alice@x").await.unwrap();
    assert!(store.subscriptions().await.unwrap().is_empty());
}

async fn presence_and_message_map(db: &TestDb) {
    let store = db.open().await;
    let bob = mxid("@bob:hs");
    assert_eq!(store.matrix_presence(&bob).await.unwrap(), None);
    for p in [Presence::new(State::DoNotDisturb, Some("in a meeting ⛔")), Presence::new(State::Offline, None)] {
        store.save_matrix_presence(&bob, &p).await.unwrap();
        assert_eq!(store.matrix_presence(&bob).await.unwrap(), Some(p));
    }

    let m = |event: &str, stanza: &str, from_xmpp: bool| MappedMessage {
        room: room("!dm:hs"),
        event_id: event.into(),
        xmpp: jid("alice@x"),
        matrix: bob.clone(),
        stanza_id: stanza.into(),
        from_xmpp,
        markable: true,
        edit_of: None,
    };
    store.map_message(&m("$1", "s1", true)).await.unwrap();
    store.map_message(&m("$1", "s1", true)).await.unwrap(); // a retry records nothing twice
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    store.map_message(&m("$2", "ucb-9", false)).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    store.map_message(&m("$3", "s3", true)).await.unwrap();
    assert_eq!(store.message_by_event(&room("!dm:hs"), "$2").await.unwrap(), Some(m("$2", "ucb-9", false)));
    assert_eq!(store.message_by_stanza(&jid("alice@x"), "s1").await.unwrap(), Some(m("$1", "s1", true)));
    assert_eq!(store.message_by_stanza(&jid("carol@x"), "s1").await.unwrap(), None);
    assert_eq!(store.latest_from_xmpp(&room("!dm:hs")).await.unwrap(), Some(m("$3", "s3", true)));
    // XEP-0184 <received/> is recorded for messages from Matrix only, once.
    assert_eq!(store.delivered_at(&room("!dm:hs"), "$2").await.unwrap(), None);
    assert!(store.mark_delivered(&jid("alice@x"), "ucb-9").await.unwrap());
    assert!(!store.mark_delivered(&jid("alice@x"), "ucb-9").await.unwrap());
    assert!(!store.mark_delivered(&jid("alice@x"), "s1").await.unwrap());
    assert!(store.delivered_at(&room("!dm:hs"), "$2").await.unwrap().is_some());
    assert_eq!(store.latest_from_xmpp(&room("!other:hs")).await.unwrap(), None);
}

async fn watches_and_bot_chats(db: &TestDb) {
    let store = db.open().await;
    let bob = Party::Matrix(mxid("@bob:hs"));
    let alice = Party::Xmpp(jid("alice@x"));
    let carol = Party::Xmpp(jid("carol@x"));
    let w = |watcher: &Party, target: &Party, a: bool, o: bool| Watch {
        watcher: watcher.clone(),
        target: target.clone(),
        on_available: a,
        on_offline: o,
        on_pickup: false,
    };
    let mut tx = store.begin().await.unwrap();
    tx.add_watch(&w(&bob, &alice, true, true)).await.unwrap();
    tx.add_watch(&w(&carol, &alice, false, true)).await.unwrap();
    tx.add_watch(&w(&bob, &alice, true, false)).await.unwrap(); // replaces the first
    tx.add_watch(&w(&alice, &bob, true, true)).await.unwrap();
    assert_eq!(tx.watches_by(&bob).await.unwrap(), vec![w(&bob, &alice, true, false)]);
    assert!(tx.remove_watch(&alice, &bob).await.unwrap());
    assert!(!tx.remove_watch(&alice, &bob).await.unwrap());
    tx.save_bot_dm(&mxid("@bob:hs"), &room("!bot1:hs")).await.unwrap();
    tx.save_bot_dm(&mxid("@bob:hs"), &room("!bot2:hs")).await.unwrap();
    assert!(tx.is_bot_dm(&mxid("@bob:hs"), &room("!bot2:hs")).await.unwrap());
    assert!(!tx.is_bot_dm(&mxid("@bob:hs"), &room("!bot1:hs")).await.unwrap());
    tx.commit().await.unwrap();
    assert_eq!(
        store.watchers_of(&alice).await.unwrap(),
        vec![w(&bob, &alice, true, false), w(&carol, &alice, false, true)]
    );
    assert!(store.watchers_of(&bob).await.unwrap().is_empty());
    // A pickup watch is one more kind of the same watch.
    let mut tx = store.begin().await.unwrap();
    let pickup = Watch { on_pickup: true, ..w(&carol, &alice, false, true) };
    tx.add_watch(&pickup).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.watchers_of(&alice).await.unwrap()[1], pickup);
    assert_eq!(store.bot_dm(&mxid("@bob:hs")).await.unwrap(), Some(room("!bot2:hs")));
    assert_eq!(store.bot_dm(&mxid("@carol:hs")).await.unwrap(), None);
}

async fn phone_calls_shown_busy_are_kept_with_the_own_presence(db: &TestDb) {
    use ucbridge::core::presence::{Presence, State};
    use ucbridge::store::PhoneBusy;
    let store = db.open().await;
    let pia = Party::Matrix(mxid("@pia:hs"));
    let xia = Party::Xmpp(jid("pia@x"));
    let row = |party: &Party, call: &str, own: Option<Presence>| PhoneBusy {
        party: party.clone(),
        call_id: call.into(),
        note: "On the phone".into(),
        own,
    };
    let away = Presence::new(State::Away, Some("lunch"));
    store.add_phone_busy(&row(&pia, "c1", Some(away.clone()))).await.unwrap();
    store.add_phone_busy(&row(&pia, "c1", None)).await.unwrap(); // a repeat keeps the first own presence
    store.add_phone_busy(&row(&xia, "c2", None)).await.unwrap();
    let all = store.phone_busy().await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all.contains(&row(&pia, "c1", Some(away))));
    assert!(all.contains(&row(&xia, "c2", None)));
    // She changes her presence during the call: that is what shows after it.
    let dnd = Presence::new(State::DoNotDisturb, None);
    store.set_phone_busy_own(&xia, &dnd).await.unwrap();
    assert!(store.phone_busy().await.unwrap().contains(&row(&xia, "c2", Some(dnd))));
    assert!(store.remove_phone_busy(&pia, "c1").await.unwrap());
    assert!(!store.remove_phone_busy(&pia, "c1").await.unwrap());
    assert_eq!(store.phone_busy().await.unwrap().len(), 1);
}

async fn rooms_members_and_archive_pages(db: &TestDb) {
    let store = db.open().await;
    let r = room("!team:hs");
    let ann = Party::Matrix(mxid("@ann:hs"));
    let bea = Party::Xmpp(jid("bea@x"));
    let bridged = HostedRoom {
        room: r.clone(),
        alias: Some("#team:hs".into()),
        name: Some("Team".into()),
        topic: None,
        owner: ann.clone(),
        open: false,
    };
    store.save_room(&bridged).await.unwrap();
    assert_eq!(store.room_by_alias("#team:hs").await.unwrap(), Some(bridged.clone()));
    assert_eq!(store.room(&room("!other:hs")).await.unwrap(), None);
    let member = |p: &Party, role, joined, nick: &str| RoomMember { party: p.clone(), role, joined, nick: nick.into() };
    store.save_member(&r, &member(&ann, Role::Owner, true, "Ann")).await.unwrap();
    store.save_member(&r, &member(&bea, Role::Participant, false, "Bea")).await.unwrap();
    store.save_member(&r, &member(&bea, Role::Moderator, true, "Bea")).await.unwrap(); // an update
    let members = store.room_members(&r).await.unwrap();
    assert_eq!(members.len(), 2);
    assert!(members.contains(&member(&bea, Role::Moderator, true, "Bea")));
    assert_eq!(store.rooms_of(&bea).await.unwrap().len(), 1);
    store.add_occupant(&r, "bea@x/phone", &bea).await.unwrap();
    store.add_occupant(&r, "bea@x/laptop", &bea).await.unwrap();
    assert_eq!(store.remove_occupants(&r, &bea, Some("bea@x/phone")).await.unwrap(), 1);
    assert_eq!(store.occupants(&r).await.unwrap(), vec![("bea@x/laptop".to_owned(), bea.clone())]);
    assert_eq!(store.remove_occupants(&r, &bea, None).await.unwrap(), 1);

    let mut tx = store.begin().await.unwrap();
    let mut ids = vec![];
    for i in 0..7 {
        let body = format!("m{i} ✓");
        let archived = NewArchived {
            sender: &ann,
            nick: "Ann",
            body: &body,
            kind: TextKind::Text,
            origin_id: None,
            event_id: Some("$e"),
            replaces: None,
        };
        ids.push(tx.archive(&r, &archived).await.unwrap());
    }
    assert!(tx.remove_member(&r, &bea).await.unwrap());
    tx.commit().await.unwrap();
    let bodies = |page: &[ucbridge::store::ArchivedMessage]| page.iter().map(|m| m.body.clone()).collect::<Vec<_>>();
    let (first, complete) = store.archive_page(&r, Page::After(0, 3)).await.unwrap();
    assert_eq!((bodies(&first), complete), (vec!["m0 ✓".into(), "m1 ✓".into(), "m2 ✓".into()], false));
    let (rest, complete) = store.archive_page(&r, Page::After(ids[5], 3)).await.unwrap();
    assert_eq!((bodies(&rest), complete), (vec!["m6 ✓".to_owned()], true));
    let (last, _) = store.archive_page(&r, Page::Before(i64::MAX, 2)).await.unwrap();
    assert_eq!(bodies(&last), vec!["m5 ✓".to_owned(), "m6 ✓".to_owned()]);
    assert_eq!(store.archive_count(&r).await.unwrap(), 7);
    // MAM filters: an id range, paged within; one sender or nick; a time range.
    let between = ArchiveFilter { after_id: Some(ids[1]), before_id: Some(ids[5]), ..ArchiveFilter::default() };
    let (mid, complete) = store.archive_search(&r, Page::After(0, 2), &between).await.unwrap();
    assert_eq!((bodies(&mid), complete), (vec!["m2 ✓".to_owned(), "m3 ✓".to_owned()], false));
    let (newest, _) = store.archive_search(&r, Page::Before(i64::MAX, 1), &between).await.unwrap();
    assert_eq!(bodies(&newest), vec!["m4 ✓".to_owned()]);
    assert_eq!(store.archive_count_matching(&r, &between).await.unwrap(), 3);
    let by = |sender: Option<String>, nick: Option<&str>| ArchiveFilter {
        sender,
        nick: nick.map(str::to_owned),
        ..ArchiveFilter::default()
    };
    assert_eq!(store.archive_count_matching(&r, &by(Some(ann.key()), None)).await.unwrap(), 7);
    assert_eq!(store.archive_count_matching(&r, &by(Some(bea.key()), None)).await.unwrap(), 0);
    assert_eq!(store.archive_count_matching(&r, &by(None, Some("Ann"))).await.unwrap(), 7);
    assert_eq!(store.archive_count_matching(&r, &by(None, Some("Bea"))).await.unwrap(), 0);
    let ts = first[0].ts;
    let since = |start_ms, end_ms| ArchiveFilter { start_ms, end_ms, ..ArchiveFilter::default() };
    assert_eq!(store.archive_count_matching(&r, &since(Some(ts), None)).await.unwrap(), 7);
    assert_eq!(store.archive_count_matching(&r, &since(Some(ts + 3_600_000), None)).await.unwrap(), 0);
    assert_eq!(store.archive_count_matching(&r, &since(None, Some(ts - 1))).await.unwrap(), 0);
    store.set_archive_event(&r, ids[3], "$three").await.unwrap();
    assert_eq!(store.archive_id_of_event(&r, "$three").await.unwrap(), Some(ids[3]));
    assert_eq!(store.event_of_archived(&r, ids[3]).await.unwrap(), Some(("$three".to_owned(), ann.clone())));
    assert_eq!(store.room_members(&r).await.unwrap().len(), 1);
}

async fn members_are_in_the_order_they_joined_whatever_changed_since(db: &TestDb) {
    let store = db.open().await;
    let r = room("!order:hs");
    let (ann, bea, cid) = (Party::Matrix(mxid("@ann:hs")), Party::Matrix(mxid("@bea:hs")), Party::Xmpp(jid("cid@x")));
    let member = |p: &Party, role, joined, nick: &str| RoomMember { party: p.clone(), role, joined, nick: nick.into() };
    let order = || async { store.room_members(&r).await.unwrap().into_iter().map(|m| m.party).collect::<Vec<_>>() };
    // The times are milliseconds: a pause makes each step later than the one before.
    let later = || tokio::time::sleep(std::time::Duration::from_millis(5));
    // Cid's key sorts last, Ann's first: only the times order them.
    store.save_member(&r, &member(&cid, Role::Owner, true, "Cid")).await.unwrap();
    later().await;
    store.save_member(&r, &member(&bea, Role::Participant, true, "Bea")).await.unwrap();
    later().await;
    store.save_member(&r, &member(&ann, Role::Participant, false, "Ann")).await.unwrap(); // invited
    later().await;
    assert_eq!(order().await, [cid.clone(), bea.clone(), ann.clone()]);
    // Bea's role and nick change: she still came before Ann. Ann accepts: she joins now.
    store.save_member(&r, &member(&bea, Role::Moderator, true, "Bea M")).await.unwrap();
    later().await;
    store.save_member(&r, &member(&ann, Role::Participant, true, "Ann")).await.unwrap();
    later().await;
    let mut tx = store.begin().await.unwrap();
    tx.save_member(&r, &member(&bea, Role::Participant, true, "Bea")).await.unwrap();
    assert_eq!(
        tx.room_members(&r).await.unwrap().into_iter().map(|m| m.party).collect::<Vec<_>>(),
        [cid.clone(), bea.clone(), ann.clone()]
    );
    tx.commit().await.unwrap();
    assert_eq!(order().await, [cid.clone(), bea.clone(), ann.clone()]);
    // Someone who leaves and comes back is the newest again.
    let mut tx = store.begin().await.unwrap();
    assert!(tx.remove_member(&r, &cid).await.unwrap());
    tx.commit().await.unwrap();
    later().await;
    store.save_member(&r, &member(&cid, Role::Participant, true, "Cid")).await.unwrap();
    assert_eq!(order().await, [bea, ann, cid]);
}

fn journal_row(user: &str, kind: &str, call: &str, key: &str, at: i64, notified: bool) -> NewJournalRow {
    NewJournalRow {
        user: user.into(),
        kind: kind.into(),
        call_id: call.into(),
        direction: "inbound".into(),
        number: Some(key.into()),
        number_key: key.into(),
        name: Some("Erika ✓".into()),
        contact_id: None,
        extension: Some("201".into()),
        started_at: at,
        ended_at: at + 5000,
        ring_ms: 4000,
        answered_by: None,
        notified,
        channels: if notified { "email".into() } else { String::new() },
        skip_reason: None,
    }
}

async fn call_events_replay_until_the_call_is_finished(db: &TestDb) {
    let store = db.open().await;
    let ev = |call: &str, n: u32| (call.to_owned(), format!("{{\"n\":{n}}}"));
    let mut tx = store.begin().await.unwrap();
    let ids = tx.add_call_events(&[ev("c1", 1), ev("c2", 1), ev("c1", 2)]).await.unwrap();
    tx.commit().await.unwrap();
    assert!(ids.iter().all(Option::is_some));
    assert!(ids[0] < ids[1] && ids[1] < ids[2]);
    store.close().await;
    // After a restart the events are there, in order.
    let store = db.open().await;
    let pending = store.pending_call_events().await.unwrap();
    assert_eq!(pending.iter().map(|(_, e)| e.as_str()).collect::<Vec<_>>(), ["{\"n\":1}", "{\"n\":1}", "{\"n\":2}"]);
    // Finishing a call drops its events, once; later events of it are not stored.
    let mut tx = store.begin().await.unwrap();
    assert!(tx.finish_call("c1").await.unwrap());
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    assert!(!tx.finish_call("c1").await.unwrap(), "a call is finished once");
    assert_eq!(tx.add_call_events(&[ev("c1", 3), ev("c3", 1)]).await.unwrap()[0], None);
    tx.commit().await.unwrap();
    let pending = store.pending_call_events().await.unwrap();
    assert_eq!(pending.len(), 2, "{pending:?}");
    store.drop_call_event(pending[0].0).await.unwrap();
    assert_eq!(store.pending_call_events().await.unwrap().len(), 1);
    // An uncommitted finish changes nothing.
    {
        let mut tx = store.begin().await.unwrap();
        assert!(tx.finish_call("c3").await.unwrap());
    }
    assert_eq!(store.pending_call_events().await.unwrap().len(), 1);
    assert_eq!(store.prune_calls_done(0).await.unwrap(), 0);
    assert_eq!(store.prune_calls_done(ucbridge::store::now_ms() + 1000).await.unwrap(), 1);
}

async fn call_journal_facts_and_settling(db: &TestDb) {
    let store = db.open().await;
    let mut tx = store.begin().await.unwrap();
    let a = tx.add_journal(&journal_row("anna", "missed", "k1", "+4930123", 1_000, true)).await.unwrap();
    let b = tx.add_journal(&journal_row("anna", "missed", "k2", "+4930123", 2_000, false)).await.unwrap();
    tx.add_journal(&journal_row("anna", "missed", "k3", "+4930999", 3_000, true)).await.unwrap();
    tx.add_journal(&journal_row("ben", "answered", "k1", "+4930123", 1_000, false)).await.unwrap();
    tx.commit().await.unwrap();
    // One row per call, person and kind.
    let mut tx = store.begin().await.unwrap();
    assert!(tx.add_journal(&journal_row("anna", "missed", "k1", "+4930123", 1_000, true)).await.is_err());
    drop(tx);
    assert_eq!(store.notices_since("anna", "+4930123", 0).await.unwrap(), (1, Some(1_000)));
    assert_eq!(store.notices_since("anna", "+4930123", 1_500).await.unwrap(), (0, None));
    assert_eq!(store.last_notice("anna", "+4930123").await.unwrap(), Some(1_000));
    assert_eq!(store.last_notice("ben", "+4930123").await.unwrap(), None);

    let mut tx = store.begin().await.unwrap();
    let open = tx.open_missed_calls("anna", 2_500).await.unwrap();
    assert_eq!(open.iter().map(|r| r.id).collect::<Vec<_>>(), [a, b]);
    assert_eq!(open[0].entry, journal_row("anna", "missed", "k1", "+4930123", 1_000, true));
    tx.mark_processed(&[a, b], "out1", 9_000).await.unwrap();
    tx.commit().await.unwrap();

    let all = store.journal(&JournalQuery { user: Some("anna".into()), ..Default::default() }).await.unwrap();
    assert_eq!(all.iter().map(|r| r.entry.call_id.as_str()).collect::<Vec<_>>(), ["k3", "k2", "k1"]);
    assert!(all[1].processed && all[1].processed_by.as_deref() == Some("out1") && all[1].processed_at == Some(9_000));
    assert!(!all[0].processed);
    let q = JournalQuery {
        from: Some(1_000),
        to: Some(3_000),
        kind: Some("missed".into()),
        limit: 10,
        ..Default::default()
    };
    let some = store.journal(&q).await.unwrap();
    assert_eq!(some.iter().map(|r| r.id).collect::<Vec<_>>(), [b, a]);
    let answered = JournalQuery { kind: Some("answered".into()), ..Default::default() };
    assert_eq!(store.journal(&answered).await.unwrap()[0].entry.user, "ben");

    // Last logon: the latest of a person's accounts; never goes back.
    assert_eq!(store.last_logon(&["matrix:@anna:hs".into()]).await.unwrap(), None);
    store.record_logon("matrix:@anna:hs", 5_000).await.unwrap();
    store.record_logon("matrix:@anna:hs", 4_000).await.unwrap();
    store.record_logon("xmpp:anna@x", 6_000).await.unwrap();
    assert_eq!(store.last_logon(&["matrix:@anna:hs".into()]).await.unwrap(), Some(5_000));
    assert_eq!(store.last_logon(&["matrix:@anna:hs".into(), "xmpp:anna@x".into()]).await.unwrap(), Some(6_000));
}

async fn the_instance_id_is_made_once_and_kept(db: &TestDb) {
    let store = db.open().await;
    let id = store.instance_id().await.unwrap();
    assert_eq!(id.len(), 8);
    assert_eq!(store.instance_id().await.unwrap(), id);
    store.close().await;
    assert_eq!(db.open().await.instance_id().await.unwrap(), id, "kept across a restart");
}

async fn sms_conversations_messages_and_usage(db: &TestDb) {
    use ucbridge::core::action::SmsOrigin;
    use ucbridge::core::ids::PhoneNumber;
    use ucbridge::store::SentSms;
    let store = db.open().await;
    let phone = PhoneNumber::parse("+4917612345678").unwrap();
    let (bob, alice) = (Party::Matrix(mxid("@bob:hs")), Party::Xmpp(jid("alice@x")));
    let mut tx = store.begin().await.unwrap();
    // An invitation alone is no "last writer".
    tx.set_sms_room(&bob, &phone, &room("!s:hs")).await.unwrap();
    assert_eq!(tx.last_sms_writer(&phone).await.unwrap().map(|(p, _)| p), None);
    tx.touch_sms_conversation(&bob, &phone, None).await.unwrap();
    assert_eq!(tx.last_sms_writer(&phone).await.unwrap().map(|(p, _)| p), Some(bob.clone()));
    assert_eq!(tx.sms_by_room(&room("!s:hs")).await.unwrap(), Some((bob.clone(), phone.clone())));
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    tx.touch_sms_conversation(&alice, &phone, None).await.unwrap();
    assert_eq!(tx.last_sms_writer(&phone).await.unwrap().map(|(p, _)| p), Some(alice.clone()));
    assert!(tx.claim_sms_inbound("kannel", "id-1").await.unwrap());
    assert!(!tx.claim_sms_inbound("kannel", "id-1").await.unwrap());
    assert_eq!(tx.sms_usage_since(&bob, 0).await.unwrap(), 0);
    tx.add_sms_usage(&bob, 3).await.unwrap();
    tx.add_sms_usage(&bob, 2).await.unwrap();
    assert_eq!(tx.sms_usage_since(&bob, 0).await.unwrap(), 5);
    assert_eq!(tx.sms_usage_since(&alice, 0).await.unwrap(), 0);
    tx.commit().await.unwrap();
    assert_eq!(store.sms_room(&bob, &phone).await.unwrap(), Some(room("!s:hs")));
    store.save_sms_room(&bob, &phone, None).await.unwrap();
    assert_eq!(store.sms_room(&bob, &phone).await.unwrap(), None);

    let origin = SmsOrigin::Matrix { room: room("!s:hs"), user: mxid("@bob:hs"), event_id: "$e".into() };
    let sent = SentSms {
        reference: "ucb-1-5".into(),
        provider_id: None,
        phone: phone.clone(),
        parts: 2,
        origin: Some(origin),
        state: "sending".into(),
        delivered_parts: 0,
    };
    store.record_sent_sms(&sent).await.unwrap();
    // A delivery report that comes before the acceptance is recorded keeps its state.
    assert!(store.update_sms_state("ucb-1-5", "delivered", 2).await.unwrap());
    assert!(!store.update_sms_state("ucb-1-5", "delivered", 2).await.unwrap(), "a repeated report changes nothing");
    store.mark_sms_accepted("ucb-1-5", Some("gw-9")).await.unwrap();
    let got = store.sent_sms_by_any("gw-9").await.unwrap().unwrap();
    assert_eq!((got.state.as_str(), got.provider_id.as_deref(), got.origin), ("delivered", Some("gw-9"), sent.origin));
    assert!(store.sent_sms("nope").await.unwrap().is_none());
}

/// Issue 12: a concatenated SMS is reported once per part. The SMS is delivered when every part
/// was (a repeated report of a part counts once), failed when any part failed; parts reported
/// at once all count, and exactly one report sees the SMS become delivered.
async fn sms_delivery_reports_count_each_part_once(db: &TestDb) {
    use ucbridge::core::ids::PhoneNumber;
    use ucbridge::store::SentSms;
    let store = db.open().await;
    let record = |reference: &str, parts: u32| SentSms {
        reference: reference.into(),
        provider_id: None,
        phone: PhoneNumber::parse("+4917612345678").unwrap(),
        parts,
        origin: None,
        state: "accepted".into(),
        delivered_parts: 0,
    };
    let report = |id: &'static str, part: &'static str, status: &'static str| {
        let store = store.clone();
        async move {
            let mut tx = store.begin().await.unwrap();
            let r = tx.report_sms_part(id, part, status).await.unwrap();
            tx.commit().await.unwrap();
            r.map(|r| (r.sent.state, r.state, r.delivered_parts))
        }
    };
    store.record_sent_sms(&record("ucb-3", 3)).await.unwrap();
    store.mark_sms_accepted("ucb-3", Some("gw-3")).await.unwrap();
    assert_eq!(report("ucb-3", "p1", "delivered").await, Some(("accepted".into(), "accepted".into(), 1)));
    assert_eq!(report("ucb-3", "p1", "delivered").await, Some(("accepted".into(), "accepted".into(), 1)), "repeat");
    assert_eq!(report("gw-3", "p2", "delivered").await, Some(("accepted".into(), "accepted".into(), 2)), "by gw id");
    assert_eq!(report("ucb-3", "p3", "delivered").await, Some(("accepted".into(), "delivered".into(), 3)));
    assert_eq!(
        store.sent_sms("ucb-3").await.unwrap().map(|s| (s.state, s.delivered_parts)),
        Some(("delivered".into(), 3))
    );
    assert_eq!(report("nope", "p1", "delivered").await, None);

    store.record_sent_sms(&record("ucb-f", 2)).await.unwrap();
    assert_eq!(report("ucb-f", "p1", "delivered").await, Some(("accepted".into(), "accepted".into(), 1)));
    assert_eq!(report("ucb-f", "p2", "failed").await, Some(("accepted".into(), "failed".into(), 1)));
    assert_eq!(report("ucb-f", "p2", "failed").await, Some(("failed".into(), "failed".into(), 1)), "told once");

    // Eight parts reported at once.
    store.record_sent_sms(&record("ucb-8", 8)).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                loop {
                    let attempt = async {
                        let mut tx = store.begin().await?;
                        let r = tx.report_sms_part("ucb-8", &format!("p{i}"), "delivered").await?;
                        // Hold the transaction a moment, so the reports overlap.
                        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
                        tx.commit().await?;
                        Ok::<_, ucbridge::store::StoreError>(r)
                    };
                    // A backend may refuse a racing writer (SQLite: busy); Kannel retries then.
                    if let Ok(Some(r)) = attempt.await {
                        return r.state == "delivered" && r.sent.state != "delivered";
                    }
                }
            })
        })
        .collect();
    let mut became_delivered = 0;
    for t in tasks {
        became_delivered += usize::from(t.await.unwrap());
    }
    assert_eq!(became_delivered, 1, "exactly one report completes the SMS");
    assert_eq!(
        store.sent_sms("ucb-8").await.unwrap().map(|s| (s.state, s.delivered_parts)),
        Some(("delivered".into(), 8))
    );
}

/// L11: the daily SMS cap is one conditional upsert. Sequentially it counts parts per person and
/// day; concurrently, people racing their own sends cannot take more than the cap together.
async fn phones_in_rooms_route_to_the_room_that_wrote_last(db: &TestDb) {
    use ucbridge::core::ids::PhoneNumber;
    let store = db.open().await;
    let phone = PhoneNumber::parse("+4917612345679").unwrap();
    let ghost = Party::Matrix(mxid("@_sms_+4917612345679:hs"));
    let (ann, bea) = (Party::Matrix(mxid("@ann:hs")), Party::Xmpp(jid("bea@x")));
    let (r1, r2) = (room("!p1:hs"), room("!p2:hs"));
    let member = RoomMember { party: ghost.clone(), role: Role::Participant, joined: true, nick: "+49".into() };
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.last_phone_room(&phone).await.unwrap(), None);
    for r in [&r1, &r2] {
        tx.save_member(r, &member).await.unwrap();
    }
    tx.add_room_phone(&r1, &ghost, &phone, &ann).await.unwrap();
    tx.add_room_phone(&r2, &ghost, &phone, &ann).await.unwrap();
    // Added again: billed to whoever added it last.
    tx.add_room_phone(&r2, &ghost, &phone, &bea).await.unwrap();
    assert_eq!(tx.room_phone_adder(&r2, &ghost).await.unwrap(), Some(bea.clone()));
    assert_eq!(tx.room_phone_adder(&r1, &ghost).await.unwrap(), Some(ann.clone()));
    assert_eq!(tx.room_phone_adder(&r1, &ann).await.unwrap(), None);
    tx.touch_room_phone(&r1, &ghost).await.unwrap();
    assert_eq!(tx.last_phone_room(&phone).await.unwrap().map(|(r, _)| r), Some(r1.clone()));
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    tx.touch_room_phone(&r2, &ghost).await.unwrap();
    let (last, at) = tx.last_phone_room(&phone).await.unwrap().unwrap();
    assert!(last == r2 && at > 0);
    // Removed from the room (a kick): that room no longer gets its SMS.
    assert!(tx.remove_member(&r2, &ghost).await.unwrap());
    assert_eq!(tx.last_phone_room(&phone).await.unwrap().map(|(r, _)| r), Some(r1.clone()));
    tx.commit().await.unwrap();
}

async fn the_daily_sms_cap_is_taken_atomically(db: &TestDb) {
    let store = db.open().await;
    let (bob, alice) = (Party::Matrix(mxid("@bob:hs")), Party::Xmpp(jid("alice@x")));
    let (day, next_day) = (86_400_000 * 20_000, 86_400_000 * 20_001);
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.take_daily_sms(&bob, day, 3, 5).await.unwrap(), Ok(()));
    assert_eq!(tx.take_daily_sms(&bob, day, 3, 5).await.unwrap(), Err(3), "3 + 3 > 5: refused, nothing taken");
    assert_eq!(tx.take_daily_sms(&bob, day, 2, 5).await.unwrap(), Ok(()));
    assert_eq!(tx.take_daily_sms(&bob, day, 1, 5).await.unwrap(), Err(5));
    assert_eq!(tx.take_daily_sms(&bob, next_day, 5, 5).await.unwrap(), Ok(()), "a new day");
    assert_eq!(tx.take_daily_sms(&alice, day, 6, 5).await.unwrap(), Err(0), "more than the cap at once");
    assert_eq!(tx.take_daily_sms(&alice, day, 1000, 0).await.unwrap(), Ok(()), "0: no cap");
    tx.return_daily_sms(&bob, day, 2).await.unwrap();
    assert_eq!(tx.daily_sms(&bob, day).await.unwrap(), 3);
    tx.commit().await.unwrap();

    // Eight sends of one person at once, each holding its transaction open a moment: exactly the
    // five that fit are taken.
    let carol = Party::Matrix(mxid("@carol:hs"));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, carol) = (store.clone(), carol.clone());
            tokio::spawn(async move {
                let mut tx = store.begin().await?;
                let taken = tx.take_daily_sms(&carol, day, 1, 5).await?;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                tx.commit().await?;
                Ok::<_, ucbridge::store::StoreError>(taken.is_ok())
            })
        })
        .collect();
    let mut taken = 0;
    for t in tasks {
        // A backend may also refuse a racing writer outright (SQLite: busy); that takes nothing.
        if let Ok(Ok(true)) = t.await {
            taken += 1;
        }
    }
    let mut tx = store.begin().await.unwrap();
    let used = tx.daily_sms(&carol, day).await.unwrap();
    tx.commit().await.unwrap();
    assert!(used <= 5 && used == taken, "{taken} sends taken, {used} parts counted, cap 5");
    assert!(taken >= 1, "at least one send fits");
}

async fn contact_groups_keep_their_members(db: &TestDb) {
    let store = db.open().await;
    let admin = Party::Matrix(MatrixUserId::parse("@admin:hs").unwrap());
    let (bob, ann) = (Party::Matrix(MatrixUserId::parse("@bob:hs").unwrap()), Party::Xmpp(jid("ann@x")));
    assert!(store.create_group("sales", &admin).await.unwrap());
    assert!(!store.create_group("sales", &admin).await.unwrap(), "a name is taken once");
    assert!(store.create_group("empty", &admin).await.unwrap());
    assert!(store.add_group_member("sales", &bob).await.unwrap());
    assert!(store.add_group_member("sales", &ann).await.unwrap());
    assert!(!store.add_group_member("sales", &ann).await.unwrap());
    assert_eq!(store.group_members("sales").await.unwrap(), Some(vec![bob.clone(), ann.clone()]));
    assert_eq!(store.group_members("nope").await.unwrap(), None);
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.group_members("sales").await.unwrap().map(|m| m.len()), Some(2));
    tx.commit().await.unwrap();
    assert_eq!(
        store.groups().await.unwrap(),
        vec![("empty".to_owned(), vec![]), ("sales".to_owned(), vec![bob.clone(), ann.clone()])]
    );
    assert!(store.remove_group_member("sales", &bob).await.unwrap());
    assert!(!store.remove_group_member("sales", &bob).await.unwrap());
    assert!(store.delete_group("sales").await.unwrap());
    assert!(!store.delete_group("sales").await.unwrap());
    assert_eq!(store.group_members("sales").await.unwrap(), None);
    store.create_group("sales", &admin).await.unwrap();
    assert_eq!(store.group_members("sales").await.unwrap(), Some(vec![]), "a deleted group's members are gone");
}

async fn own_groups_belong_to_their_owner(db: &TestDb) {
    let store = db.open().await;
    let (bob, ann) = (Party::Matrix(MatrixUserId::parse("@bob:hs").unwrap()), Party::Xmpp(jid("ann@x")));
    let carl = Party::Xmpp(jid("carl@x"));
    let mut tx = store.begin().await.unwrap();
    assert!(tx.create_own_group(&bob, "team").await.unwrap());
    assert!(!tx.create_own_group(&bob, "team").await.unwrap(), "a name is taken once per owner");
    assert!(tx.create_own_group(&ann, "team").await.unwrap(), "another owner may use the same name");
    // Added in the order of their keys: members added within one millisecond sort by key.
    assert!(tx.add_own_group_member(&bob, "team", &ann).await.unwrap());
    assert!(tx.add_own_group_member(&bob, "team", &carl).await.unwrap());
    assert!(!tx.add_own_group_member(&bob, "team", &ann).await.unwrap());
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.own_group_members(&bob, "team").await.unwrap(), Some(vec![ann.clone(), carl.clone()]));
    assert_eq!(tx.own_group_members(&ann, "team").await.unwrap(), Some(vec![]), "owners do not share members");
    assert_eq!(tx.own_group_members(&carl, "team").await.unwrap(), None);
    assert_eq!(tx.own_groups(&bob).await.unwrap(), vec![("team".to_owned(), vec![ann.clone(), carl.clone()])]);
    assert!(tx.remove_own_group_member(&bob, "team", &carl).await.unwrap());
    assert!(!tx.remove_own_group_member(&bob, "team", &carl).await.unwrap());
    assert!(tx.delete_own_group(&bob, "team").await.unwrap());
    assert!(!tx.delete_own_group(&bob, "team").await.unwrap());
    assert!(tx.create_own_group(&bob, "team").await.unwrap());
    assert_eq!(tx.own_group_members(&bob, "team").await.unwrap(), Some(vec![]), "a deleted group's members are gone");
    assert_eq!(tx.own_groups(&ann).await.unwrap(), vec![("team".to_owned(), vec![])]);
    tx.commit().await.unwrap();
    assert_eq!(store.group_members("team").await.unwrap(), None, "own groups are not the admins' groups");
}

async fn block_list_settings_and_imports(db: &TestDb) {
    let store = db.open().await;
    let admin = Party::Xmpp(jid("admin@x"));
    assert!(store.block("number", "+49301234567", &admin).await.unwrap());
    assert!(!store.block("number", "+49301234567", &admin).await.unwrap());
    assert!(store.block("extension", "299", &admin).await.unwrap());
    let list = store.block_list().await.unwrap();
    assert_eq!(
        list.iter().map(|b| (b.kind.as_str(), b.entry.as_str())).collect::<Vec<_>>(),
        [("number", "+49301234567"), ("extension", "299")]
    );
    assert_eq!(list[0].added_by, "xmpp:admin@x");
    assert!(store.unblock("extension", "299").await.unwrap());
    assert!(!store.unblock("number", "299").await.unwrap());

    store.set_call_setting("policy", Some("first"), &admin).await.unwrap();
    store.set_call_setting("short_ring", Some("on"), &admin).await.unwrap();
    store.set_call_setting("short_ring", Some("off"), &admin).await.unwrap();
    assert_eq!(
        store.call_settings().await.unwrap(),
        vec![("policy".to_owned(), "first".to_owned()), ("short_ring".to_owned(), "off".to_owned())]
    );
    store.set_call_setting("policy", None, &admin).await.unwrap();
    assert_eq!(store.call_settings().await.unwrap().len(), 1);

    let bob = Party::Matrix(MatrixUserId::parse("@bob:hs").unwrap());
    let mut tx = store.begin().await.unwrap();
    tx.set_user_setting(&bob, "missed_calls", Some("off")).await.unwrap();
    tx.set_user_setting(&bob, "language", Some("de")).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    tx.set_user_setting(&bob, "missed_calls", Some("on")).await.unwrap();
    drop(tx);
    assert_eq!(
        store.user_settings().await.unwrap(),
        vec![
            ("matrix:@bob:hs".to_owned(), "language".to_owned(), "de".to_owned()),
            ("matrix:@bob:hs".to_owned(), "missed_calls".to_owned(), "off".to_owned()),
        ]
    );
    let mut tx = store.begin().await.unwrap();
    tx.set_user_setting(&bob, "language", None).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.user_settings().await.unwrap().len(), 1);

    let import = |content: &str, n| ucbridge::store::ContactImport {
        name: "team.vcf".into(),
        format: "vcard".into(),
        content: content.into(),
        contacts: n,
    };
    store.save_contact_import(&import("v1", 1), &admin).await.unwrap();
    store.save_contact_import(&import("v2", 2), &admin).await.unwrap();
    assert_eq!(store.contact_imports().await.unwrap(), vec![import("v2", 2)], "same name: replaced");
}

async fn a_portal_link_is_undone(db: &TestDb) {
    let store = db.open().await;
    let room = RoomId::parse("!linked:hs").unwrap();
    store.save_linked_muc(&room, &jid("team@conference.x")).await.unwrap();
    store.save_xmpp_occupant(&room, &MatrixUserId::parse("@bob:hs").unwrap(), "bob").await.unwrap();
    assert!(store.delete_linked_muc(&room).await.unwrap());
    assert!(!store.delete_linked_muc(&room).await.unwrap());
    assert!(store.linked_mucs().await.unwrap().is_empty());
    assert!(store.xmpp_occupants(&room).await.unwrap().is_empty());
    store.save_linked_muc(&room, &jid("team@conference.x")).await.unwrap();
    assert_eq!(store.linked_mucs().await.unwrap().len(), 1, "the MUC can be linked again");
}

async fn linked_messages_are_found_by_the_rooms_id_and_the_senders(db: &TestDb) {
    use ucbridge::store::LinkedMessage;
    let store = db.open().await;
    let (r, muc) = (room("!linked:hs"), jid("team@conference.x"));
    let m = |event: &str, nick: &str, own: &str, sid: Option<&str>, from_xmpp: bool| LinkedMessage {
        room: r.clone(),
        event_id: event.into(),
        muc: muc.clone(),
        nick: nick.into(),
        matrix_user: mxid("@bob:hs"),
        message_id: Some(own.into()),
        stanza_id: sid.map(Into::into),
        from_xmpp,
    };
    store.save_linked_message(&m("$1", "ann", "a1", Some("s1"), true)).await.unwrap();
    store.save_linked_message(&m("$1", "ann", "a1", Some("s1"), true)).await.unwrap(); // a retry: once
    store.save_linked_message(&m("$2", "bob", "ucb-1", None, false)).await.unwrap();
    let by_sid = store.linked_message_by_stanza(&muc, "s1").await.unwrap().unwrap();
    assert_eq!(by_sid, m("$1", "ann", "a1", Some("s1"), true));
    assert_eq!(store.linked_message_by_own_id(&muc, "ann", "a1").await.unwrap().unwrap().event_id, "$1");
    assert_eq!(store.linked_message_by_own_id(&muc, "bob", "a1").await.unwrap(), None, "another's id");
    // The MUC reflects the message from Matrix: it gets the room's id, once.
    assert!(store.set_linked_stanza_id(&muc, "ucb-1", "s2").await.unwrap());
    assert!(!store.set_linked_stanza_id(&muc, "ucb-1", "s3").await.unwrap());
    assert!(!store.set_linked_stanza_id(&muc, "a1", "s4").await.unwrap(), "not for XMPP's own messages");
    let mine = store.linked_message_by_event(&r, "$2").await.unwrap().unwrap();
    assert_eq!(mine.stanza_id.as_deref(), Some("s2"));
    assert_eq!(store.linked_message_by_stanza(&jid("other@conference.x"), "s2").await.unwrap(), None);
}

async fn edits_reactions_retractions_and_media_links(db: &TestDb) {
    use ucbridge::store::{ArchiveKey, MediaLink, Reaction};
    let store = db.open().await;
    let dm = room("!dm:hs");
    let bob = mxid("@bob:hs");
    // A correction points at its original; `original` follows it.
    let m = |event: &str, stanza: &str, edit_of: Option<&str>| MappedMessage {
        room: dm.clone(),
        event_id: event.into(),
        xmpp: jid("alice@x"),
        matrix: bob.clone(),
        stanza_id: stanza.into(),
        from_xmpp: true,
        markable: false,
        edit_of: edit_of.map(str::to_owned),
    };
    store.map_message(&m("$orig", "s1", None)).await.unwrap();
    store.map_message(&m("$edit", "s2", Some("$orig"))).await.unwrap();
    let edit = store.message_by_stanza(&jid("alice@x"), "s2").await.unwrap().unwrap();
    assert_eq!(edit.edit_of.as_deref(), Some("$orig"));
    assert_eq!(store.original(edit).await.unwrap().stanza_id, "s1");
    assert_eq!(
        store.latest_from_xmpp(&dm).await.unwrap().unwrap().event_id,
        "$orig",
        "corrections are no new messages"
    );

    // Reactions: one row per key, found by their event, removed one by one.
    let r = |key: &str, event: Option<&str>| Reaction {
        room: dm.clone(),
        target_event: "$orig".into(),
        reactor: "@bob:hs".into(),
        key: key.into(),
        event_id: event.map(str::to_owned),
    };
    let mut tx = store.begin().await.unwrap();
    tx.save_reaction(&r("👍", Some("$r1"))).await.unwrap();
    tx.save_reaction(&r("🎉", None)).await.unwrap();
    tx.save_reaction(&r("🎉", Some("$r2"))).await.unwrap(); // the event, once known
    assert_eq!(tx.reaction_by_event(&dm, "$r2").await.unwrap(), Some(r("🎉", Some("$r2"))));
    tx.commit().await.unwrap();
    let keys: Vec<_> = store.reactions_of(&dm, "$orig", "@bob:hs").await.unwrap().into_iter().map(|r| r.key).collect();
    assert_eq!(keys.len(), 2);
    assert!(keys.contains(&"👍".to_owned()) && keys.contains(&"🎉".to_owned()));
    store.remove_reaction(&r("👍", None)).await.unwrap();
    assert_eq!(store.reactions_of(&dm, "$orig", "@bob:hs").await.unwrap(), vec![r("🎉", Some("$r2"))]);
    assert!(store.reactions_of(&dm, "$orig", "@ann:hs").await.unwrap().is_empty());

    // The room archive: a correction names its original; a retracted message is gone.
    let hosted = room("!room:hs");
    let ann = Party::Matrix(mxid("@ann:hs"));
    let mut tx = store.begin().await.unwrap();
    let first = NewArchived {
        sender: &ann,
        nick: "Ann",
        body: "the plan",
        kind: TextKind::Text,
        origin_id: Some("x-1"),
        event_id: Some("$a1"),
        replaces: None,
    };
    let a1 = tx.archive(&hosted, &first).await.unwrap();
    let fix = NewArchived {
        body: "the new plan",
        origin_id: Some("x-2"),
        event_id: None,
        replaces: Some((a1, "x-1")),
        ..first
    };
    let a2 = tx.archive(&hosted, &fix).await.unwrap();
    let by_origin = tx.archived(&hosted, ArchiveKey::XmppId("x-2")).await.unwrap().unwrap();
    assert_eq!((by_origin.id, by_origin.replaces.clone()), (a2, Some((a1, "x-1".to_owned()))));
    assert_eq!(tx.archived(&hosted, ArchiveKey::Event("$a1")).await.unwrap().unwrap().id, a1);
    tx.commit().await.unwrap();
    store.set_archive_event(&hosted, a2, "$a2").await.unwrap();
    let own = store.archived(&hosted, ArchiveKey::XmppId(&format!("ucb-a{a2}"))).await.unwrap().unwrap();
    assert_eq!(own.event_id.as_deref(), Some("$a2"));
    // Reactions and a retraction are archived after the message (MAM serves them); the retracted
    // message and its correction stay as tombstones without content, no longer found by reference.
    let mut tx = store.begin().await.unwrap();
    let liked = ArchivedAct::Reactions { target: a1, keys: vec!["👍".to_owned(), "a\nb".to_owned()] };
    let r1 = tx.archive_act(&hosted, &ann, "Ann", Some("x-3"), &liked).await.unwrap();
    let gone = tx.retract_archived(&hosted, a1, &ann, "Ann", Some("x-4")).await.unwrap();
    assert!(tx.archived(&hosted, ArchiveKey::Id(a1)).await.unwrap().is_none());
    assert!(tx.archived(&hosted, ArchiveKey::XmppId("x-2")).await.unwrap().is_none(), "the correction too");
    assert!(tx.archived(&hosted, ArchiveKey::XmppId("x-3")).await.unwrap().is_none(), "an act is no message");
    tx.commit().await.unwrap();
    let (all, _) = store.archive_search(&hosted, Page::After(0, 10), &ArchiveFilter::default()).await.unwrap();
    assert_eq!(all.iter().map(|m| m.id).collect::<Vec<_>>(), vec![a1, a2, r1, gone]);
    for tomb in &all[..2] {
        assert_eq!(tomb.body, "");
        assert_eq!(tomb.retracted.map(|r| r.by), Some(gone));
    }
    assert_eq!(all[2].act, Some(liked));
    assert_eq!(all[3].act, Some(ArchivedAct::Retract { target: a1 }));
    assert!(store.archive_page(&hosted, Page::After(0, 10)).await.unwrap().0.is_empty(), "history has none");

    // Media links: found by token, forgotten with their event.
    let link = MediaLink {
        token: "t0k3n".into(),
        mxc: "mxc://hs/abc".into(),
        name: "report ü.pdf".into(),
        mimetype: Some("application/pdf".into()),
        size: Some(12345),
        room: dm.clone(),
        event_id: "$file".into(),
        created_at: 1_800_000_000_000,
    };
    let mut tx = store.begin().await.unwrap();
    tx.save_media(&link).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.media_by_token("t0k3n").await.unwrap(), Some(link));
    assert_eq!(store.media_by_token("other").await.unwrap(), None);
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.forget_media(&dm, "$file").await.unwrap(), 1);
    tx.commit().await.unwrap();
    assert_eq!(store.media_by_token("t0k3n").await.unwrap(), None);
}

async fn presence_consent_requests_answers_and_shares(db: &TestDb) {
    let store = db.open().await;
    let (bob, alice, mallory) = (mxid("@bob:hs"), jid("alice@x"), jid("mallory@evil"));
    // A stranger: neither a conversation nor an answer.
    assert!(!store.presence_allowed(&bob, &mallory).await.unwrap());
    assert_eq!(store.consent(&bob, &mallory).await.unwrap(), None);
    assert!(store.add_consent_request(&bob, &mallory).await.unwrap());
    assert!(!store.add_consent_request(&bob, &mallory).await.unwrap(), "one request per requester");
    assert_eq!(store.consent(&bob, &mallory).await.unwrap(), Some(Consent::Pending));
    assert_eq!(store.open_consent_requests(&bob, "evil").await.unwrap(), (1, 1));
    assert!(!store.presence_allowed(&bob, &mallory).await.unwrap(), "a pending request allows nothing");
    // Denied, then approved: only an approval allows.
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.answer_consent(&bob, &mallory, Consent::Denied).await.unwrap(), Some(Consent::Pending));
    tx.commit().await.unwrap();
    assert!(!store.presence_allowed(&bob, &mallory).await.unwrap());
    assert_eq!(store.open_consent_requests(&bob, "evil").await.unwrap(), (0, 0));
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.answer_consent(&bob, &mallory, Consent::Approved).await.unwrap(), Some(Consent::Denied));
    assert_eq!(tx.consents_of(&bob).await.unwrap(), vec![("mallory@evil".to_owned(), Consent::Approved)]);
    tx.commit().await.unwrap();
    assert!(store.presence_allowed(&bob, &mallory).await.unwrap());
    assert!(!store.in_conversation(&bob, &mallory).await.unwrap(), "an approval is not a conversation");
    // A conversation: a DM counts once the Matrix user joined it.
    let dm =
        DirectChat { room: room("!dm:hs"), xmpp: alice.clone(), matrix: bob.clone(), peer: PeerMembership::Invited };
    store.save_dm(&dm).await.unwrap();
    assert!(!store.in_conversation(&bob, &alice).await.unwrap(), "invited is not joined");
    let mut tx = store.begin().await.unwrap();
    tx.set_peer_membership(&room("!dm:hs"), &bob, PeerMembership::Joined).await.unwrap();
    tx.commit().await.unwrap();
    assert!(store.in_conversation(&bob, &alice).await.unwrap());
    assert!(store.presence_allowed(&bob, &alice).await.unwrap());
    // A pending request that needs no answer any more goes.
    assert!(store.add_consent_request(&bob, &alice).await.unwrap());
    assert!(store.remove_consent_request(&bob, &alice).await.unwrap());
    assert!(!store.remove_consent_request(&bob, &alice).await.unwrap());
    // Shares of XMPP users with Matrix users, capped per domain.
    assert!(!store.shares_presence(&alice, &bob).await.unwrap());
    assert!(store.add_presence_share(&alice, &bob, 1).await.unwrap());
    assert!(store.shares_presence(&alice, &bob).await.unwrap());
    assert!(!store.add_presence_share(&jid("carol@x"), &bob, 1).await.unwrap(), "the domain's cap");
    store.remove_presence_share(&alice, &bob).await.unwrap();
    assert!(!store.shares_presence(&alice, &bob).await.unwrap());
}

async fn chatbot_rooms_and_contexts_survive_a_restart(db: &TestDb) {
    use ucbridge::chatbot::{Message, Role};
    let store = db.open().await;
    let anna = Party::Matrix(mxid("@anna:hs"));
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.chatbot_room_owner(&room("!c:hs")).await.unwrap(), None);
    tx.save_chatbot_room(&room("!c:hs"), &anna, false).await.unwrap();
    // A room of several people: no one's one-to-one chat, and forgotten when it is removed.
    tx.save_chatbot_room(&room("!g:hs"), &anna, true).await.unwrap();
    tx.save_chatbot_room(&room("!gone:hs"), &anna, true).await.unwrap();
    tx.forget_chatbot_room(&room("!gone:hs")).await.unwrap();
    tx.commit().await.unwrap();
    // Two conversations; the second answer drops nothing.
    store.chatbot_record("matrix:@anna:hs", None, "Hallo", "Hallo Anna!", 7).await.unwrap();
    store.chatbot_record("xmpp:ben@x", None, "Hi", "Hi Ben", 8).await.unwrap();
    let first = store.chatbot_turns("matrix:@anna:hs").await.unwrap();
    store.chatbot_record("matrix:@anna:hs", Some(first[0].id), "Und?", "Gut ✓", 9).await.unwrap();
    drop(store);
    let store = db.open().await;
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.chatbot_room_owner(&room("!c:hs")).await.unwrap(), Some(anna.clone()));
    assert_eq!(tx.chatbot_room_owner(&room("!g:hs")).await.unwrap(), None);
    assert_eq!(
        tx.chatbot_room(&room("!g:hs")).await.unwrap(),
        Some(ucbridge::store::ChatbotRoom { party: anna.clone(), shared: true })
    );
    assert_eq!(tx.chatbot_room(&room("!gone:hs")).await.unwrap(), None);
    tx.commit().await.unwrap();
    let turns: Vec<_> = store.chatbot_turns("matrix:@anna:hs").await.unwrap().into_iter().map(|t| t.message).collect();
    assert_eq!(
        turns,
        [
            Message::new(Role::User, "Hallo"),
            Message::new(Role::Assistant, "Hallo Anna!"),
            Message::new(Role::User, "Und?"),
            Message::new(Role::Assistant, "Gut ✓"),
        ]
    );
    assert_eq!(store.chatbot_answer_of(9).await.unwrap().as_deref(), Some("Gut ✓"));
    assert_eq!(store.chatbot_answer_of(10).await.unwrap(), None);
    // An image is kept with its action, byte for byte, for a retried delivery.
    let png = vec![0x89, b'P', b'N', b'G', 0, 255, 13, 10];
    assert_eq!(store.chatbot_image_of(12).await.unwrap(), None);
    store.chatbot_save_image(12, &png, "image/png").await.unwrap();
    assert_eq!(store.chatbot_image_of(12).await.unwrap(), Some((png, "image/png".to_owned())));
    assert_eq!(store.chatbot_image_of(13).await.unwrap(), None);
    // The MUCs it is in: who invited it, its nick; forgotten once.
    let team = jid("team@conference.x");
    store.save_chatbot_muc(&team, &anna, "Assistant").await.unwrap();
    assert_eq!(store.chatbot_muc(&team).await.unwrap(), Some((anna.clone(), "Assistant".to_owned())));
    assert_eq!(store.chatbot_mucs().await.unwrap(), [(team.clone(), "Assistant".to_owned())]);
    assert!(store.forget_chatbot_muc(&team).await.unwrap());
    assert!(!store.forget_chatbot_muc(&team).await.unwrap());
    assert_eq!(store.chatbot_muc(&team).await.unwrap(), None);
    // Keeping from the third turn forgets the first two.
    let ids: Vec<_> = store.chatbot_turns("matrix:@anna:hs").await.unwrap().iter().map(|t| t.id).collect();
    store.chatbot_record("matrix:@anna:hs", Some(ids[2]), "Noch was", "Ja", 11).await.unwrap();
    let contents: Vec<_> =
        store.chatbot_turns("matrix:@anna:hs").await.unwrap().into_iter().map(|t| t.message.content).collect();
    assert_eq!(contents, ["Und?", "Gut ✓", "Noch was", "Ja"]);
    // `/clear` forgets one conversation only.
    assert_eq!(store.chatbot_clear("matrix:@anna:hs").await.unwrap(), 4);
    assert!(store.chatbot_turns("matrix:@anna:hs").await.unwrap().is_empty());
    assert_eq!(store.chatbot_turns("xmpp:ben@x").await.unwrap().len(), 2);
    // Usage per person and day: tokens add up, images count apart.
    let ben = Party::Xmpp(jid("ben@x"));
    store.chatbot_add_usage(&anna, 120, 0).await.unwrap();
    store.chatbot_add_usage(&anna, 30, 0).await.unwrap();
    store.chatbot_add_usage(&ben, 0, 1).await.unwrap();
    assert_eq!(store.chatbot_tokens_today(&anna).await.unwrap(), (150, 150));
    assert_eq!(store.chatbot_tokens_today(&ben).await.unwrap(), (0, 150));
    let usage = store.chatbot_usage(1).await.unwrap();
    assert_eq!(
        usage,
        [
            ucbridge::store::ChatbotUsage { party: anna.clone(), messages: 2, tokens: 150, images: 0 },
            ucbridge::store::ChatbotUsage { party: ben, messages: 1, tokens: 0, images: 1 },
        ]
    );
    // An admin's clear-all forgets every conversation.
    assert_eq!(store.chatbot_clear_all().await.unwrap(), 2);
    assert!(store.chatbot_turns("xmpp:ben@x").await.unwrap().is_empty());
}

/// Chats in the journal: counted per person, conversation and day in one statement (repeats
/// of one entry in a batch added up), unread until read or answered, settled once by the sweep;
/// notes and tokens belong to one person.
async fn chat_journal_unread_notes_and_tokens(db: &TestDb) {
    use ucbridge::core::journal::ChatTouch;
    use ucbridge::store::ChatQuery;
    let store = db.open().await;
    let touch = |party: &str, other: &str, incoming, at| ChatTouch {
        party: party.into(),
        conversation: other.into(),
        kind: "direct",
        incoming,
        at,
    };
    let day = 20_000 * 86_400_000_i64;
    let mut tx = store.begin().await.unwrap();
    tx.touch_chats(&[
        touch("matrix:@a:hs", "xmpp:b@x", true, day + 10),
        touch("xmpp:b@x", "matrix:@a:hs", false, day + 10),
        touch("matrix:@a:hs", "xmpp:b@x", true, day + 20),
        touch("matrix:@a:hs", "xmpp:c@x", true, day + 30),
    ])
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let q = |party: &str| ChatQuery { party: party.into(), since: 0, limit: 10, ..Default::default() };
    let a = store.chat_journal(&q("matrix:@a:hs")).await.unwrap();
    assert_eq!(a.len(), 2);
    assert_eq!((a[0].conversation.as_str(), a[0].messages), ("xmpp:c@x", 1), "newest first");
    assert_eq!(
        (a[1].messages, a[1].first_at, a[1].last_at, a[1].unread_since),
        (2, day + 10, day + 20, Some(day + 10))
    );
    let b = store.chat_journal(&q("xmpp:b@x")).await.unwrap();
    assert_eq!((b.len(), b[0].unread_since), (1, None), "the sender's entry is not unread");
    let filtered = ChatQuery { contact: Some("C@".into()), ..q("matrix:@a:hs") };
    assert_eq!(store.chat_journal(&filtered).await.unwrap().len(), 1);

    // Due after the threshold; settled once (a summary sent: shown as missed).
    let due = store.due_missed_chats(day + 15, 10).await.unwrap();
    assert_eq!(due.iter().map(|e| e.conversation.as_str()).collect::<Vec<_>>(), ["xmpp:b@x"]);
    let mut tx = store.begin().await.unwrap();
    tx.mark_chats_notified(&[due[0].id], true).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.due_missed_chats(day + 100, 10).await.unwrap().len(), 1, "only c is left");
    let missed = ChatQuery { missed_only: true, ..q("matrix:@a:hs") };
    assert_eq!(store.chat_journal(&missed).await.unwrap().len(), 1);
    // Another message in the same chat: no second summary.
    let mut tx = store.begin().await.unwrap();
    tx.touch_chats(&[touch("matrix:@a:hs", "xmpp:b@x", true, day + 40)]).await.unwrap();
    tx.commit().await.unwrap();
    assert!(store.due_missed_chats(day + 100, 10).await.unwrap().iter().all(|e| e.conversation != "xmpp:b@x"));
    // Read: nothing waits and it is no longer missed.
    assert_eq!(store.mark_chat_read("matrix:@a:hs", "xmpp:b@x").await.unwrap(), 1);
    assert!(store.chat_journal(&missed).await.unwrap().is_empty());
    // An answer clears the unread state of c's chat too.
    let mut tx = store.begin().await.unwrap();
    tx.touch_chats(&[touch("matrix:@a:hs", "xmpp:c@x", false, day + 50)]).await.unwrap();
    tx.commit().await.unwrap();
    assert!(store.due_missed_chats(day + 100, 10).await.unwrap().is_empty());
    // A hosted room: writing there clears what waited, though it counts nothing for the writer.
    let room = ChatTouch { kind: "room", ..touch("matrix:@a:hs", "room:#r:hs", true, day + 60) };
    let mut tx = store.begin().await.unwrap();
    tx.touch_chats(&[room]).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.due_missed_chats(day + 100, 10).await.unwrap().len(), 1);
    let mut tx = store.begin().await.unwrap();
    tx.chat_answered("matrix:@a:hs", "room:#r:hs").await.unwrap();
    tx.chat_answered("matrix:@z:hs", "room:#r:hs").await.unwrap();
    tx.commit().await.unwrap();
    assert!(store.due_missed_chats(day + 100, 10).await.unwrap().is_empty());
    let rooms = ChatQuery { contact: Some("room:".into()), ..q("matrix:@a:hs") };
    assert_eq!(store.chat_journal(&rooms).await.unwrap()[0].messages, 1, "answering adds no message");
    assert!(store.chat_journal(&q("matrix:@z:hs")).await.unwrap().is_empty(), "no entry for a mere writer");

    // Notes and owners.
    let id = a[1].id;
    assert_eq!(store.chat_entry_owner(id).await.unwrap().as_deref(), Some("matrix:@a:hs"));
    assert_eq!(store.chat_entry_owner(id + 1000).await.unwrap(), None);
    let mut tx = store.begin().await.unwrap();
    tx.set_journal_note("matrix:@a:hs", &format!("m{id}"), Some("first")).await.unwrap();
    tx.set_journal_note("matrix:@a:hs", &format!("m{id}"), Some("second")).await.unwrap();
    tx.add_journal_token("hash-1", "matrix:@a:hs").await.unwrap();
    tx.add_journal_token("hash-2", "matrix:@a:hs").await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.journal_notes("matrix:@a:hs").await.unwrap(), [(format!("m{id}"), "second".to_owned())]);
    assert!(store.journal_notes("xmpp:b@x").await.unwrap().is_empty());
    assert_eq!(store.journal_token_party("hash-2").await.unwrap().as_deref(), Some("matrix:@a:hs"));
    assert_eq!(store.journal_token_party("hash-3").await.unwrap(), None);
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.revoke_journal_tokens("matrix:@a:hs").await.unwrap(), 2);
    tx.set_journal_note("matrix:@a:hs", &format!("m{id}"), None).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.journal_token_party("hash-1").await.unwrap(), None);
    assert!(store.journal_notes("matrix:@a:hs").await.unwrap().is_empty());
}

/// People's notification choices (migration 0022): set whole or only switched, read per person,
/// per kind and for one kind; a missed-call on/off stored before the table existed moves into it.
async fn notification_choices_per_person_and_kind(db: &TestDb) {
    use ucbridge::core::notify_choice::{Channel, Kind, Stored};
    let store = db.open().await;
    let bob = Party::Matrix(MatrixUserId::parse("@bob:hs").unwrap());
    let ann = Party::Xmpp(jid("ann@x"));
    assert_eq!(store.notification_choice(&bob, Kind::MissedCalls).await.unwrap(), None);

    let email = Stored { enabled: true, channel: Some(Channel::Email), address: Some("bob@calls.test".into()) };
    let mut tx = store.begin().await.unwrap();
    tx.set_notification_choice(&bob, Kind::MissedCalls, &email).await.unwrap();
    tx.set_notification_enabled(&bob, Kind::StatusChanges, false).await.unwrap();
    tx.set_notification_enabled(&ann, Kind::MissedCalls, false).await.unwrap();
    tx.commit().await.unwrap();
    // Uncommitted work is not kept.
    let mut tx = store.begin().await.unwrap();
    tx.set_notification_enabled(&ann, Kind::Pickup, false).await.unwrap();
    drop(tx);

    assert_eq!(store.notification_choice(&bob, Kind::MissedCalls).await.unwrap(), Some(email.clone()));
    let off = Stored { enabled: false, channel: None, address: None };
    assert_eq!(
        store.notification_choices_of(&bob).await.unwrap(),
        vec![(Kind::MissedCalls, email.clone()), (Kind::StatusChanges, off.clone())]
    );
    assert_eq!(store.notification_choices_of(&ann).await.unwrap(), vec![(Kind::MissedCalls, off.clone())]);
    assert_eq!(
        store.notification_choices(Kind::MissedCalls).await.unwrap(),
        vec![("matrix:@bob:hs".to_owned(), email.clone()), ("xmpp:ann@x".to_owned(), off.clone())]
    );

    // Switching off keeps the channel and address; a whole choice replaces them.
    let mut tx = store.begin().await.unwrap();
    tx.set_notification_enabled(&bob, Kind::MissedCalls, false).await.unwrap();
    tx.commit().await.unwrap();
    let kept = Stored { enabled: false, ..email.clone() };
    assert_eq!(store.notification_choice(&bob, Kind::MissedCalls).await.unwrap(), Some(kept));
    let chat = Stored { enabled: true, channel: Some(Channel::Chat), address: None };
    let mut tx = store.begin().await.unwrap();
    tx.set_notification_choice(&bob, Kind::MissedCalls, &chat).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.notification_choice(&bob, Kind::MissedCalls).await.unwrap(), Some(chat));
    store.close().await;

    // An older database: the on/off of `missed-calls` lived in user_setting. Undo migration 0022,
    // store such rows, and open the store again: they are the new table's rows, and gone there.
    {
        let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
        for sql in [
            "DROP TABLE notification_choice",
            "DELETE FROM _sqlx_migrations WHERE version = 22",
            "INSERT INTO user_setting (party, name, value, set_at) VALUES ('matrix:@old:hs', 'missed_calls', 'off', 5)",
            "INSERT INTO user_setting (party, name, value, set_at) VALUES ('xmpp:on@x', 'missed_calls', 'on', 6)",
            "INSERT INTO user_setting (party, name, value, set_at) VALUES ('xmpp:on@x', 'language', 'de', 6)",
        ] {
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
        conn.close().await.unwrap();
    }
    let store = db.open().await;
    let on = Stored { enabled: true, channel: None, address: None };
    assert_eq!(
        store.notification_choices(Kind::MissedCalls).await.unwrap(),
        vec![("matrix:@old:hs".to_owned(), off), ("xmpp:on@x".to_owned(), on)]
    );
    assert_eq!(
        store.user_settings().await.unwrap(),
        vec![("xmpp:on@x".to_owned(), "language".to_owned(), "de".to_owned())],
        "the old switch is moved, not copied; other settings stay"
    );
}

/// Writers that overlap (transactions held a moment, single writes beside them) all land, in
/// any order, none refused: SQLite's writers queue for their turn instead of failing busy.
async fn overlapping_writers_all_land(db: &TestDb) {
    let store = db.open().await;
    let before = store.outbox_len().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let done: Vec<i64> = vec![tx.enqueue(&chat(100)).await.unwrap(), tx.enqueue(&chat(101)).await.unwrap()];
    tx.commit().await.unwrap();
    let mut tasks: Vec<tokio::task::JoinHandle<()>> = (0..12u32)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut tx = store.begin().await.unwrap();
                tx.enqueue(&chat(n)).await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                tx.commit().await.unwrap();
            })
        })
        .collect();
    for id in done {
        let store = store.clone();
        tasks.push(tokio::spawn(async move { store.complete(id).await.unwrap() }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.outbox_len().await.unwrap(), before + 12);
}

/// Accepting a message writes its claim, its count and its actions in one batch: all land
/// together, and a repeated stanza id gives `None`, after which dropping the transaction leaves
/// nothing of the batch behind.
async fn claim_count_and_queue_in_one_batch(db: &TestDb) {
    use ucbridge::core::journal::ChatTouch;
    use ucbridge::store::ChatQuery;
    let store = db.open().await;
    let before = store.outbox_len().await.unwrap();
    let at = 20_000 * 86_400_000_i64 + 5;
    let touch =
        ChatTouch { party: "matrix:@a:hs".into(), conversation: "xmpp:b@x".into(), kind: "direct", incoming: true, at };
    let touches = vec![touch.clone(), touch];
    let mut tx = store.begin().await.unwrap();
    let ids = tx.claim_count_enqueue(Some(("b@x", "s1")), &touches, &[chat(1), chat(2)]).await.unwrap().unwrap();
    tx.commit().await.unwrap();
    assert_eq!(ids.len(), 2);
    assert!(ids[0] < ids[1], "queued in order: {ids:?}");
    let rows = store.lane_rows(&chat(1).lane().to_string(), 10).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.id).collect::<Vec<_>>(), ids);
    assert!(matches!(&rows[1].action, Action::XmppChat { text, .. } if text.body == "m2 ✓"));
    let q = ChatQuery { party: "matrix:@a:hs".into(), since: 0, limit: 10, ..Default::default() };
    assert_eq!(store.chat_journal(&q).await.unwrap()[0].messages, 2);

    // The same stanza id again: refused, and the rest of the batch goes with the transaction.
    let mut tx = store.begin().await.unwrap();
    let again = tx.claim_count_enqueue(Some(("b@x", "s1")), &touches, &[chat(3)]).await.unwrap();
    assert!(again.is_none());
    drop(tx);
    // Without a claim (a Matrix transaction's actions), and with no touches.
    let mut tx = store.begin().await.unwrap();
    let more = tx.claim_count_enqueue(None, &[], &[chat(4)]).await.unwrap().unwrap();
    tx.commit().await.unwrap();
    assert_eq!(more.len(), 1);
    assert_eq!(store.outbox_len().await.unwrap(), before + 3, "the refused batch left nothing");
    assert_eq!(store.chat_journal(&q).await.unwrap()[0].messages, 2, "nor its count");
    // Another sender may use the same id.
    let mut tx = store.begin().await.unwrap();
    assert!(tx.claim_count_enqueue(Some(("c@x", "s1")), &[], &[]).await.unwrap().is_some());
    tx.commit().await.unwrap();
}

/// A delivered message's record and its completion go together: the row leaves the outbox,
/// the pair is found by its event and its stanza id, and doing it again changes nothing.
async fn a_completion_records_what_the_message_became(db: &TestDb) {
    let store = db.open().await;
    let mut tx = store.begin().await.unwrap();
    let id = tx.enqueue(&chat(7)).await.unwrap();
    tx.commit().await.unwrap();
    let before = store.outbox_len().await.unwrap();
    let m = MappedMessage {
        room: room("!dm:hs"),
        event_id: "$done".into(),
        xmpp: jid("alice@x"),
        matrix: mxid("@bob:hs"),
        stanza_id: "s-done".into(),
        from_xmpp: true,
        markable: false,
        edit_of: Some("$orig".into()),
    };
    store.complete_mapped(id, &m).await.unwrap();
    assert_eq!(store.outbox_len().await.unwrap(), before - 1);
    assert_eq!(store.message_by_event(&m.room, "$done").await.unwrap(), Some(m.clone()));
    store.complete_mapped(id, &m).await.unwrap();
    assert_eq!(store.outbox_len().await.unwrap(), before - 1);
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                let db = super::TestDb::sqlite().await;
                super::$name(&db).await;
                db.drop_db().await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                let db = super::TestDb::postgres().await;
                super::$name(&db).await;
                db.drop_db().await;
            })*
        }
    };
}

conformance!(
    transactions_are_claimed_once_across_restarts,
    uncommitted_work_is_not_kept,
    outbox_keeps_lane_order_and_never_reuses_ids,
    direct_chats_follow_the_latest_room,
    ghosts_and_subscriptions,
    presence_and_message_map,
    watches_and_bot_chats,
    phone_calls_shown_busy_are_kept_with_the_own_presence,
    rooms_members_and_archive_pages,
    members_are_in_the_order_they_joined_whatever_changed_since,
    the_instance_id_is_made_once_and_kept,
    call_events_replay_until_the_call_is_finished,
    call_journal_facts_and_settling,
    sms_conversations_messages_and_usage,
    phones_in_rooms_route_to_the_room_that_wrote_last,
    the_daily_sms_cap_is_taken_atomically,
    sms_delivery_reports_count_each_part_once,
    contact_groups_keep_their_members,
    own_groups_belong_to_their_owner,
    block_list_settings_and_imports,
    a_portal_link_is_undone,
    linked_messages_are_found_by_the_rooms_id_and_the_senders,
    edits_reactions_retractions_and_media_links,
    presence_consent_requests_answers_and_shares,
    chatbot_rooms_and_contexts_survive_a_restart,
    notification_choices_per_person_and_kind,
    chat_journal_unread_notes_and_tokens,
    overlapping_writers_all_land,
    claim_count_and_queue_in_one_batch,
    a_completion_records_what_the_message_became,
);

/// The errors the bridge tells apart (a full disk is refused with a clear error, a database
/// that is away for a moment is waited for), from the real drivers' errors.
mod error_kinds {
    use sqlx::Connection;
    use ucbridge::store::StoreError;

    #[tokio::test]
    async fn a_full_sqlite_database_is_full_not_transient() {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("full.db").display());
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        sqlx::query("CREATE TABLE t (v TEXT)").execute(&mut conn).await.unwrap();
        // The file may not grow past its current pages: the next big insert finds the disk full.
        sqlx::query("PRAGMA max_page_count = 3").execute(&mut conn).await.unwrap();
        let source = sqlx::query("INSERT INTO t VALUES (zeroblob(100000))").execute(&mut conn).await.unwrap_err();
        let e = StoreError::Db { context: "insert", source };
        assert!(e.is_full(), "{e:?}");
        assert!(!e.is_transient(), "{e:?}");
    }

    #[tokio::test]
    async fn an_unreachable_postgres_is_transient() {
        sqlx::any::install_default_drivers();
        // Nothing listens on port 1: the connection is refused, as while PostgreSQL restarts.
        let source = sqlx::AnyConnection::connect("postgres://postgres@127.0.0.1:1/test").await.unwrap_err();
        let e = StoreError::Db { context: "connect", source };
        assert!(e.is_transient(), "{e:?}");
        assert!(!e.is_full(), "{e:?}");
    }

    #[tokio::test]
    async fn text_postgresql_cannot_hold_is_bad_data() {
        sqlx::any::install_default_drivers();
        let url = std::env::var("UCB_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        // A NUL in a text value: PostgreSQL's 22021, whatever the table.
        let source = sqlx::query("SELECT $1::text").bind("a\0b").execute(&mut conn).await.unwrap_err();
        let e = StoreError::Db { context: "select", source };
        assert!(e.is_bad_data(), "{e:?}");
        assert!(!e.is_transient() && !e.is_full(), "{e:?}");
    }

    #[tokio::test]
    async fn a_bad_query_is_neither() {
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect("sqlite::memory:").await.unwrap();
        let source = sqlx::query("SELECT * FROM no_such_table").execute(&mut conn).await.unwrap_err();
        let e = StoreError::Db { context: "select", source };
        assert!(!e.is_transient() && !e.is_full() && !e.is_bad_data(), "{e:?}");
    }
}
