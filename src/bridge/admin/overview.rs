//! What admins look up: `status`, `rooms list`, `rooms info`, `users list`, `users info`.

use super::Answer;
use crate::bridge::Bridge;
use crate::core::ids::{MatrixUserId, RoomId};
use crate::core::refusal::Refusal;
use crate::core::watch::Party;

impl Bridge {
    /// `status`: uptime, version, connections, queue depth and counts.
    pub(super) async fn status(&self) -> Answer {
        Ok(Ok({
            let uptime = self.started.elapsed().as_secs();
            format!(
                "ucbridge {} — up {}h {:02}m {:02}s\nhomeserver: {}\nXMPP: {}\noutbox: {} queued\nrooms: {} hosted, {} linked MUCs\nghosts: {}, direct chats: {}, watches: {}",
                env!("CARGO_PKG_VERSION"),
                uptime / 3600,
                uptime / 60 % 60,
                uptime % 60,
                self.config.homeserver.url,
                if self.xmpp.is_connected() { "connected" } else { "disconnected" },
                self.store.outbox_len().await?,
                self.store.count("bridged_room").await?,
                self.store.count("xmpp_room").await?,
                self.store.count("ghost").await?,
                self.store.count("dm_portal").await?,
                self.store.count("presence_watch").await?,
            )
        }))
    }

    /// `rooms list`: hosted rooms with their participant counts, and the linked MUCs.
    pub(super) async fn rooms_list(&self) -> Answer {
        Ok(Ok({
            let rooms = self.store.rooms().await?;
            let linked = self.store.linked_mucs().await?;
            if rooms.is_empty() && linked.is_empty() {
                return Ok(Ok("No hosted or linked rooms.".into()));
            }
            let mut lines = vec!["Hosted rooms:".to_owned()];
            for r in rooms {
                let n = self.store.room_members(&r.room).await?.len();
                lines.push(format!(
                    "- {} ({}): {n} participants, XMPP {}",
                    r.alias.as_deref().unwrap_or(r.room.as_str()),
                    r.name.as_deref().unwrap_or("no name"),
                    self.muc_of(&r)
                ));
            }
            if !linked.is_empty() {
                lines.push("Rooms linked to MUCs:".to_owned());
                for (room, muc) in linked {
                    let n = self.store.xmpp_occupants(&room).await?.len();
                    lines.push(format!("- {room}: {muc}, {n} Matrix occupants"));
                }
            }
            lines.join("\n")
        }))
    }

    /// `rooms info`: participants and roles of one hosted room.
    pub(super) async fn room_info(&self, room: String) -> Answer {
        Ok(Ok({
            let found = if room.starts_with('#') {
                self.store.room_by_alias(&room).await?
            } else {
                match RoomId::parse(&room) {
                    Ok(id) => self.store.room(&id).await?,
                    Err(_) => None,
                }
            };
            let Some(r) = found else { return Ok(Err(Refusal::bad_request(format!("{room} is not a hosted room.")))) };
            let mut lines = vec![format!(
                "{} — {} — owner {} — {}",
                r.alias.as_deref().unwrap_or(r.room.as_str()),
                r.room,
                r.owner,
                if r.open { "open" } else { "members only" }
            )];
            for m in self.store.room_members(&r.room).await? {
                let state = if m.joined { "" } else { " (invited)" };
                lines.push(format!("- {} ({}): {}{state}", m.nick, m.party, m.role.as_str()));
            }
            lines.join("\n")
        }))
    }

    /// `users list`: XMPP users with their ghosts, Matrix users with a chat with the bot.
    pub(super) async fn users_list(&self) -> Answer {
        Ok(Ok({
            let mut lines = vec!["XMPP users (ghosts):".to_owned()];
            for (ghost, name) in self.store.ghosts().await? {
                let jid = MatrixUserId::parse(&ghost)
                    .ok()
                    .and_then(|g| self.map.jid_for_ghost(&g))
                    .and_then(Result::ok)
                    .map(|j| j.to_string())
                    .unwrap_or_default();
                lines.push(format!("- {jid} as {ghost}{}", name.map(|n| format!(" ({n})")).unwrap_or_default()));
            }
            lines.push("Matrix users with a chat with the bot:".to_owned());
            for (user, _) in self.store.bot_dm_users().await? {
                lines.push(format!("- {user}"));
            }
            lines.join("\n")
        }))
    }

    /// `users info`: one person's permissions, rooms and watches.
    pub(super) async fn user_info(&self, user: String) -> Answer {
        Ok(Ok({
            let who = match Party::parse_contact(&user, &self.map) {
                Ok(p) => p,
                Err(e) => return Ok(Err(Refusal::bad_request(format!("Cannot read {user}: {e}")))),
            };
            let perms = self.store.permissions_of(&who).await?;
            let rooms = self.store.rooms_of(&who).await?;
            let watches = self.store.begin().await?.watches_by(&who).await?;
            let mut lines = vec![format!("{who}{}", if self.is_admin(&who) { " (admin)" } else { "" })];
            lines.push(format!("permissions: {}", if perms.is_empty() { "none".to_owned() } else { perms.join(", ") }));
            for (room, m) in rooms {
                lines.push(format!("- room {room} as {} ({})", m.nick, m.role.as_str()));
            }
            lines.push(format!("watches: {}", watches.len()));
            lines.join("\n")
        }))
    }
}
