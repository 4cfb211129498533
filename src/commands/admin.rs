//! Admin commands, run in the control room (Matrix) or as the `admin` ad-hoc command (XMPP).
//! Only people listed under `admins:` in the config may run them; everyone else is refused.

use clap::{Parser, Subcommand, ValueEnum};

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
    /// Show these commands: `help`.
    Help,
    /// Uptime, version, connections, queue depth and counts: `status`.
    Status,
    /// Rooms the bridge hosts: `rooms list`, `rooms info #sales:localhost`.
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
    /// A notice to everyone with a chat with the bridge: `broadcast Maintenance at 18:00`.
    Broadcast { text: Vec<String> },
}

#[derive(Subcommand, Debug, PartialEq, Eq)]
pub enum RoomsCommand {
    /// All hosted rooms with their participant counts.
    List,
    /// Participants and roles of one room (alias or room ID).
    Info { room: String },
}

#[derive(Subcommand, Debug, PartialEq, Eq)]
pub enum UsersCommand {
    /// XMPP users (with their ghosts) and Matrix users with a chat with the bot.
    List,
    /// One person's permissions, rooms and watches (Matrix ID or JID).
    Info { user: String },
}

#[derive(Subcommand, Debug, PartialEq, Eq)]
pub enum PermissionsCommand {
    /// Allow USER (Matrix ID or JID) to use PERMISSION.
    Grant { user: String, permission: Permission },
    /// Take PERMISSION away from USER.
    Revoke { user: String, permission: Permission },
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
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Sms => "sms",
            Permission::Chatbot => "chatbot",
            Permission::Chat => "chat",
        }
    }
}

/// Parse an admin command; `Err` carries the text to answer (usage or the mistake). A leading
/// `!ucb` is accepted (and needed outside the control room).
pub fn parse(text: &str) -> Result<AdminCommand, String> {
    super::parse_line::<AdminLine>(text, help).map(|l| l.command)
}

pub fn help() -> String {
    super::render_help::<AdminLine>("Admin commands")
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
