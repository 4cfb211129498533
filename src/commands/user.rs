//! User commands, in the DM with the bot (Matrix) or as messages to the component (XMPP):
//! status-change notifications, rooms, missed-call choices, language, group chats.

use clap::{Parser, Subcommand, ValueEnum};

pub use super::{Access, Adhoc};

/// Commands you can send to the bridge.
#[derive(Parser, Debug, PartialEq, Eq)]
#[command(
    name = "",
    no_binary_name = true,
    disable_help_flag = true,
    disable_version_flag = true,
    disable_help_subcommand = true,
    help_template = "{subcommands}"
)]
pub struct UserLine {
    #[command(subcommand)]
    pub command: UserCommand,
}

#[derive(Subcommand, Debug, PartialEq, Eq)]
pub enum UserCommand {
    /// Show these commands.
    Help,
    /// Status-change notifications: `notify add alice@example.org`, `notify list`,
    /// `notify cancel alice@example.org`; calls to pick up: `notify add @pia:example.org --when
    /// pickup`.
    Notify {
        #[command(subcommand)]
        action: NotifyCommand,
    },
    /// Who may see your presence (Matrix users): XMPP users you have no conversation with must ask
    /// you first; answer with `presence approve alice@example.org` or `presence deny
    /// alice@example.org`; `presence list` shows the requests and your answers.
    Presence {
        #[command(subcommand)]
        action: PresenceCommand,
    },
    /// Group conversations: `room create sales Sales team` starts the room #sales on the
    /// homeserver (XMPP: #sales\40server@bridge) with you as its moderator; `--with
    /// alice@example.org @bob:example.org` invites people on creation.
    Room {
        #[command(subcommand)]
        action: RoomCommand,
    },
    /// Admins only: an invitation to the control room (`control-room`).
    ControlRoom,
    /// Who the bridge takes you for, and your addresses on the other network (`whoami`).
    Whoami,
    /// Chat with a phone number by SMS (if an admin allowed you): `sms +49 176 1234 5678` or
    /// `sms Erika Mustermann` (a contact's mobile number; with several, the answer lists them
    /// and `sms Erika Mustermann 2`, or just `2`, picks one).
    Sms {
        /// The number (spaces allowed), or a contact's name and optionally which of their mobile
        /// numbers (1, 2, …).
        #[arg(required = true, num_args = 1..)]
        target: Vec<String>,
    },
    /// Which notices you get, how and where: `notifications` shows your choices;
    /// `notifications missed-calls on --via email --to me@example.org`, `notifications
    /// status-changes off` (kinds: missed-calls, missed-chats, pickup, status-changes).
    Notifications {
        /// What the notices are about (leave out to see your choices).
        #[arg(value_enum, requires = "switch")]
        kind: Option<NoticeKind>,
        /// On or off.
        #[arg(value_enum)]
        switch: Option<Switch>,
        /// How they reach you: chat, email or sms (as far as the admins allow).
        #[arg(long, value_enum, requires = "kind")]
        via: Option<Via>,
        /// Your e-mail address or mobile number (with --via email or sms; default: the one
        /// the bridge knows).
        #[arg(long, requires = "via")]
        to: Option<String>,
    },
    /// Missed-call notices for you: `missed-calls off`, `missed-calls on` (the same switch as
    /// `notifications missed-calls on|off`).
    MissedCalls {
        /// Missed-call notices on or off.
        switch: Switch,
    },
    /// The language of your notices: `language de`, `language en`.
    Language {
        /// The language (en, de, …).
        language: String,
    },
    /// A group conversation with everyone in a contact group, you as its moderator:
    /// `start-chat sales` lists whom the room will invite, `start-chat sales --without 2
    /// bob@example.org` leaves people out, `confirm` creates it. Your own group of that name
    /// comes first (`--shared`: the admins' group; of those, its members and admins may).
    StartChat {
        /// The contact group (yours, or the admins').
        group: String,
        /// People to leave out: their numbers in the list, or their addresses.
        #[arg(long, num_args = 1..)]
        without: Vec<String>,
        /// Use the admins' contact group even if you have a group of that name.
        #[arg(long)]
        shared: bool,
    },
    /// Create the room `start-chat` showed you (within 10 minutes): `confirm`.
    Confirm,
    /// Your journal of calls and chats, newest first: `journal`, `journal missed`, `journal calls
    /// --since 2026-12-01`, `journal chats --contact alice`; `journal note c12 called back`
    /// notes an entry; `journal export` sends it as a CSV file; `journal token new` gives you a
    /// token for the HTTP journal (`journal token revoke` takes yours back).
    #[command(args_conflicts_with_subcommands = true)]
    Journal {
        #[command(subcommand)]
        action: Option<JournalCommand>,
        #[command(flatten)]
        filter: JournalFilter,
    },
    /// Missed-chat summaries for you (a message left unread while you are away): `missed-chats
    /// off`, `missed-chats on`.
    MissedChats {
        /// Missed-chat summaries on or off.
        switch: Switch,
    },
    /// Your own contact groups, seen only by you, for `start-chat`: `groups mine create team`,
    /// `groups mine add team @bob:example.org alice@example.org`, `groups mine list`.
    Groups {
        #[command(subcommand)]
        scope: GroupsScope,
    },
}

/// Which entries of the journal to list, from when, with whom.
#[derive(clap::Args, Debug, Default, Clone, PartialEq, Eq)]
pub struct JournalFilter {
    /// From this day on (YYYY-MM-DD, UTC) or this time (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Only entries with this contact (part of a name, number or address).
    #[arg(long)]
    pub contact: Option<String>,
    /// The journal of a contact group's members (admins, and members of the group with the
    /// group-journal permission).
    #[arg(long)]
    pub group: Option<String>,
}

#[derive(Subcommand, Debug, PartialEq, Eq)]
pub enum JournalCommand {
    /// Missed calls and missed chats.
    Missed(JournalFilter),
    /// Calls only.
    Calls(JournalFilter),
    /// Chats only.
    Chats(JournalFilter),
    /// Calls and chats (the default).
    All(JournalFilter),
    /// Note TEXT on entry ID (as the listing shows it: c12, m7); `-` removes the note.
    Note {
        /// The entry (c12, m7).
        id: String,
        /// The note.
        #[arg(required = true, num_args = 1.., allow_hyphen_values = true)]
        text: Vec<String>,
    },
    /// Your journal as a CSV file.
    Export {
        /// From this day on (YYYY-MM-DD, UTC) or this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
    },
    /// A token for the HTTP journal (`GET /calls/journal`) that reads only your entries:
    /// `journal token new` (the old ones stay valid), `journal token revoke` (all of yours).
    Token {
        /// new or revoke.
        action: TokenAction,
    },
}

/// What `journal token` does.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenAction {
    New,
    Revoke,
}

/// Which entries a listing shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JournalScope {
    Missed,
    Calls,
    Chats,
    All,
}

impl JournalCommand {
    /// A listing's scope and filter; `None` for the other journal commands.
    pub fn listing(&self) -> Option<(JournalScope, &JournalFilter)> {
        match self {
            JournalCommand::Missed(f) => Some((JournalScope::Missed, f)),
            JournalCommand::Calls(f) => Some((JournalScope::Calls, f)),
            JournalCommand::Chats(f) => Some((JournalScope::Chats, f)),
            JournalCommand::All(f) => Some((JournalScope::All, f)),
            _ => None,
        }
    }
}

#[derive(Subcommand, Debug, PartialEq, Eq)]
pub enum GroupsScope {
    /// Your own contact groups (only you see and use them).
    Mine {
        #[command(subcommand)]
        action: MyGroupsCommand,
    },
}

#[derive(Subcommand, Debug, PartialEq, Eq)]
pub enum MyGroupsCommand {
    /// Create a group of your own: NAME of lower-case letters, digits, `.`, `_`, `-` (not the
    /// name of an admins' contact group).
    Create {
        /// The group's name.
        name: String,
    },
    /// Add people (Matrix IDs or JIDs) to your group.
    Add {
        /// The group's name.
        name: String,
        /// Matrix IDs or JIDs.
        #[arg(required = true, num_args = 1..)]
        members: Vec<String>,
    },
    /// Take people out of your group.
    Remove {
        /// The group's name.
        name: String,
        /// Matrix IDs or JIDs.
        #[arg(required = true, num_args = 1..)]
        members: Vec<String>,
    },
    /// Your groups and their members (or one group's).
    List {
        /// The group's name.
        name: Option<String>,
    },
    /// Delete your group.
    Delete {
        /// The group's name.
        name: String,
    },
}

impl UserCommand {
    /// Who may run the command (beside the commands; checked before any runs).
    pub fn access(&self) -> Access {
        match self {
            UserCommand::ControlRoom => Access::Admin,
            UserCommand::Help
            | UserCommand::Notify { .. }
            // Only Matrix users have requests to answer; checked when it runs.
            | UserCommand::Presence { .. }
            | UserCommand::Room { .. }
            | UserCommand::Whoami
            | UserCommand::MissedCalls { .. }
            // Only the caller's own choices are read or changed.
            | UserCommand::Notifications { .. }
            | UserCommand::MissedChats { .. }
            // Only the caller's own entries; `--group` is checked when it runs.
            | UserCommand::Journal { .. }
            | UserCommand::Language { .. }
            // The SMS permission (granted by admins) is checked when it runs.
            | UserCommand::Sms { .. }
            // Checked again when it runs: the caller must be in the group (or an admin), or
            // own it.
            | UserCommand::StartChat { .. }
            | UserCommand::Confirm
            // Only the owner's groups are read or changed.
            | UserCommand::Groups { .. } => Access::Anyone,
        }
    }
}

/// On or off.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Switch {
    On,
    Off,
}

/// A kind of notice (`notifications KIND …`).
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoticeKind {
    /// Calls that rang at your phone and were not answered.
    MissedCalls,
    /// Messages that stayed unread while you were away.
    MissedChats,
    /// A call waits to be picked up at a contact's phone.
    Pickup,
    /// A watched contact became available again or logged off (`notify add`).
    StatusChanges,
}

impl NoticeKind {
    pub fn core(self) -> crate::core::notify_choice::Kind {
        use crate::core::notify_choice::Kind;
        match self {
            NoticeKind::MissedCalls => Kind::MissedCalls,
            NoticeKind::MissedChats => Kind::MissedChats,
            NoticeKind::Pickup => Kind::Pickup,
            NoticeKind::StatusChanges => Kind::StatusChanges,
        }
    }
}

/// A channel for notices (`--via`).
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// Your chat with the bridge (bot on Matrix, component on XMPP).
    Chat,
    /// E-mail.
    Email,
    /// SMS to your mobile.
    Sms,
}

impl Via {
    pub fn core(self) -> crate::core::notify_choice::Channel {
        use crate::core::notify_choice::Channel;
        match self {
            Via::Chat => Channel::Chat,
            Via::Email => Channel::Email,
            Via::Sms => Channel::Sms,
        }
    }
}

#[derive(Subcommand, Debug, PartialEq, Eq)]
pub enum RoomCommand {
    /// Start a room: ALIAS is its address (lower-case letters, digits, `.`, `_`, `-`), NAME its
    /// title (default: the alias).
    Create {
        /// The room's address (lower-case letters, digits, `.`, `_`, `-`).
        alias: String,
        /// Its title (default: the address).
        name: Vec<String>,
        /// Let anyone join (otherwise only people a moderator invites).
        #[arg(long)]
        public: bool,
        /// People to invite on creation: JIDs, Matrix IDs or Matrix users' addresses.
        #[arg(long, num_args = 1..)]
        with: Vec<String>,
    },
    /// Leave a room for good (going offline does not): ROOM is its XMPP address, or its Matrix
    /// alias (`#sales:server`, or just `sales`).
    Leave {
        /// The room's address.
        room: String,
    },
}

/// Check a room alias localpart; the error says what is wrong.
pub fn check_alias(alias: &str) -> Result<(), String> {
    let ok = !alias.is_empty()
        && alias.len() <= 64
        && alias.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!("'{alias}' cannot be a room address: use 1 to 64 lower-case letters, digits, '.', '_' or '-'."))
    }
}

#[derive(Subcommand, Debug, PartialEq, Eq)]
pub enum NotifyCommand {
    /// Tell me when CONTACT (a JID or a Matrix ID) becomes available again and/or logs off, or
    /// (`--when pickup`) when a call rings at them while they are away and I may pick it up.
    Add {
        /// The contact: a JID or a Matrix ID.
        contact: String,
        /// Which changes to report.
        #[arg(long, value_enum, default_value_t = When::Both)]
        when: When,
    },
    /// List my notifications.
    List,
    /// Stop notifying me about CONTACT.
    Cancel {
        /// The contact: a JID or a Matrix ID.
        contact: String,
    },
}

#[derive(Subcommand, Debug, PartialEq, Eq)]
pub enum PresenceCommand {
    /// Let JID see your presence and absence note (and watch you with `notify add`).
    Approve {
        /// Who asked: their XMPP address.
        jid: String,
    },
    /// Do not let JID see your presence (also takes back an approval).
    Deny {
        /// Who asked: their XMPP address.
        jid: String,
    },
    /// The requests to see your presence, and your answers.
    List,
}

/// Which presence changes a watch reports.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// When the contact becomes available again.
    Available,
    /// When the contact logs off.
    Offline,
    /// Both.
    Both,
    /// When a call rings at the contact while they are not available and you may pick it up
    /// (the phone directory's pickup groups); kept beside the other choices.
    Pickup,
}

impl When {
    pub fn on_available(self) -> bool {
        matches!(self, When::Available | When::Both)
    }

    pub fn on_offline(self) -> bool {
        matches!(self, When::Offline | When::Both)
    }
}

/// Parse a message as a command; `Err` carries the text to answer (usage or the mistake).
pub fn parse(text: &str) -> Result<UserCommand, String> {
    parse_with(text, super::DEFAULT_PREFIX)
}

/// `parse`, with the configured command prefix.
pub fn parse_with(text: &str, prefix: &str) -> Result<UserCommand, String> {
    super::parse_line::<UserLine>(text, prefix, help).map(|l| l.command)
}

/// Parse a command given as its words (from an XMPP form); `Err` is the mistake with the usage.
pub fn parse_words<S: AsRef<str>>(words: &[S]) -> Result<UserCommand, String> {
    super::parse_words::<UserLine, S>(words, help).map(|l| l.command)
}

/// The user commands offered as XMPP ad-hoc commands.
pub const ADHOC: &[Adhoc] = &[
    Adhoc::new(&["help"]),
    Adhoc::new(&["notify", "add"]),
    Adhoc::new(&["notify", "list"]),
    Adhoc::new(&["notify", "cancel"]),
    Adhoc::new(&["room", "create"]),
    Adhoc::new(&["sms"]),
    Adhoc::new(&["notifications"]),
    Adhoc::new(&["missed-calls"]),
    Adhoc::new(&["missed-chats"]),
    Adhoc::new(&["language"]),
    Adhoc::new(&["start-chat"]),
    Adhoc::new(&["confirm"]),
    Adhoc::new(&["groups", "mine"]),
    Adhoc::new(&["whoami"]),
];

/// The command list.
pub fn help() -> String {
    super::render_help::<UserLine>("Commands")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_notify_commands() {
        assert_eq!(
            parse("notify add alice@example.org").unwrap(),
            UserCommand::Notify {
                action: NotifyCommand::Add { contact: "alice@example.org".into(), when: When::Both }
            }
        );
        assert_eq!(
            parse("!ucb notify add @bob:hs --when offline").unwrap(),
            UserCommand::Notify { action: NotifyCommand::Add { contact: "@bob:hs".into(), when: When::Offline } }
        );
        assert_eq!(
            parse("notify add @pia:hs --when pickup").unwrap(),
            UserCommand::Notify { action: NotifyCommand::Add { contact: "@pia:hs".into(), when: When::Pickup } }
        );
        assert!(!When::Pickup.on_available() && !When::Pickup.on_offline());
        assert_eq!(parse("  notify   list ").unwrap(), UserCommand::Notify { action: NotifyCommand::List });
        assert_eq!(
            parse("notify cancel bob").unwrap(),
            UserCommand::Notify { action: NotifyCommand::Cancel { contact: "bob".into() } }
        );
        assert_eq!(parse("help").unwrap(), UserCommand::Help);
        assert_eq!(
            parse("sms +49 176 1234 5678").unwrap(),
            UserCommand::Sms { target: vec!["+49".into(), "176".into(), "1234".into(), "5678".into()] }
        );
        assert!(parse("sms").unwrap_err().contains("<TARGET>"));
        assert_eq!(
            parse("room create sales Sales team --public").unwrap(),
            UserCommand::Room {
                action: RoomCommand::Create {
                    alias: "sales".into(),
                    name: vec!["Sales".into(), "team".into()],
                    public: true,
                    with: vec![]
                }
            }
        );
        assert_eq!(
            parse("room create sales Sales --with a@x @b:hs").unwrap(),
            UserCommand::Room {
                action: RoomCommand::Create {
                    alias: "sales".into(),
                    name: vec!["Sales".into()],
                    public: false,
                    with: vec!["a@x".into(), "@b:hs".into()]
                }
            }
        );
        assert!(parse("room create sales --with").unwrap_err().contains("--with"));
        assert!(check_alias("sales-2").is_ok());
        assert!(check_alias("Sales").unwrap_err().contains("lower-case"));
        assert!(check_alias("").is_err());
        assert_eq!(parse("missed-calls off").unwrap(), UserCommand::MissedCalls { switch: Switch::Off });
        assert!(parse("missed-calls maybe").unwrap_err().contains("on"));
        assert_eq!(parse("language de").unwrap(), UserCommand::Language { language: "de".into() });
        assert_eq!(
            parse("notifications").unwrap(),
            UserCommand::Notifications { kind: None, switch: None, via: None, to: None }
        );
        assert_eq!(
            parse("notifications missed-calls on --via email --to me@example.org").unwrap(),
            UserCommand::Notifications {
                kind: Some(NoticeKind::MissedCalls),
                switch: Some(Switch::On),
                via: Some(Via::Email),
                to: Some("me@example.org".into())
            }
        );
        assert_eq!(
            parse("notifications status-changes off").unwrap(),
            UserCommand::Notifications {
                kind: Some(NoticeKind::StatusChanges),
                switch: Some(Switch::Off),
                via: None,
                to: None
            }
        );
        // A kind needs its switch, --to needs --via, and only known kinds and channels read.
        assert!(parse("notifications pickup").unwrap_err().contains("<SWITCH>"));
        assert!(parse("notifications pickup on --to x@y.org").unwrap_err().contains("--via"));
        let err = parse("notifications missed-calls on --via fax").unwrap_err();
        assert!(err.contains("'fax'") && err.contains("chat, email, sms"), "{err}");
        assert!(parse("notifications weather on").unwrap_err().contains("missed-calls"));
        assert_eq!(
            parse("start-chat sales").unwrap(),
            UserCommand::StartChat { group: "sales".into(), without: vec![], shared: false }
        );
        assert_eq!(
            parse("start-chat sales --without 2 bob@x --shared").unwrap(),
            UserCommand::StartChat { group: "sales".into(), without: vec!["2".into(), "bob@x".into()], shared: true }
        );
        assert!(parse("start-chat sales --without").unwrap_err().contains("--without"));
        assert_eq!(parse("confirm").unwrap(), UserCommand::Confirm);
        assert_eq!(
            parse("groups mine add team @a:hs b@x").unwrap(),
            UserCommand::Groups {
                scope: GroupsScope::Mine {
                    action: MyGroupsCommand::Add { name: "team".into(), members: vec!["@a:hs".into(), "b@x".into()] }
                }
            }
        );
        assert_eq!(
            parse("groups mine list").unwrap(),
            UserCommand::Groups { scope: GroupsScope::Mine { action: MyGroupsCommand::List { name: None } } }
        );
        assert!(parse("groups mine add team").unwrap_err().contains("<MEMBERS>"));
        assert!(parse("groups create sales").is_err(), "the admins' groups command is not a user command");
        assert!(parse("start-chat").unwrap_err().contains("<GROUP>"));
        assert_eq!(
            parse("presence approve alice@example.org").unwrap(),
            UserCommand::Presence { action: PresenceCommand::Approve { jid: "alice@example.org".into() } }
        );
        assert_eq!(
            parse("!ucb presence deny alice@example.org").unwrap(),
            UserCommand::Presence { action: PresenceCommand::Deny { jid: "alice@example.org".into() } }
        );
        assert_eq!(parse("presence list").unwrap(), UserCommand::Presence { action: PresenceCommand::List });
        assert!(parse("presence approve").unwrap_err().contains("<JID>"));
    }

    #[test]
    fn parses_journal_commands() {
        let journal = |action, filter| UserCommand::Journal { action, filter };
        assert_eq!(parse("journal").unwrap(), journal(None, JournalFilter::default()));
        let since = JournalFilter { since: Some("2026-12-01".into()), ..Default::default() };
        assert_eq!(parse("journal --since 2026-12-01").unwrap(), journal(None, since.clone()));
        assert_eq!(
            parse("journal missed --since 2026-12-01").unwrap(),
            journal(Some(JournalCommand::Missed(since)), JournalFilter::default())
        );
        let contact =
            JournalFilter { contact: Some("erika".into()), group: Some("sales".into()), ..Default::default() };
        assert_eq!(
            parse("journal chats --contact erika --group sales").unwrap(),
            journal(Some(JournalCommand::Chats(contact)), JournalFilter::default())
        );
        assert_eq!(
            parse("journal note c12 called back - fine").unwrap(),
            journal(
                Some(JournalCommand::Note {
                    id: "c12".into(),
                    text: vec!["called".into(), "back".into(), "-".into(), "fine".into()]
                }),
                JournalFilter::default()
            )
        );
        assert_eq!(
            parse("journal token new").unwrap(),
            journal(Some(JournalCommand::Token { action: TokenAction::New }), JournalFilter::default())
        );
        assert!(parse("journal token maybe").unwrap_err().contains("revoke"));
        assert!(parse("journal note c12").unwrap_err().contains("<TEXT>"));
        assert_eq!(parse("missed-chats off").unwrap(), UserCommand::MissedChats { switch: Switch::Off });
        assert_eq!(parse("journal export").unwrap().access(), Access::Anyone);
    }

    /// The permission of every user command: only `control-room` needs an admin.
    #[test]
    fn user_command_permissions() {
        for (line, access) in [
            ("help", Access::Anyone),
            ("notify list", Access::Anyone),
            ("notify add a@b", Access::Anyone),
            ("notify cancel a@b", Access::Anyone),
            ("room create x", Access::Anyone),
            ("room leave x", Access::Anyone),
            ("whoami", Access::Anyone),
            ("missed-calls on", Access::Anyone),
            ("notifications", Access::Anyone),
            ("notifications pickup off", Access::Anyone),
            ("language en", Access::Anyone),
            ("start-chat sales", Access::Anyone),
            ("confirm", Access::Anyone),
            ("groups mine list", Access::Anyone),
            ("presence approve a@b", Access::Anyone),
            ("presence list", Access::Anyone),
            ("control-room", Access::Admin),
        ] {
            let command = parse(line).unwrap();
            assert_eq!(command.access(), access, "{line}");
            assert_eq!(command.access().check(false).is_ok(), access == Access::Anyone, "{line}");
            assert!(command.access().check(true).is_ok(), "{line}");
        }
    }

    #[test]
    fn mistakes_get_a_clear_answer() {
        let err = parse("notify add").unwrap_err();
        assert!(err.contains("<CONTACT>"), "{err}");
        let err = parse("notify add a@b --when sometimes").unwrap_err();
        assert!(err.contains("sometimes") && err.contains("available"), "{err}");
        let err = parse("frobnicate").unwrap_err();
        assert!(err.contains("frobnicate"), "{err}");
        assert!(parse("").unwrap_err().contains("notify"));
        // Every mistake comes with the usage of the command concerned.
        let err = parse("missed-calls maybe").unwrap_err();
        assert!(err.contains("'maybe'") && err.contains("Usage: missed-calls <SWITCH>"), "{err}");
        assert!(err.contains("on, off"), "{err}");
        let err = parse("notify frob").unwrap_err();
        assert!(err.contains("frob") && err.contains("Usage: notify <COMMAND>") && err.contains("- add"), "{err}");
        assert_eq!(parse("notify add").unwrap_err().matches("Usage:").count(), 1, "one usage, not clap's too");
        let err = parse("frobnicate").unwrap_err();
        assert!(err.contains("Status-change notifications"), "an unknown command gets the list: {err}");
        assert!(help().contains("Status-change notifications"));
        assert!(help().contains("presence approve"));
    }
}
