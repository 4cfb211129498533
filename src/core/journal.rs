//! A person's journal as they see it: calls and chats as one list of entries, newest first,
//! written as a table (text with `|` rows, which the Matrix side turns into an HTML table) —
//! plus when a missed-chat summary is due. Plain code: the bridge reads the rows and the clock.

use super::action::Action;
use super::watch::Party;

/// A day in milliseconds: chat entries are one per person, conversation and UTC day.
pub const DAY_MS: i64 = 86_400_000;

/// One message counted in a person's journal: `incoming` when it was written to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatTouch {
    /// Whose journal (`Party::key`).
    pub party: String,
    /// The other side (`Party::key`, or `sms:+E164`).
    pub conversation: String,
    /// `direct`, `sms` or `room`.
    pub kind: &'static str,
    pub incoming: bool,
    pub at: i64,
}

/// The touches of one entry (person, conversation, day) added up, as one row writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatSum {
    pub party: String,
    pub conversation: String,
    pub kind: &'static str,
    pub day: i64,
    pub first_at: i64,
    pub last_at: i64,
    pub messages: i64,
    /// The first message to them after their last own one (`None`: they had the last word).
    pub unread_since: Option<i64>,
}

/// Add up touches per entry, in order: one database row is written once per statement.
pub fn sums(touches: &[ChatTouch]) -> Vec<ChatSum> {
    let mut out: Vec<ChatSum> = Vec::new();
    for t in touches {
        let day = t.at - t.at.rem_euclid(DAY_MS);
        let unread = t.incoming.then_some(t.at);
        match out.iter_mut().find(|s| s.party == t.party && s.conversation == t.conversation && s.day == day) {
            Some(s) => {
                s.first_at = s.first_at.min(t.at);
                s.last_at = s.last_at.max(t.at);
                s.messages += 1;
                s.unread_since = if t.incoming { s.unread_since.or(unread) } else { None };
            }
            None => out.push(ChatSum {
                party: t.party.clone(),
                conversation: t.conversation.clone(),
                kind: t.kind,
                day,
                first_at: t.at,
                last_at: t.at,
                messages: 1,
                unread_since: unread,
            }),
        }
    }
    out
}

/// What a queued message means for the journals of the people on both ends: the sender's
/// entry (outgoing: they have read the conversation) and the reader's (incoming, unread).
/// Corrections are not new messages; notices, rooms and everything else count nothing.
pub fn touches(action: &Action, at: i64) -> Vec<ChatTouch> {
    let pair = |from: Party, to: Party, kind| {
        vec![
            ChatTouch { party: from.key(), conversation: to.key(), kind, incoming: false, at },
            ChatTouch { party: to.key(), conversation: from.key(), kind, incoming: true, at },
        ]
    };
    let one = |party: Party, phone: &super::ids::PhoneNumber, incoming| {
        vec![ChatTouch { party: party.key(), conversation: sms_conversation(phone), kind: "sms", incoming, at }]
    };
    match action {
        Action::MatrixDirect { from, to, extras, .. } if extras.replaces.is_none() => {
            pair(Party::Xmpp(from.clone()), Party::Matrix(to.clone()), "direct")
        }
        Action::XmppChat { from, to, extras, event: Some(_), .. } if extras.replaces.is_none() => {
            pair(Party::Matrix(from.clone()), Party::Xmpp(to.clone()), "direct")
        }
        Action::SmsToMatrix { phone, to, .. } => one(Party::Matrix(to.clone()), phone, true),
        Action::XmppFromPhone { phone, to, .. } => one(Party::Xmpp(to.clone()), phone, true),
        Action::SmsSend { author: Some(author), to, .. } => one(author.clone(), to, false),
        _ => vec![],
    }
}

/// Most people one hosted-room message is counted for (rooms are capped lower than this by
/// `rooms.max_participants`; the bound keeps one statement small whatever the config says).
pub const MAX_ROOM_READERS: usize = 30;

/// The journal's name for a hosted room (its alias, else its ID: the name can change) or a
/// linked MUC (its address).
pub fn room_conversation(alias_or_id: &str) -> String {
    format!("room:{alias_or_id}")
}

/// The journal's name for an SMS chat with `phone`.
pub fn sms_conversation(phone: &super::ids::PhoneNumber) -> String {
    format!("sms:{phone}")
}

/// What a message in a room means for its participants' journals: one incoming, unread
/// message for each other participant (at most `MAX_ROOM_READERS`). The sender's own message
/// counts nothing for them; that they wrote clears their unread mark elsewhere. `sender` is
/// `None` when they keep no journal here (an occupant of a MUC on an XMPP server).
pub fn room_touches(conversation: &str, sender: Option<&Party>, participants: &[Party], at: i64) -> Vec<ChatTouch> {
    let mut readers: Vec<String> = Vec::new();
    for p in participants.iter().filter(|p| Some(*p) != sender) {
        let key = p.key();
        if !readers.contains(&key) {
            readers.push(key);
        }
    }
    readers.truncate(MAX_ROOM_READERS);
    readers
        .into_iter()
        .map(|party| ChatTouch { party, conversation: conversation.to_owned(), kind: "room", incoming: true, at })
        .collect()
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// What `journal note` names it by: `c12` (a call), `m7` (a chat).
    pub id: String,
    /// When it happened (ms): the call's start, the chat's last message; the order.
    pub at: i64,
    /// `at` as the reader reads it.
    pub when: String,
    /// `missed call`, `call`, `outgoing call`, `chat`, `missed chat`.
    pub what: String,
    /// The other side: the caller's name and number, the chat's counterpart.
    pub with: String,
    /// Ring time, messages and span, …
    pub detail: String,
    /// Whose journal (shown in a group's journal only).
    pub owner: Option<String>,
    pub note: Option<String>,
}

/// Most entries one listing shows.
pub const MAX_LISTED: usize = 50;

/// Newest first, at most `MAX_LISTED`.
pub fn newest_first(mut entries: Vec<Entry>) -> Vec<Entry> {
    entries.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| b.id.cmp(&a.id)));
    entries.truncate(MAX_LISTED);
    entries
}

/// A cell of a `|` table: one line, no column separator (names and notes are anyone's text).
fn cell(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == '|' {
                '/'
            } else if c.is_control() {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// The entries as a table: a header row and one `| … |` row each; `title` above it.
pub fn table(title: &str, entries: &[Entry]) -> String {
    if entries.is_empty() {
        return format!("{title}: no entries.");
    }
    let group = entries.iter().any(|e| e.owner.is_some());
    let mut out = format!("{title}:\n");
    out.push_str(if group {
        "| id | when | whose | what | with | details | note |"
    } else {
        "| id | when | what | with | details | note |"
    });
    for e in entries {
        let owner = if group { format!(" {} |", cell(e.owner.as_deref().unwrap_or(""))) } else { String::new() };
        out.push_str(&format!(
            "\n| {} | {} |{owner} {} | {} | {} | {} |",
            cell(&e.id),
            cell(&e.when),
            cell(&e.what),
            cell(&e.with),
            cell(&e.detail),
            cell(e.note.as_deref().unwrap_or("")),
        ));
    }
    out
}

/// An entry reference from `journal note ID`: `(true, 12)` for `c12`, `(false, 7)` for `m7`.
pub fn parse_entry_id(id: &str) -> Option<(bool, i64)> {
    let id = id.trim().to_ascii_lowercase();
    let (call, number) = match id.split_at_checked(1)? {
        ("c", n) => (true, n),
        ("m", n) => (false, n),
        _ => return None,
    };
    let n: i64 = number.parse().ok().filter(|n| *n > 0)?;
    Some((call, n))
}

/// Is a missed-chat summary due for a message unread since `unread_since`? Only after
/// `after_ms`, and only while the reader is not there to see it.
pub fn summary_due(unread_since: i64, now: i64, after_ms: i64, reader_available: bool) -> bool {
    !reader_available && now.saturating_sub(unread_since) >= after_ms
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ids::{BareJid, MatrixUserId};

    fn entry(id: &str, at: i64, note: Option<&str>) -> Entry {
        Entry {
            id: id.into(),
            at,
            when: format!("t{at}"),
            what: "chat".into(),
            with: "a | b\nc".into(),
            detail: "2 messages".into(),
            owner: None,
            note: note.map(str::to_owned),
        }
    }

    #[test]
    fn newest_first_and_bounded() {
        let many: Vec<_> = (0..80).map(|i| entry(&format!("m{i}"), i, None)).collect();
        let listed = newest_first(many);
        assert_eq!(listed.len(), MAX_LISTED);
        assert_eq!(listed[0].at, 79);
        assert!(listed.windows(2).all(|w| w[0].at >= w[1].at));
    }

    #[test]
    fn table_cells_cannot_break_the_table() {
        let t = table("Your journal", &[entry("m1", 1, Some("call | back"))]);
        let rows: Vec<_> = t.lines().filter(|l| l.starts_with("| ")).collect();
        assert_eq!(rows.len(), 2, "{t}");
        assert_eq!(rows[1].matches(" | ").count(), rows[0].matches(" | ").count(), "{t}");
        assert!(rows[1].contains("call / back") && rows[1].contains("a / b c"), "{t}");
        assert_eq!(table("Your journal", &[]), "Your journal: no entries.");
        let mut owned = entry("c2", 2, None);
        owned.owner = Some("@a:hs".into());
        assert!(table("Group", &[owned]).contains("| whose |"));
    }

    #[test]
    fn a_direct_message_counts_for_both_ends_and_a_correction_for_none() {
        let from = crate::core::ids::BareJid::parse("a@x.test").expect("a JID");
        let to = crate::core::ids::MatrixUserId::parse("@b:hs.test").expect("a user");
        let mut action = Action::MatrixDirect {
            from,
            to,
            nick: None,
            stanza_id: None,
            text: crate::core::action::Text::plain("hi"),
            wants_receipt: false,
            markable: false,
            extras: Default::default(),
        };
        let t = touches(&action, 5);
        assert_eq!(t.len(), 2);
        assert_eq!(
            (t[0].party.as_str(), t[0].conversation.as_str(), t[0].incoming),
            ("xmpp:a@x.test", "matrix:@b:hs.test", false)
        );
        assert_eq!(
            (t[1].party.as_str(), t[1].conversation.as_str(), t[1].incoming),
            ("matrix:@b:hs.test", "xmpp:a@x.test", true)
        );
        if let Action::MatrixDirect { extras, .. } = &mut action {
            extras.replaces = Some(crate::core::ids::StanzaId::new("s1"));
        }
        assert!(touches(&action, 5).is_empty());
    }

    #[test]
    fn touches_add_up_per_entry_and_the_last_word_decides_unread() {
        let t = |party: &str, incoming, at| ChatTouch {
            party: party.into(),
            conversation: "c".into(),
            kind: "direct",
            incoming,
            at,
        };
        let s = sums(&[t("a", true, 10), t("a", true, 20), t("b", false, 20)]);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].messages, s[0].first_at, s[0].last_at, s[0].unread_since), (2, 10, 20, Some(10)));
        assert_eq!(s[1].unread_since, None);
        let s = sums(&[t("a", true, 10), t("a", false, 20), t("a", true, 30)]);
        assert_eq!((s.len(), s[0].messages, s[0].unread_since), (1, 3, Some(30)));
        let s = sums(&[t("a", true, 10), t("a", true, DAY_MS + 1)]);
        assert_eq!(s.len(), 2, "one entry per day");
    }

    #[test]
    fn a_room_message_counts_once_for_every_other_participant() {
        let m = |s: &str| Party::Matrix(MatrixUserId::parse(s).expect("a user"));
        let x = |s: &str| Party::Xmpp(BareJid::parse(s).expect("a JID"));
        let (alice, bob, carol) = (m("@alice:hs"), x("bob@xmpp"), m("@carol:hs"));
        let conv = room_conversation("#sales:hs");
        let all = [alice.clone(), bob.clone(), carol.clone(), bob.clone()];
        let t = room_touches(&conv, Some(&alice), &all, 5);
        let parties: Vec<&str> = t.iter().map(|t| t.party.as_str()).collect();
        assert_eq!(parties, ["xmpp:bob@xmpp", "matrix:@carol:hs"], "not the sender, each reader once");
        assert!(t.iter().all(|t| t.incoming && t.kind == "room" && t.conversation == "room:#sales:hs" && t.at == 5));
        let crowd: Vec<Party> = (0..100).map(|i| m(&format!("@u{i}:hs"))).collect();
        assert_eq!(room_touches(&conv, Some(&alice), &crowd, 5).len(), MAX_ROOM_READERS);
        assert!(room_touches(&conv, Some(&alice), std::slice::from_ref(&alice), 5).is_empty(), "alone in the room");
        // A MUC occupant who is not the bridge's user: everyone of ours in the room reads it.
        assert_eq!(room_touches(&conv, None, &[alice.clone(), carol.clone()], 5).len(), 2);
    }

    #[test]
    fn entry_ids() {
        assert_eq!(parse_entry_id("c12"), Some((true, 12)));
        assert_eq!(parse_entry_id("M7"), Some((false, 7)));
        for bad in ["", "c", "x1", "c-1", "c0", "m1x", "ü1", "c99999999999999999999"] {
            assert_eq!(parse_entry_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_summary_waits_for_the_threshold_and_for_absence() {
        assert!(!summary_due(1_000, 1_500, 1_000, false));
        assert!(summary_due(1_000, 2_000, 1_000, false));
        assert!(!summary_due(1_000, 9_000, 1_000, true), "not while they are there");
    }
}
