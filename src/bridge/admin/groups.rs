//! `groups`: contact groups (for `start-chat`), created and filled by admins.

use std::sync::Arc;

use super::Answer;
use crate::bridge::Bridge;
use crate::commands::admin::{self, GroupsCommand};
use crate::core::refusal::Refusal;
use crate::core::watch::Party;

impl Bridge {
    /// Read people typed in a command; `Err` names every one that does not read.
    pub(in crate::bridge) fn parse_people(&self, people: &[String]) -> Result<Vec<Party>, Refusal> {
        let mut out = Vec::new();
        let mut bad = Vec::new();
        for p in people {
            match Party::parse_contact(p, &self.map) {
                Ok(party) => out.push(party),
                Err(e) => bad.push(format!("{p}: {e}")),
            }
        }
        if bad.is_empty() {
            Ok(out)
        } else {
            Err(Refusal::bad_address(format!("Not a Matrix ID or JID: {}", bad.join("; "))))
        }
    }

    pub(super) async fn groups_command(self: &Arc<Self>, who: &Party, action: GroupsCommand) -> Answer {
        let store = &self.store;
        Ok(match action {
            GroupsCommand::Create { name } => {
                if let Err(e) = admin::check_group_name(&name) {
                    return Ok(Err(Refusal::bad_request(e)));
                }
                if !store.create_group(&name, who).await? {
                    return Ok(Err(Refusal::bad_request(format!("The group {name} exists already."))));
                }
                Ok(format!("OK: the group {name} is created; add people with `groups add {name} USER...`."))
            }
            GroupsCommand::Delete { name } => match store.delete_group(&name).await? {
                true => Ok(format!("OK: the group {name} is deleted.")),
                false => Err(Refusal::bad_request(format!("There is no group {name}."))),
            },
            GroupsCommand::Add { name, members } | GroupsCommand::Remove { name, members }
                if !store.group_exists(&name).await? =>
            {
                let _ = members;
                Err(Refusal::bad_request(format!("There is no group {name}; create it with `groups create {name}`.")))
            }
            GroupsCommand::Add { name, members } => {
                let people = match self.parse_people(&members) {
                    Ok(p) => p,
                    Err(e) => return Ok(Err(e)),
                };
                let mut added = vec![];
                for p in &people {
                    if store.add_group_member(&name, p).await? {
                        added.push(p.to_string());
                    }
                }
                let total = store.group_members(&name).await?.map_or(0, |m| m.len());
                Ok(format!(
                    "OK: {} added to {name}; it has {total} members.",
                    if added.is_empty() { "nobody new".to_owned() } else { added.join(", ") }
                ))
            }
            GroupsCommand::Remove { name, members } => {
                let people = match self.parse_people(&members) {
                    Ok(p) => p,
                    Err(e) => return Ok(Err(e)),
                };
                let mut removed = vec![];
                for p in &people {
                    if store.remove_group_member(&name, p).await? {
                        removed.push(p.to_string());
                    }
                }
                if removed.is_empty() {
                    Err(Refusal::bad_request(format!("None of them is in {name}.")))
                } else {
                    Ok(format!("OK: {} removed from {name}.", removed.join(", ")))
                }
            }
            GroupsCommand::List { name } => {
                let groups: Vec<_> = store
                    .groups()
                    .await?
                    .into_iter()
                    .filter(|(n, _)| name.as_ref().is_none_or(|wanted| wanted == n))
                    .collect();
                if groups.is_empty() {
                    return Ok(match name {
                        Some(n) => Err(Refusal::bad_request(format!("There is no group {n}."))),
                        None => Ok("No contact groups yet: `groups create NAME`.".into()),
                    });
                }
                let mut lines = vec!["Contact groups:".to_owned(), "| group | members |".to_owned()];
                for (n, members) in groups {
                    let members: Vec<String> = members.iter().map(ToString::to_string).collect();
                    lines.push(format!(
                        "| {n} | {} |",
                        if members.is_empty() { "(empty)".to_owned() } else { members.join(", ") }
                    ));
                }
                Ok(lines.join("\n"))
            }
        })
    }
}
