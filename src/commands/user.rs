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
    /// homeserver (XMPP: #sales\40server@bridge) with you as its moderator.
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
    /// Missed-call notices for you: `missed-calls off`, `missed-calls on`.
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
    /// Your own contact groups, seen only by you, for `start-chat`: `groups mine create team`,
    /// `groups mine add team @bob:example.org alice@example.org`, `groups mine list`.
    Groups {
        #[command(subcommand)]
        scope: GroupsScope,
    },
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
    Adhoc::new(&["missed-calls"]),
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
                    public: true
                }
            }
        );
        assert!(check_alias("sales-2").is_ok());
        assert!(check_alias("Sales").unwrap_err().contains("lower-case"));
        assert!(check_alias("").is_err());
        assert_eq!(parse("missed-calls off").unwrap(), UserCommand::MissedCalls { switch: Switch::Off });
        assert!(parse("missed-calls maybe").unwrap_err().contains("on"));
        assert_eq!(parse("language de").unwrap(), UserCommand::Language { language: "de".into() });
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

    /// The permission of every user command: only `control-room` needs an admin.
    #[test]
    fn user_command_permissions() {
        for (line, access) in [
            ("help", Access::Anyone),
            ("notify list", Access::Anyone),
            ("notify add a@b", Access::Anyone),
            ("notify cancel a@b", Access::Anyone),
            ("room create x", Access::Anyone),
            ("whoami", Access::Anyone),
            ("missed-calls on", Access::Anyone),
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
