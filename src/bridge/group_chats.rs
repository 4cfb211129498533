//! Group chats from contact groups: `start-chat GROUP` shows whom the room will invite and
//! remembers it (`core::menus`), `--without` leaves people out, `confirm` creates the room; and
//! people's own groups (`groups mine …`), which only their owner sees and uses.

use std::time::Instant;

use crate::bridge::Bridge;
use crate::commands::admin::check_group_name;
use crate::commands::user::MyGroupsCommand;
use crate::core::action::Action;
use crate::core::ids::RoomId;
use crate::core::menus::{self, Menu};
use crate::core::watch::Party;
use crate::store::StoreTx;

/// At most this many own groups per person, and members per own group: a group is for a room,
/// which holds at most `rooms.max_participants` (30 by default).
const MAX_OWN_GROUPS: usize = 50;
const MAX_OWN_MEMBERS: usize = 100;

impl Bridge {
    pub(super) fn offer_menu(&self, who: &Party, menu: Menu) {
        if let Ok(mut m) = self.menus.lock() {
            m.offer(who, menu, Instant::now());
        }
    }

    pub(super) fn open_menu(&self, who: &Party) -> Option<Menu> {
        self.menus.lock().ok().and_then(|m| m.get(who, Instant::now()).cloned())
    }

    /// `start-chat GROUP [--without …] [--shared]`: the caller's own group GROUP (unless
    /// `shared`), else the admins' contact group GROUP; the answer lists whom the room will
    /// invite, and `confirm` creates it.
    pub(super) async fn start_chat_preview(
        &self,
        tx: &mut StoreTx,
        caller: &Party,
        group: &str,
        without: &[String],
        shared: bool,
    ) -> crate::store::Result<String> {
        let own = if shared { None } else { tx.own_group_members(caller, group).await? };
        let admins = tx.group_members(group).await?;
        let (members, whose) = match (own, admins) {
            (Some(members), Some(_)) => (
                members,
                format!(
                    "your own group {group} (the admins' contact group of the same name: `start-chat {group} --shared`)"
                ),
            ),
            (Some(members), None) => (members, format!("your own group {group}")),
            (None, Some(members)) => {
                if !members.contains(caller) && !self.is_admin(caller) {
                    return Ok(format!("Only the members of the group {group} (and admins) can start a chat with it."));
                }
                (members, format!("the contact group {group}"))
            }
            (None, None) if shared => {
                return Ok(format!("There is no contact group '{group}' of the admins."));
            }
            (None, None) => {
                return Ok(format!(
                    "There is no contact group '{group}': neither one of yours (`groups mine list`) nor the admins'."
                ));
            }
        };
        let listed: Vec<Party> = members.into_iter().filter(|m| m != caller).collect();
        if listed.is_empty() {
            return Ok(format!("The group {group} has nobody else in it."));
        }
        let dropped = match menus::left_out(&listed, without, |w| Party::parse_contact(w, &self.map).ok()) {
            Ok(d) => d,
            Err(e) => return Ok(format!("{e} The list is `start-chat {group}`.")),
        };
        let invited: Vec<Party> = listed.iter().filter(|p| !dropped.contains(p)).cloned().collect();
        if invited.is_empty() {
            return Ok(format!("That leaves nobody of {group} to invite; no room is prepared."));
        }
        let cap = self.room_cap();
        if invited.len() + 1 > cap {
            return Ok(format!(
                "That makes {} participants with you; a room holds at most {cap}. Leave some out with `start-chat {group} --without …`.",
                invited.len() + 1
            ));
        }
        // Numbered as in the whole group, so the numbers stay the same however many are left out.
        let line = |p: &Party| format!("{}. {p}", listed.iter().position(|l| l == p).map_or(0, |i| i + 1));
        let mut text = format!(
            "A room from {whose}, with you as its moderator, will invite {}:\n{}",
            invited.len(),
            invited.iter().map(line).collect::<Vec<_>>().join("\n")
        );
        if !dropped.is_empty() {
            text.push_str(&format!("\nLeft out: {}", dropped.iter().map(line).collect::<Vec<_>>().join(", ")));
        }
        text.push_str(&format!(
            "\nSend `confirm` to create it (within 10 minutes), or leave people out: `start-chat {group} --without 2 {}` (numbers or addresses).",
            listed[0]
        ));
        self.offer_menu(caller, Menu::StartChat { group: group.to_owned(), participants: invited });
        Ok(text)
    }

    /// `confirm`: create the room `start-chat` showed the caller.
    pub(super) fn confirm_start_chat(
        &self,
        caller: &Party,
        reply_room: Option<&RoomId>,
        actions: &mut Vec<Action>,
    ) -> String {
        let taken = self.menus.lock().ok().and_then(|mut m| m.take_start_chat(caller, Instant::now()));
        let Some((group, participants)) = taken else {
            return "There is nothing to confirm: `start-chat GROUP` first shows whom its room will invite (and can be confirmed for 10 minutes).".into();
        };
        let cap = self.room_cap();
        if participants.len() + 1 > cap {
            return format!("A room holds at most {cap} now; `start-chat {group} --without …` leaves people out.");
        }
        let alias = self.current_config().rooms.alias(&format!("{group}-{:04x}", rand::random::<u16>()));
        let names: Vec<String> = participants.iter().map(ToString::to_string).collect();
        actions.push(Action::MatrixCreateRoom {
            initiator: caller.clone(),
            name: group.clone(),
            alias: alias.clone(),
            open: false,
            reply_room: reply_room.cloned(),
            members: participants,
        });
        format!("Creating the room #{alias}:{} with {} …", self.map.homeserver, names.join(", "))
    }

    /// `groups mine …`: the caller's own groups.
    pub(super) async fn own_groups_command(
        &self,
        tx: &mut StoreTx,
        caller: &Party,
        action: MyGroupsCommand,
    ) -> crate::store::Result<String> {
        Ok(match action {
            MyGroupsCommand::Create { name } => {
                if let Err(e) = check_group_name(&name) {
                    return Ok(e);
                }
                if tx.group_members(&name).await?.is_some() {
                    return Ok(format!(
                        "{name} is the name of an admins' contact group (`start-chat {name}` means that one); choose another name."
                    ));
                }
                if tx.own_groups(caller).await?.len() >= MAX_OWN_GROUPS {
                    return Ok(format!("You have {MAX_OWN_GROUPS} groups, the most allowed; delete one first."));
                }
                if !tx.create_own_group(caller, &name).await? {
                    return Ok(format!("You have a group {name} already."));
                }
                format!(
                    "OK: your group {name} is created (only you see it); add people with `groups mine add {name} USER…`."
                )
            }
            MyGroupsCommand::Delete { name } => match tx.delete_own_group(caller, &name).await? {
                true => format!("OK: your group {name} is deleted."),
                false => format!("You have no group {name}."),
            },
            MyGroupsCommand::Add { name, members } => {
                let Some(current) = tx.own_group_members(caller, &name).await? else {
                    return Ok(format!("You have no group {name}; create it with `groups mine create {name}`."));
                };
                let people = match self.parse_people(&members) {
                    Ok(p) => p,
                    Err(e) => return Ok(e.text),
                };
                let new = people.iter().filter(|p| !current.contains(p)).count();
                if current.len() + new > MAX_OWN_MEMBERS {
                    return Ok(format!(
                        "A group holds at most {MAX_OWN_MEMBERS} people; {name} has {}.",
                        current.len()
                    ));
                }
                let mut added = vec![];
                for p in &people {
                    if tx.add_own_group_member(caller, &name, p).await? {
                        added.push(p.to_string());
                    }
                }
                format!(
                    "OK: {} added to your group {name}; it has {} members.",
                    if added.is_empty() { "nobody new".to_owned() } else { added.join(", ") },
                    current.len() + added.len()
                )
            }
            MyGroupsCommand::Remove { name, members } => {
                if tx.own_group_members(caller, &name).await?.is_none() {
                    return Ok(format!("You have no group {name}."));
                }
                let people = match self.parse_people(&members) {
                    Ok(p) => p,
                    Err(e) => return Ok(e.text),
                };
                let mut removed = vec![];
                for p in &people {
                    if tx.remove_own_group_member(caller, &name, p).await? {
                        removed.push(p.to_string());
                    }
                }
                if removed.is_empty() {
                    format!("None of them is in your group {name}.")
                } else {
                    format!("OK: {} removed from your group {name}.", removed.join(", "))
                }
            }
            MyGroupsCommand::List { name } => {
                let groups: Vec<_> = tx
                    .own_groups(caller)
                    .await?
                    .into_iter()
                    .filter(|(n, _)| name.as_ref().is_none_or(|wanted| wanted == n))
                    .collect();
                if groups.is_empty() {
                    return Ok(match name {
                        Some(n) => format!("You have no group {n}."),
                        None => "You have no groups of your own yet: `groups mine create NAME`.".into(),
                    });
                }
                let mut lines = vec!["Your groups:".to_owned()];
                for (n, members) in groups {
                    let members: Vec<String> = members.iter().map(ToString::to_string).collect();
                    let members = if members.is_empty() { "(empty)".to_owned() } else { members.join(", ") };
                    lines.push(format!("- {n}: {members}"));
                }
                lines.join("\n")
            }
        })
    }
}
