//! Who is told about a finished call, on which channels, and who is not and why.
//!
//! Input: a [`CallSummary`], the [`RuleSettings`], the [`Directory`] of users with their
//! extensions and lines, and the [`Facts`] the engine cannot know itself (was a contact found,
//! earlier notices, last logon), gathered by the caller beforehand so this stays plain code.
//! Output: a [`Decision`] with the notices to send and, for the journal and the logs, every
//! person or call that was left out with the reason.
//!
//! Order of the checks: call-wide (policy off, outgoing, answered, internal, hidden number,
//! blocked caller, no contact), then per ringing extension (blocked extension, no owner, rang too
//! briefly, answered it themselves), then the policy's choice among those left (first / last /
//! all), then per chosen user (opted out, repeated call today, repeated call without logon, no
//! channel). A short ring is filtered *before* the policy picks, so a phone that forwarded the
//! call at once does not swallow the notice of the phone that really rang.
//!
//! Files: this one holds the settings; [`directory`] who owns which extension and line;
//! [`outcome`] the facts going in and the decision coming out; [`decide`] the steps above;
//! [`settle`] the "called back" rule for the journal.

mod decide;
mod directory;
mod outcome;
mod settle;

use serde::{Deserialize, Serialize};

use crate::calls::event::Extension;
pub use crate::core::phone::number_key;
pub use decide::decide;
pub use directory::{Directory, UserEntry, UserId};
pub use outcome::{Decision, Facts, Notice, NoticeReason, SkipReason, Skipped, UserFacts};
pub use settle::{JournalEntry, JournalKind, all_settled, settled_by};

/// Which of the participants who rang and did not answer are told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Nobody.
    None,
    /// The person whose phone rang first.
    First,
    /// The person whose phone started ringing last.
    Last,
    /// Everybody whose phone rang.
    #[default]
    All,
}

/// A way to reach a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
    /// A message in the person's direct chat with the bridge bot (Matrix) or component (XMPP).
    Chat,
}

impl From<crate::core::notify_choice::Channel> for Channel {
    /// A person's channel choice (`notifications missed-calls on --via …`) as the rules' channel.
    fn from(c: crate::core::notify_choice::Channel) -> Self {
        use crate::core::notify_choice::Channel as Chosen;
        match c {
            Chosen::Chat => Channel::Chat,
            Chosen::Email => Channel::Email,
            Chosen::Sms => Channel::Sms,
        }
    }
}

/// Cases in which no notice is sent. Each can be switched off on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Exceptions {
    /// Calls between internal extensions.
    pub internal_calls: bool,
    /// Calls whose number was withheld.
    pub hidden_numbers: bool,
    /// Calls from numbers not in the contact store.
    pub no_contact: bool,
    /// A caller whose earlier call today already produced a notice to this person.
    pub repeated_same_day: bool,
    /// A caller who already produced a notice the person has not seen (no logon since).
    pub repeated_until_logon: bool,
    /// Phones that rang for less than `min_ring_secs`.
    pub short_ring: bool,
    pub min_ring_secs: u32,
    /// Callers and extensions on [`RuleSettings::block_list`].
    pub block_list: bool,
}

impl Default for Exceptions {
    fn default() -> Self {
        Self {
            internal_calls: true,
            hidden_numbers: false,
            no_contact: false,
            repeated_same_day: false,
            repeated_until_logon: false,
            short_ring: true,
            min_ring_secs: 2,
            block_list: true,
        }
    }
}

impl Exceptions {
    /// Every exception off: every missed call is reported.
    pub fn none() -> Self {
        Self {
            internal_calls: false,
            hidden_numbers: false,
            no_contact: false,
            repeated_same_day: false,
            repeated_until_logon: false,
            short_ring: false,
            min_ring_secs: 0,
            block_list: false,
        }
    }
}

/// Numbers and extensions excluded from notices: a call *from* one of them is not reported, and
/// an extension on the list is never told (the doorman's phone, a lobby phone).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlockList {
    /// Phone numbers, any format; compared by their digits (and a leading `+`).
    pub numbers: Vec<String>,
    pub extensions: Vec<Extension>,
}

/// The server-wide missed-call settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuleSettings {
    pub policy: Policy,
    /// Tell ringing participants even when someone else took the call (pickup, ring group).
    pub notify_even_if_answered_by_other: bool,
    pub exceptions: Exceptions,
    pub block_list: BlockList,
    /// Whether a user who never chose is notified.
    pub default_opt_in: bool,
    /// Channels in use on this server.
    pub channels: Vec<Channel>,
}

impl Default for RuleSettings {
    fn default() -> Self {
        Self {
            policy: Policy::All,
            notify_even_if_answered_by_other: false,
            exceptions: Exceptions::default(),
            block_list: BlockList::default(),
            default_opt_in: true,
            channels: vec![Channel::Email],
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::calls::event::{CallId, Caller, Direction, LegOutcome};
    use crate::calls::model::CallSummary;
    use crate::calls::model::script::*;

    fn user(id: &str, exts: &[&str]) -> UserEntry {
        UserEntry { email: Some(format!("{id}@example.org")), ..UserEntry::new(id, exts) }
    }

    fn directory() -> Directory {
        Directory::new(vec![
            user("alice", &["201"]),
            user("bob", &["202"]),
            user("carol", &["203", "803"]),
            UserEntry { lines: vec!["+49 30 555-100".into()], ..user("dora", &["204"]) },
            user("erin", &["205"]),
        ])
    }

    fn settings(policy: Policy) -> RuleSettings {
        RuleSettings { policy, exceptions: Exceptions::none(), ..RuleSettings::default() }
    }

    fn facts() -> Facts {
        Facts { contact_found: true, caller_e164: Some("+4930123456".into()), users: HashMap::new() }
    }

    fn ring_group_unanswered() -> CallSummary {
        run(vec![
            created("g", Some("+4930123456"), Direction::Inbound, 0),
            ring("g", "a", "201", 0),
            ring("g", "b", "202", 0),
            ring("g", "c", "203", 0),
            end("g", 20),
        ])
    }

    fn cyclic() -> CallSummary {
        run(vec![
            created("q", Some("+4930123456"), Direction::Inbound, 0),
            ring("q", "1", "201", 0),
            leg_end("q", "1", LegOutcome::NoAnswer, 10),
            ring("q", "2", "202", 10),
            leg_end("q", "2", LegOutcome::NoAnswer, 20),
            ring("q", "3", "203", 20),
            leg_end("q", "3", LegOutcome::NoAnswer, 30),
            ring("q", "4", "201", 30),
            leg_end("q", "4", LegOutcome::Cancelled, 35),
            end("q", 35),
        ])
    }

    fn redirected() -> CallSummary {
        run(vec![
            created("r", Some("+4930123456"), Direction::Inbound, 0),
            ring("r", "1", "201", 0),
            leg_end("r", "1", LegOutcome::Redirected { to: "202".into() }, 15),
            ring("r", "2", "202", 15),
            end("r", 30),
        ])
    }

    fn picked_up() -> CallSummary {
        run(vec![
            created("p", Some("+4930123456"), Direction::Inbound, 0),
            ring("p", "1", "201", 0),
            ring("p", "2", "202", 0),
            answer("p", "205", true, 8),
            end("p", 60),
        ])
    }

    fn decide_with(s: &RuleSettings, summary: &CallSummary) -> Decision {
        decide(s, &directory(), summary, &facts())
    }

    fn reasons(d: &Decision) -> Vec<(Option<&str>, &'static str)> {
        d.skipped.iter().map(|s| (s.user.as_ref().map(UserId::as_str), s.reason.code())).collect()
    }

    // --- policies -----------------------------------------------------------------------------

    #[test]
    fn policy_none_tells_nobody() {
        let d = decide_with(&settings(Policy::None), &ring_group_unanswered());
        assert!(d.notices.is_empty());
        assert_eq!(reasons(&d), [(None, "policy_none")]);
    }

    #[test]
    fn policy_all_tells_every_ringing_member_once() {
        let d = decide_with(&settings(Policy::All), &ring_group_unanswered());
        assert_eq!(d.notified(), ["alice", "bob", "carol"]);
        assert!(d.notices.iter().all(|n| n.reason == NoticeReason::Missed && n.channels == [Channel::Email]));
        assert!(d.skipped.is_empty());
    }

    #[test]
    fn policy_first_in_a_parallel_ring_group() {
        let d = decide_with(&settings(Policy::First), &ring_group_unanswered());
        assert_eq!(d.notified(), ["alice"]);
        assert_eq!(reasons(&d), [(Some("bob"), "not_chosen"), (Some("carol"), "not_chosen")]);
    }

    #[test]
    fn policy_last_in_a_parallel_ring_group() {
        let d = decide_with(&settings(Policy::Last), &ring_group_unanswered());
        assert_eq!(d.notified(), ["carol"]);
    }

    #[test]
    fn cyclic_distribution_under_each_policy() {
        let c = cyclic();
        assert_eq!(decide_with(&settings(Policy::All), &c).notified(), ["alice", "bob", "carol"]);
        assert_eq!(decide_with(&settings(Policy::First), &c).notified(), ["alice"]);
        // Alice's phone rang again after Carol's: she is the last one it rang at.
        assert_eq!(decide_with(&settings(Policy::Last), &c).notified(), ["alice"]);
        let alice = &decide_with(&settings(Policy::All), &c).notices[0];
        assert_eq!(alice.ring_ms, 15_000);
    }

    #[test]
    fn redirection_under_each_policy() {
        let r = redirected();
        assert_eq!(decide_with(&settings(Policy::All), &r).notified(), ["alice", "bob"]);
        assert_eq!(decide_with(&settings(Policy::First), &r).notified(), ["alice"]);
        assert_eq!(decide_with(&settings(Policy::Last), &r).notified(), ["bob"]);
    }

    #[test]
    fn two_phones_of_one_person_make_one_notice() {
        let s = run(vec![
            created("c", Some("+4930123456"), Direction::Inbound, 0),
            ring("c", "1", "203", 0),
            ring("c", "2", "803", 1),
            end("c", 10),
        ]);
        let d = decide_with(&settings(Policy::All), &s);
        assert_eq!(d.notified(), ["carol"]);
        assert_eq!((d.notices[0].extension.as_str(), d.notices[0].ring_ms), ("203", 10_000));
    }

    #[test]
    fn a_direct_call_without_legs_goes_to_the_line_owner() {
        let s = run(vec![created("c", Some("+4930123456"), Direction::Inbound, 0), end("c", 9)]);
        let d = decide_with(&settings(Policy::First), &s);
        assert_eq!(d.notified(), ["dora"]);
        assert_eq!(d.notices[0].ring_ms, 9000);

        let mut elsewhere = s.clone();
        elsewhere.called = "+49 89 1".into();
        assert_eq!(reasons(&decide_with(&settings(Policy::All), &elsewhere)), [(None, "nobody_rang")]);
    }

    #[test]
    fn extensions_without_owner_are_reported() {
        let s = run(vec![
            created("c", Some("+4930123456"), Direction::Inbound, 0),
            ring("c", "1", "299", 0),
            ring("c", "2", "201", 0),
            end("c", 10),
        ]);
        let d = decide_with(&settings(Policy::First), &s);
        assert_eq!(d.notified(), ["alice"], "the owner-less phone cannot take the first place");
        assert_eq!(d.skipped[0].reason, SkipReason::NoOwner);
        assert_eq!(d.skipped[0].extension, Some(Extension::new("299")));
    }

    // --- answered calls and pickup --------------------------------------------------------------

    #[test]
    fn answered_calls_are_not_reported_by_default() {
        let d = decide_with(&settings(Policy::All), &picked_up());
        assert_eq!(reasons(&d), [(None, "answered")]);
    }

    #[test]
    fn pickup_tells_the_ringing_members_when_enabled() {
        let s = RuleSettings { notify_even_if_answered_by_other: true, ..settings(Policy::All) };
        let d = decide_with(&s, &picked_up());
        assert_eq!(d.notified(), ["alice", "bob"]);
        assert!(d.notices.iter().all(|n| n.reason == NoticeReason::AnsweredElsewhere));
        assert_eq!(d.notices[0].summary.answered.as_ref().map(|a| a.pickup), Some(true));
    }

    #[test]
    fn answered_by_another_ring_group_member() {
        let s = RuleSettings { notify_even_if_answered_by_other: true, ..settings(Policy::All) };
        let call = run(vec![
            created("c", Some("+4930123456"), Direction::Inbound, 0),
            ring("c", "1", "201", 0),
            ring("c", "2", "202", 0),
            leg_end("c", "2", LegOutcome::Answered, 6),
            leg_end("c", "1", LegOutcome::Cancelled, 6),
            end("c", 50),
        ]);
        let d = decide_with(&s, &call);
        assert_eq!(d.notified(), ["alice"]);
        assert_eq!(reasons(&d), [(Some("bob"), "answered_by_themselves")]);
        // Policy last: Bob answered, so the choice is among the others only.
        let d = decide_with(&RuleSettings { policy: Policy::Last, ..s }, &call);
        assert_eq!(d.notified(), ["alice"]);
    }

    #[test]
    fn picking_up_on_ones_own_other_phone_is_not_missed() {
        let s = RuleSettings { notify_even_if_answered_by_other: true, ..settings(Policy::All) };
        let call = run(vec![
            created("c", Some("+4930123456"), Direction::Inbound, 0),
            ring("c", "1", "203", 0),
            answer("c", "803", false, 4),
            end("c", 50),
        ]);
        let d = decide_with(&s, &call);
        assert!(d.notices.is_empty());
        assert_eq!(reasons(&d), [(Some("carol"), "answered_by_themselves")]);
    }

    // --- exceptions ---------------------------------------------------------------------------

    #[test]
    fn outgoing_calls_are_never_missed_calls() {
        let s = run(vec![created("o", Some("201"), Direction::Outbound, 0), end("o", 30)]);
        assert_eq!(reasons(&decide_with(&settings(Policy::All), &s)), [(None, "outgoing")]);
    }

    #[test]
    fn exception_internal_calls() {
        let call = run(vec![created("i", Some("202"), Direction::Internal, 0), ring("i", "1", "201", 0), end("i", 10)]);
        let on = RuleSettings {
            exceptions: Exceptions { internal_calls: true, ..Exceptions::none() },
            ..settings(Policy::All)
        };
        assert_eq!(reasons(&decide_with(&on, &call)), [(None, "internal")]);
        assert_eq!(decide_with(&settings(Policy::All), &call).notified(), ["alice"]);
    }

    #[test]
    fn exception_hidden_numbers() {
        let call = run(vec![created("h", None, Direction::Inbound, 0), ring("h", "1", "201", 0), end("h", 10)]);
        let on = RuleSettings {
            exceptions: Exceptions { hidden_numbers: true, ..Exceptions::none() },
            ..settings(Policy::All)
        };
        assert_eq!(reasons(&decide_with(&on, &call)), [(None, "hidden_number")]);
        assert_eq!(decide_with(&settings(Policy::All), &call).notified(), ["alice"]);
    }

    #[test]
    fn exception_no_contact() {
        let call = ring_group_unanswered();
        let on = RuleSettings {
            exceptions: Exceptions { no_contact: true, ..Exceptions::none() },
            ..settings(Policy::First)
        };
        let unknown = Facts { contact_found: false, ..facts() };
        assert_eq!(reasons(&decide(&on, &directory(), &call, &unknown)), [(None, "no_contact")]);
        assert_eq!(decide(&on, &directory(), &call, &facts()).notified(), ["alice"]);
        assert_eq!(decide(&settings(Policy::First), &directory(), &call, &unknown).notified(), ["alice"]);
    }

    #[test]
    fn exception_repeated_same_day() {
        let call = ring_group_unanswered();
        let on = RuleSettings {
            exceptions: Exceptions { repeated_same_day: true, ..Exceptions::none() },
            ..settings(Policy::All)
        };
        let mut f = facts();
        f.users.insert(UserId::new("bob"), UserFacts { notices_today_same_number: 1, ..UserFacts::default() });
        let d = decide(&on, &directory(), &call, &f);
        assert_eq!(d.notified(), ["alice", "carol"]);
        assert_eq!(reasons(&d), [(Some("bob"), "repeated_same_day")]);
        assert_eq!(decide(&settings(Policy::All), &directory(), &call, &f).notified(), ["alice", "bob", "carol"]);
    }

    #[test]
    fn exception_repeated_until_logon() {
        let call = ring_group_unanswered();
        let on = RuleSettings {
            exceptions: Exceptions { repeated_until_logon: true, ..Exceptions::none() },
            ..settings(Policy::All)
        };
        let mut f = facts();
        // Alice was told at T0-1h and has not logged on since: no second notice.
        f.users.insert(
            UserId::new("alice"),
            UserFacts {
                last_notice_same_number_at: Some(T0 - 3_600_000),
                last_logon_at: Some(T0 - 7_200_000),
                ..UserFacts::default()
            },
        );
        // Bob was told, then logged on: he is told again.
        f.users.insert(
            UserId::new("bob"),
            UserFacts {
                last_notice_same_number_at: Some(T0 - 3_600_000),
                last_logon_at: Some(T0 - 60_000),
                ..UserFacts::default()
            },
        );
        // Carol was told and never logged on at all.
        f.users.insert(
            UserId::new("carol"),
            UserFacts { last_notice_same_number_at: Some(T0 - 3_600_000), ..UserFacts::default() },
        );
        let d = decide(&on, &directory(), &call, &f);
        assert_eq!(d.notified(), ["bob"]);
        assert_eq!(reasons(&d), [(Some("alice"), "repeated_without_logon"), (Some("carol"), "repeated_without_logon")]);
        assert_eq!(decide(&settings(Policy::All), &directory(), &call, &f).notified().len(), 3);
    }

    #[test]
    fn repeat_exceptions_do_not_apply_to_hidden_callers() {
        let call = run(vec![created("h", None, Direction::Inbound, 0), ring("h", "1", "201", 0), end("h", 10)]);
        let on = RuleSettings {
            exceptions: Exceptions { repeated_same_day: true, repeated_until_logon: true, ..Exceptions::none() },
            ..settings(Policy::All)
        };
        let mut f = facts();
        f.users.insert(
            UserId::new("alice"),
            UserFacts { notices_today_same_number: 3, last_notice_same_number_at: Some(T0 - 1), last_logon_at: None },
        );
        assert_eq!(decide(&on, &directory(), &call, &f).notified(), ["alice"]);
    }

    #[test]
    fn exception_short_ring_default_two_seconds() {
        assert_eq!(Exceptions::default().min_ring_secs, 2);
        let short = run(direct_unanswered("s", "201", 1));
        let long = run(direct_unanswered("l", "201", 2));
        let on = RuleSettings {
            exceptions: Exceptions { short_ring: true, min_ring_secs: 2, ..Exceptions::none() },
            ..settings(Policy::All)
        };
        assert_eq!(reasons(&decide_with(&on, &short)), [(Some("alice"), "short_ring")]);
        assert_eq!(decide_with(&on, &short).skipped[0].reason, SkipReason::ShortRing { ring_ms: 1000 });
        assert_eq!(decide_with(&on, &long).notified(), ["alice"]);
        assert_eq!(decide_with(&settings(Policy::All), &short).notified(), ["alice"]);
    }

    #[test]
    fn a_phone_that_forwarded_at_once_does_not_take_the_first_place() {
        let call = run(vec![
            created("f", Some("+4930123456"), Direction::Inbound, 0),
            ring("f", "1", "201", 0),
            leg_end("f", "1", LegOutcome::Redirected { to: "202".into() }, 0),
            ring("f", "2", "202", 0),
            end("f", 20),
        ]);
        let on = RuleSettings {
            exceptions: Exceptions { short_ring: true, min_ring_secs: 2, ..Exceptions::none() },
            ..settings(Policy::First)
        };
        let d = decide_with(&on, &call);
        assert_eq!(d.notified(), ["bob"]);
        assert_eq!(reasons(&d), [(Some("alice"), "short_ring")]);
    }

    #[test]
    fn exception_block_list_numbers() {
        let call = ring_group_unanswered();
        let on = |numbers: Vec<String>| RuleSettings {
            exceptions: Exceptions { block_list: true, ..Exceptions::none() },
            block_list: BlockList { numbers, extensions: vec![] },
            ..settings(Policy::All)
        };
        assert_eq!(reasons(&decide_with(&on(vec!["+49 30 123456".into()]), &call)), [(None, "blocked_number")]);
        assert_eq!(decide_with(&on(vec!["+4989".into()]), &call).notified().len(), 3);
        // The caller arrives in national format; the normalised form matches the list.
        let mut national = call.clone();
        national.caller = Caller::with_number("030 123456");
        assert_eq!(reasons(&decide_with(&on(vec!["+4930123456".into()]), &national)), [(None, "blocked_number")]);
        // Switched off, the list is ignored.
        let mut off = on(vec!["+4930123456".into()]);
        off.exceptions.block_list = false;
        assert_eq!(decide_with(&off, &call).notified().len(), 3);
    }

    #[test]
    fn exception_block_list_extensions() {
        let on = RuleSettings {
            exceptions: Exceptions { block_list: true, ..Exceptions::none() },
            block_list: BlockList { numbers: vec![], extensions: vec![Extension::new("209"), Extension::new("202")] },
            ..settings(Policy::All)
        };
        // A call from the blocked doorman's extension is not reported.
        let from_doorman =
            run(vec![created("d", Some("209"), Direction::Internal, 0), ring("d", "1", "201", 0), end("d", 10)]);
        assert_eq!(reasons(&decide_with(&on, &from_doorman)), [(None, "blocked_number")]);
        // A blocked extension in a ring group is never told.
        let d = decide_with(&on, &ring_group_unanswered());
        assert_eq!(d.notified(), ["alice", "carol"]);
        assert_eq!(reasons(&d), [(Some("bob"), "blocked_extension")]);
    }

    // --- per user -----------------------------------------------------------------------------

    #[test]
    fn opt_in_and_out() {
        let dir = Directory::new(vec![
            UserEntry { opt_in: Some(false), ..user("alice", &["201"]) },
            UserEntry { opt_in: Some(true), ..user("bob", &["202"]) },
            user("carol", &["203"]),
        ]);
        let call = ring_group_unanswered();
        let d = decide(&settings(Policy::All), &dir, &call, &facts());
        assert_eq!(d.notified(), ["bob", "carol"]);
        assert_eq!(reasons(&d), [(Some("alice"), "opted_out")]);
        let opt_in_only = RuleSettings { default_opt_in: false, ..settings(Policy::All) };
        assert_eq!(decide(&opt_in_only, &dir, &call, &facts()).notified(), ["bob"]);
        // Opting out does not hand the notice to the next person under "first".
        let d = decide(&settings(Policy::First), &dir, &call, &facts());
        assert!(d.notices.is_empty());
    }

    #[test]
    fn channels_follow_server_settings_user_choice_and_addresses() {
        let dir = Directory::new(vec![
            UserEntry {
                mobile: Some("+49171".into()),
                xmpp_jid: Some("alice@example.org".into()),
                ..user("alice", &["201"])
            },
            UserEntry { email: None, ..user("bob", &["202"]) },
            UserEntry {
                xmpp_jid: Some("carol@example.org".into()),
                channels: Some(vec![Channel::Chat]),
                ..user("carol", &["203"])
            },
        ]);
        let s = RuleSettings { channels: vec![Channel::Sms, Channel::Email, Channel::Chat], ..settings(Policy::All) };
        let d = decide(&s, &dir, &ring_group_unanswered(), &facts());
        assert_eq!(d.notified(), ["alice", "carol"]);
        assert_eq!(d.notices[0].channels, [Channel::Email, Channel::Sms, Channel::Chat]);
        assert_eq!(d.notices[1].channels, [Channel::Chat]);
        assert_eq!(reasons(&d), [(Some("bob"), "no_channel")]);
    }

    #[test]
    fn settings_deserialise_with_defaults() {
        let s: RuleSettings =
            serde_json::from_str(r#"{"policy": "first", "exceptions": {"hidden_numbers": true}}"#).expect("parses");
        assert_eq!(s.policy, Policy::First);
        assert!(s.exceptions.hidden_numbers && s.exceptions.internal_calls && s.exceptions.short_ring);
        assert_eq!(s.exceptions.min_ring_secs, 2);
    }

    #[test]
    fn number_keys() {
        assert_eq!(number_key(" +49 (30) 123-45 "), "+493012345");
        assert_eq!(number_key("030/12345"), "03012345");
        assert_eq!(number_key("anonymous"), "");
    }

    #[test]
    fn directory_lookup() {
        let d = directory();
        assert_eq!(d.owner_of_number("+4930555100").map(|u| u.id.as_str()), Some("dora"));
        assert_eq!(d.owner_of_number("202").map(|u| u.id.as_str()), Some("bob"));
        assert_eq!(d.owner_of_extension(&Extension::new("803")).map(|u| u.id.as_str()), Some("carol"));
        assert!(d.get(&UserId::new("erin")).is_some());
        assert_eq!(d.users().len(), 5);
    }

    // --- called back --------------------------------------------------------------------------

    fn entry(id: i64, user: &str, kind: JournalKind, number: &str, at: i64) -> JournalEntry {
        JournalEntry {
            id,
            user: UserId::new(user),
            kind,
            number: Some(number.into()),
            contact_id: None,
            at,
            processed: false,
        }
    }

    #[test]
    fn a_later_outgoing_call_settles_missed_calls_from_that_number() {
        let journal = vec![
            entry(1, "alice", JournalKind::Missed, "+4930123456", 100),
            entry(2, "alice", JournalKind::Missed, "+4930123456", 200),
            entry(3, "alice", JournalKind::Missed, "+4989", 210),
            entry(4, "bob", JournalKind::Missed, "+4930123456", 220),
            entry(5, "alice", JournalKind::Answered, "+4930123456", 230),
            entry(6, "alice", JournalKind::Missed, "+4930123456", 400),
            JournalEntry { processed: true, ..entry(7, "alice", JournalKind::Missed, "+4930123456", 50) },
        ];
        let out = entry(8, "alice", JournalKind::Outgoing, "+49 30 123456", 300);
        assert_eq!(settled_by(&out, &journal), [1, 2], "not Bob's, not another number, not a later call");
        let missed = entry(9, "alice", JournalKind::Missed, "+4930123456", 300);
        assert!(settled_by(&missed, &journal).is_empty(), "only outgoing calls settle");
        let mut all = journal.clone();
        all.push(out);
        assert_eq!(all_settled(&all), [1, 2]);
    }

    #[test]
    fn calling_back_another_number_of_the_same_contact_settles_too() {
        let journal = vec![JournalEntry {
            contact_id: Some("k1".into()),
            ..entry(1, "alice", JournalKind::Missed, "+4930123456", 100)
        }];
        let out = JournalEntry {
            contact_id: Some("k1".into()),
            ..entry(2, "alice", JournalKind::Outgoing, "+49171999", 200)
        };
        assert_eq!(settled_by(&out, &journal), [1]);
        let hidden_out = JournalEntry { number: None, ..entry(3, "alice", JournalKind::Outgoing, "", 200) };
        assert!(settled_by(&hidden_out, &journal).is_empty());
    }

    #[test]
    fn summaries_with_an_unknown_call_id_still_decide() {
        // Smoke test over a summary built by hand, as the wiring may load one from storage.
        let s = CallSummary {
            call_id: CallId::new("x"),
            original_call_id: None,
            direction: Direction::Inbound,
            caller: Caller::with_number("+4930123456"),
            called: "201".into(),
            started_at: T0,
            ended_at: T0 + 5000,
            end_cause: String::new(),
            participants: vec![],
            answered: None,
        };
        assert_eq!(decide_with(&settings(Policy::All), &s).notified(), ["alice"]);
    }
}
