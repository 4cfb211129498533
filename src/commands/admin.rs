//! Admin commands, run in the control room (Matrix) or as the `admin` ad-hoc command (XMPP).
//! Only people listed under `admins:` in the config may run them; everyone else is refused.

use clap::{Parser, Subcommand, ValueEnum};

pub use super::{Access, Adhoc};

/// Commands for the bridge's admins.
#[derive(Parser, Debug, PartialEq, Eq)]
#[command(
    name = "",
    no_binary_name = true,
    disable_help_flag = true,
    disable_version_flag = true,
    disable_help_subcommand = true,
    help_template = "{subcommands}"
)]
pub struct AdminLine {
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Subcommand, Debug, PartialEq, Eq)]
pub enum AdminCommand {
    /// Show these commands, or one command's details: `help`, `help block`.
    Help {
        /// The command to explain.
        command: Vec<String>,
    },
    /// Uptime, version, connections, queue depth and counts: `status`.
    Status,
    /// Rooms the bridge hosts or links: `rooms list`, `rooms info #sales:localhost`,
    /// `rooms link !abc:localhost team@conference.localhost`, `rooms unlink !abc:localhost`.
    Rooms {
        #[command(subcommand)]
        action: RoomsCommand,
    },
    /// Who may use what: `permissions grant @bob:localhost sms`, `permissions revoke alice@localhost sms`,
    /// `permissions list`.
    Permissions {
        #[command(subcommand)]
        action: PermissionsCommand,
    },
    /// People the bridge knows: `users list`, `users info @bob:localhost`.
    Users {
        #[command(subcommand)]
        action: UsersCommand,
    },
    /// Contact groups (for `start-chat`): `groups create sales`, `groups add sales @bob:localhost alice@localhost`,
    /// `groups remove sales alice@localhost`, `groups list`, `groups delete sales`.
    Groups {
        #[command(subcommand)]
        action: GroupsCommand,
    },
    /// The missed-call block list: `block add +49 30 1234567`, `block add --extension 299`,
    /// `block remove +49301234567`, `block list`.
    Block {
        #[command(subcommand)]
        action: BlockCommand,
    },
    /// Missed-call settings: `missed-calls policy first`, `missed-calls options`,
    /// `missed-calls options set short_ring off`, `missed-calls options reset short_ring`.
    MissedCalls {
        #[command(subcommand)]
        action: MissedCallsCommand,
    },
    /// Contacts for missed-call notices: upload a vCard or CSV file here, then `contacts import`
    /// (or answer the file with it).
    Contacts {
        #[command(subcommand)]
        action: ContactsCommand,
    },
    /// The AI assistant: `chatbot usage` (today's use per person: messages, tokens, images),
    /// `chatbot usage 30` (the last 30 days), `chatbot clear-all` (forget every conversation).
    Chatbot {
        #[command(subcommand)]
        action: ChatbotCommand,
    },
    /// A notice to everyone with a chat with the bridge: `broadcast Maintenance at 18:00`.
    Broadcast {
        /// The notice.
        text: Vec<String>,
    },
    /// Read the config file again and apply what can change without a restart: `reload`.
    Reload,
    /// The last admin commands (refused attempts too) with who ran them and the result:
    /// `audit`, `audit 50`.
    Audit {
        /// How many (1 to 500).
        #[arg(default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=500))]
        count: u16,
    },
}

impl AdminCommand {
    /// Who may run the command. Every admin command is for admins only; the check sits here,
    /// beside the commands, and runs before any of them.
    pub fn access(&self) -> Access {
        match self {
            AdminCommand::Help { .. }
            | AdminCommand::Status
            | AdminCommand::Rooms { .. }
            | AdminCommand::Permissions { .. }
            | AdminCommand::Users { .. }
            | AdminCommand::Groups { .. }
            | AdminCommand::Block { .. }
            | AdminCommand::MissedCalls { .. }
            | AdminCommand::Contacts { .. }
            | AdminCommand::Chatbot { .. }
            | AdminCommand::Broadcast { .. }
            | AdminCommand::Reload
            | AdminCommand::Audit { .. } => Access::Admin,
        }
    }
}

#[derive(Subcommand, Debug, PartialEq, Eq)]
pub enum ChatbotCommand {
    /// Use per person (messages, tokens, images), today or over the last DAYS days (UTC).
    Usage {
        /// How many days, today included (1 to 366).
        #[arg(default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=366))]
        days: u16,
    },
    /// Forget every conversation with the assistant, people's and rooms'.
    ClearAll,
}

#[derive(Subcommand, Debug, PartialEq, Eq)]
pub enum RoomsCommand {
    /// All hosted rooms with their participant counts, and the linked MUCs.
    List,
    /// Participants and roles of one room (alias or room ID).
    Info {
        /// Alias or room ID.
        room: String,
    },
    /// Make an existing Matrix room (room ID or alias; the bot must be able to join it) the
    /// room of an existing MUC on an XMPP server: its Matrix members join the MUC, the MUC's
    /// occupants appear in the room.
    Link {
        /// The Matrix room: room ID or alias.
        matrix_room: String,
        /// The MUC's address.
        xmpp_muc: String,
    },
    /// Undo a link (room ID, alias or MUC address): the Matrix members leave the MUC, the MUC's
    /// occupants leave the room; the room itself stays.
    Unlink {
        /// Room ID, alias or MUC address.
        room: String,
    },
}

#[derive(Subcommand, Debug, PartialEq, Eq)]
pub enum GroupsCommand {
    /// A new, empty group: NAME of lower-case letters, digits, `.`, `_`, `-`.
    Create {
        /// The group's name.
        name: String,
    },
    /// Remove a group and its member list.
    Delete {
        /// The group's name.
        name: String,
    },
    /// Add people (Matrix IDs or JIDs) to a group.
    Add {
        /// The group's name.
        name: String,
        /// Matrix IDs or JIDs (in a form: one a line).
        #[arg(required = true)]
        members: Vec<String>,
    },
    /// Take people out of a group.
    Remove {
        /// The group's name.
        name: String,
        /// Matrix IDs or JIDs (in a form: one a line).
        #[arg(required = true)]
        members: Vec<String>,
    },
    /// Every group with its members, or one group's.
    List {
        /// The group's name (none: every group).
        name: Option<String>,
    },
}

#[derive(Subcommand, Debug, PartialEq, Eq)]
pub enum BlockCommand {
    /// Put a number on the block list (calls from it are never reported), or with `--extension`
    /// an extension (its phone is never told). The config's list applies as well.
    Add {
        /// A phone number (spaces allowed) or an extension.
        #[arg(required = true)]
        number: Vec<String>,
        /// It is an extension.
        #[arg(long)]
        extension: bool,
    },
    /// Take a number (or with `--extension` an extension) off the block list.
    Remove {
        /// A phone number (spaces allowed) or an extension.
        #[arg(required = true)]
        number: Vec<String>,
        /// It is an extension.
        #[arg(long)]
        extension: bool,
    },
    /// The block list: stored entries and those from the config.
    List,
}

#[derive(Subcommand, Debug, PartialEq, Eq)]
pub enum MissedCallsCommand {
    /// Show or set who is told about a missed call: none, first (whose phone rang first), last,
    /// all.
    Policy {
        /// Who is told (none: show the policy).
        policy: Option<CallPolicy>,
    },
    /// Show the options (`missed-calls options`), set one (`missed-calls options set min_ring_secs 3`)
    /// or go back to the config's value (`missed-calls options reset min_ring_secs`).
    Options {
        #[command(subcommand)]
        action: Option<OptionsCommand>,
    },
}

#[derive(Subcommand, Debug, PartialEq, Eq)]
pub enum OptionsCommand {
    /// Every option with its value and where it comes from.
    Show,
    /// Set option NAME to VALUE (on/off for switches, a number, a link prefix).
    Set {
        /// The option.
        name: String,
        /// Its new value.
        value: String,
    },
    /// Drop the stored value of NAME: the config's value applies again.
    Reset {
        /// The option.
        name: String,
    },
}

/// Who is told about a missed call.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallPolicy {
    /// Nobody.
    None,
    /// The person whose phone rang first.
    First,
    /// The person whose phone started ringing last.
    Last,
    /// Everybody whose phone rang.
    All,
}

impl CallPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            CallPolicy::None => "none",
            CallPolicy::First => "first",
            CallPolicy::Last => "last",
            CallPolicy::All => "all",
        }
    }
}

#[derive(Subcommand, Debug, PartialEq, Eq)]
pub enum ContactsCommand {
    /// Import the vCard (.vcf) or CSV (.csv) file you uploaded last in the control room (or the
    /// one this command answers); a file with the same name replaces the earlier import.
    Import,
    /// The imported files with their contact counts.
    List,
}

#[derive(Subcommand, Debug, PartialEq, Eq)]
pub enum UsersCommand {
    /// XMPP users (with their ghosts) and Matrix users with a chat with the bot.
    List,
    /// One person's permissions, rooms and watches (Matrix ID or JID).
    Info {
        /// A Matrix ID or JID.
        user: String,
    },
}

#[derive(Subcommand, Debug, PartialEq, Eq)]
pub enum PermissionsCommand {
    /// Allow USER (Matrix ID or JID) to use PERMISSION.
    Grant {
        /// A Matrix ID or JID.
        user: String,
        /// What to allow.
        permission: Permission,
    },
    /// Take PERMISSION away from USER.
    Revoke {
        /// A Matrix ID or JID.
        user: String,
        /// What to take away.
        permission: Permission,
    },
    /// Every grant.
    List,
}

/// What an admin can allow.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// Send SMS to phone numbers.
    Sms,
    /// Talk to the chatbot.
    Chatbot,
    /// Chat through the bridge.
    Chat,
    /// See the journal of the contact groups one is a member of (`journal --group G`).
    GroupJournal,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Sms => "sms",
            Permission::Chatbot => "chatbot",
            Permission::Chat => "chat",
            Permission::GroupJournal => "group-journal",
        }
    }
}

/// Parse an admin command; `Err` carries the text to answer (usage or the mistake). A leading
/// `!ucb` (`admins.command_prefix`) is accepted.
pub fn parse(text: &str) -> Result<AdminCommand, String> {
    parse_with(text, super::DEFAULT_PREFIX)
}

/// `parse`, with the configured command prefix.
pub fn parse_with(text: &str, prefix: &str) -> Result<AdminCommand, String> {
    super::parse_line::<AdminLine>(text, prefix, help).map(|l| l.command)
}

/// Parse a command given as its words (from an XMPP form); `Err` is the mistake with the usage.
pub fn parse_words<S: AsRef<str>>(words: &[S]) -> Result<AdminCommand, String> {
    super::parse_words::<AdminLine, S>(words, help).map(|l| l.command)
}

/// The admin commands offered as XMPP ad-hoc commands (besides `admin`, which takes a command
/// line): to admins only.
pub const ADHOC: &[Adhoc] = &[
    Adhoc::new(&["block"]),
    Adhoc::new(&["missed-calls", "policy"]),
    Adhoc::new(&["groups"]),
    Adhoc { path: &["contacts", "import"], file: true },
];

pub fn help() -> String {
    super::render_help::<AdminLine>("Admin commands")
}

/// `help COMMAND...`: one command's help.
pub fn help_for(path: &[String]) -> Result<String, String> {
    super::render_command_help::<AdminLine>(path)
}

/// Check a contact group's name; the error says what is wrong.
pub fn check_group_name(name: &str) -> Result<(), String> {
    super::user::check_alias(name).map_err(|_| {
        format!("'{name}' cannot be a group name: use 1 to 64 lower-case letters, digits, '.', '_' or '-'.")
    })
}

/// Does `id` match a pattern from the config? `*` stands for any run of characters
/// (`@*:corp.example` for a whole homeserver, `*@corp.example` for a whole XMPP domain).
pub fn matches(pattern: &str, id: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == id;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !id.starts_with(first) || !id[first.len()..].ends_with(last) || id.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &id[first.len()..id.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_admin_commands() {
        assert_eq!(parse("status"), Ok(AdminCommand::Status));
        assert_eq!(parse("audit"), Ok(AdminCommand::Audit { count: 20 }));
        assert_eq!(parse("audit 5"), Ok(AdminCommand::Audit { count: 5 }));
        assert!(parse("audit 0").is_err() && parse("audit 501").is_err());
        // A bad value is answered with the mistake and the command's usage.
        let err = parse("audit abc").unwrap_err();
        assert!(err.contains("'abc'") && err.contains("Usage: audit [COUNT]"), "{err}");
        assert!(err.contains("- COUNT: How many"), "{err}");
        let err = parse("groups add sales").unwrap_err();
        assert!(err.contains("Usage: groups add <NAME> <MEMBERS>..."), "{err}");
        assert_eq!(parse_with("%ucb status", "%ucb"), Ok(AdminCommand::Status));
        assert!(parse_with("!ucb status", "%ucb").is_err(), "only the configured prefix is taken");
        assert_eq!(parse("!ucb rooms list"), Ok(AdminCommand::Rooms { action: RoomsCommand::List }));
        assert_eq!(
            parse("permissions grant @bob:hs sms"),
            Ok(AdminCommand::Permissions {
                action: PermissionsCommand::Grant { user: "@bob:hs".into(), permission: Permission::Sms }
            })
        );
        assert_eq!(
            parse("broadcast back at 6"),
            Ok(AdminCommand::Broadcast { text: vec!["back".into(), "at".into(), "6".into()] })
        );
        let err = parse("permissions grant @bob:hs fly").unwrap_err();
        assert!(err.contains("fly") && err.contains("sms"), "{err}");
        assert!(parse("frobnicate").unwrap_err().contains("frobnicate"));
        assert!(help().contains("permissions"));
        assert_eq!(
            parse("users info a@b"),
            Ok(AdminCommand::Users { action: UsersCommand::Info { user: "a@b".into() } })
        );
        assert_eq!(parse("help block"), Ok(AdminCommand::Help { command: vec!["block".into()] }));
        assert_eq!(parse("reload"), Ok(AdminCommand::Reload));
    }

    #[test]
    fn parses_the_new_admin_commands() {
        assert_eq!(
            parse("rooms link !abc:hs team@conference.x"),
            Ok(AdminCommand::Rooms {
                action: RoomsCommand::Link { matrix_room: "!abc:hs".into(), xmpp_muc: "team@conference.x".into() }
            })
        );
        assert_eq!(
            parse("rooms unlink #team:hs"),
            Ok(AdminCommand::Rooms { action: RoomsCommand::Unlink { room: "#team:hs".into() } })
        );
        assert_eq!(
            parse("groups add sales @bob:hs alice@x"),
            Ok(AdminCommand::Groups {
                action: GroupsCommand::Add { name: "sales".into(), members: vec!["@bob:hs".into(), "alice@x".into()] }
            })
        );
        assert!(parse("groups add sales").unwrap_err().contains("MEMBERS"));
        assert_eq!(parse("groups list"), Ok(AdminCommand::Groups { action: GroupsCommand::List { name: None } }));
        assert_eq!(parse("chatbot usage"), Ok(AdminCommand::Chatbot { action: ChatbotCommand::Usage { days: 1 } }));
        assert_eq!(parse("chatbot usage 30"), Ok(AdminCommand::Chatbot { action: ChatbotCommand::Usage { days: 30 } }));
        assert_eq!(parse("chatbot clear-all"), Ok(AdminCommand::Chatbot { action: ChatbotCommand::ClearAll }));
        assert!(parse("chatbot usage 0").is_err());
        assert_eq!(
            parse("block add +49 30 1234567"),
            Ok(AdminCommand::Block {
                action: BlockCommand::Add {
                    number: vec!["+49".into(), "30".into(), "1234567".into()],
                    extension: false
                }
            })
        );
        assert_eq!(
            parse("block remove --extension 299"),
            Ok(AdminCommand::Block { action: BlockCommand::Remove { number: vec!["299".into()], extension: true } })
        );
        assert_eq!(
            parse("missed-calls policy first"),
            Ok(AdminCommand::MissedCalls { action: MissedCallsCommand::Policy { policy: Some(CallPolicy::First) } })
        );
        assert!(parse("missed-calls policy sometimes").unwrap_err().contains("first"));
        assert_eq!(
            parse("missed-calls options"),
            Ok(AdminCommand::MissedCalls { action: MissedCallsCommand::Options { action: None } })
        );
        assert_eq!(
            parse("missed-calls options set short_ring off"),
            Ok(AdminCommand::MissedCalls {
                action: MissedCallsCommand::Options {
                    action: Some(OptionsCommand::Set { name: "short_ring".into(), value: "off".into() })
                }
            })
        );
        assert_eq!(parse("contacts import"), Ok(AdminCommand::Contacts { action: ContactsCommand::Import }));
        assert!(check_group_name("sales-2").is_ok() && check_group_name("Sales Team").is_err());
    }

    #[test]
    fn help_for_one_command() {
        let h = help_for(&["block".into()]).unwrap();
        assert!(h.contains("block list") || h.contains("- list"), "{h}");
        let h = help_for(&["missed-calls".into(), "options".into()]).unwrap();
        assert!(h.contains("set") && h.contains("reset"), "{h}");
        assert!(help_for(&["fly".into()]).unwrap_err().contains("fly"));
        for word in ["rooms", "groups", "block", "missed-calls", "contacts", "reload", "broadcast"] {
            assert!(help().contains(word), "{word} missing from help");
        }
    }

    /// Every admin command is refused to non-admins, and allowed to admins.
    #[test]
    fn every_admin_command_needs_an_admin() {
        let lines = [
            "help",
            "status",
            "rooms list",
            "rooms info #a:hs",
            "rooms link !a:hs m@c.x",
            "rooms unlink !a:hs",
            "users list",
            "users info @a:hs",
            "permissions grant @a:hs sms",
            "permissions revoke @a:hs chat",
            "permissions list",
            "groups create g",
            "groups delete g",
            "groups add g @a:hs",
            "groups remove g @a:hs",
            "groups list",
            "block add 123",
            "block remove 123",
            "block list",
            "missed-calls policy",
            "missed-calls options set short_ring on",
            "contacts import",
            "contacts list",
            "broadcast hi",
            "reload",
        ];
        for line in lines {
            let command = parse(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(command.access(), Access::Admin, "{line}");
            assert!(command.access().check(false).unwrap_err().contains("admins"), "{line}");
            assert!(command.access().check(true).is_ok(), "{line}");
        }
    }

    #[test]
    fn admin_patterns() {
        assert!(matches("@admin:hs", "@admin:hs"));
        assert!(!matches("@admin:hs", "@admin:hs2"));
        assert!(matches("@*:corp.example", "@ann:corp.example"));
        assert!(!matches("@*:corp.example", "@ann:corp.example.evil"));
        assert!(matches("*@corp.example", "bob@corp.example"));
        assert!(!matches("*@corp.example", "bob@evilcorp.example.org"));
        assert!(matches("a*b*c", "axxbyyc") && !matches("a*b*c", "ac"));
        assert!(matches("*", "anyone"));
    }
}
