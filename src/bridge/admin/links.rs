//! `rooms link` and `rooms unlink`: an existing Matrix room becomes (or stops being) the room
//! of a MUC on an XMPP server.

use std::sync::Arc;

use super::Answer;
use crate::bridge::Bridge;
use crate::core::action::{Action, Text};
use crate::core::ids::{BareJid, RoomId};
use crate::core::refusal::Refusal;
use crate::core::room;

impl Bridge {
    /// A Matrix room given as `!id:server` or `#alias:server`.
    async fn resolve_room(&self, text: &str) -> Result<RoomId, Refusal> {
        if text.starts_with('#') {
            return match self.matrix.resolve_alias(text).await {
                Ok(Some(room)) => Ok(room),
                Ok(None) => Err(Refusal::not_found(format!("No room has the address {text}."))),
                Err(e) => Err(Refusal::internal(format!("Cannot look up {text}: {e}"))),
            };
        }
        RoomId::parse(text).map_err(|e| {
            Refusal::bad_address(format!("'{text}' is not a room ID (!id:server) or alias (#name:server): {e}"))
        })
    }

    /// `rooms link`: an existing Matrix room becomes the room of a MUC on an XMPP server.
    pub(super) async fn link_room(self: &Arc<Self>, matrix_room: &str, xmpp_muc: &str) -> Answer {
        let muc = match BareJid::parse(xmpp_muc) {
            Ok(m) if m.local().is_some() && m.domain() != self.map.component => m,
            Ok(_) => {
                return Ok(Err(Refusal::bad_request(format!(
                    "'{xmpp_muc}' is not a MUC on an XMPP server: write room@conference.server (rooms the bridge hosts are linked already)."
                ))));
            }
            Err(e) => return Ok(Err(Refusal::bad_request(format!("'{xmpp_muc}' is not a MUC address: {e}")))),
        };
        let room = match self.resolve_room(matrix_room).await {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        };
        if Some(&room) == self.control_room().as_ref() {
            return Ok(Err(Refusal::bad_request("The control room cannot be linked.")));
        }
        if let Some(r) = self.hosted_room(&room).await? {
            return Ok(Err(Refusal::bad_request(format!(
                "{room} is a room the bridge hosts; XMPP users reach it at {}.",
                self.muc_of(&r)
            ))));
        }
        if let Some(other) = self.linked_muc_of(&room).await? {
            return Ok(Err(Refusal::bad_request(format!(
                "{room} is linked with {other} already; `rooms unlink {room}` first."
            ))));
        }
        if let Some(other) = self.linked_room_of(&muc).await? {
            return Ok(Err(Refusal::bad_request(format!(
                "{muc} is linked with the room {other} already; `rooms unlink {muc}` first."
            ))));
        }
        let bot = self.map.bot();
        if let Err(e) = self.matrix.join(&room, &bot).await {
            return Ok(Err(Refusal::bad_request(format!(
                "The bridge bot cannot join {room} ({e}): invite {bot} to it first."
            ))));
        }
        let members = match self.matrix.joined_members(&room).await {
            Ok(m) => m,
            Err(e) => return Ok(Err(Refusal::bad_request(format!("Cannot read the members of {room}: {e}")))),
        };
        self.store.save_linked_muc(&room, &muc).await?;
        self.index_link(&room, &muc);
        let mut actions = vec![Action::MatrixPost {
            room: room.clone(),
            user: bot,
            text: Text::notice(format!("This room is now linked with the XMPP room {muc}.")),
            nick: None,
        }];
        let mut joining = 0;
        for (user, name) in members {
            if self.map.is_bridge_user(&user) {
                continue;
            }
            let nick = room::clean_nick(&name.unwrap_or_else(|| user.localpart().to_owned()));
            actions.push(Action::LinkedMucJoin { room: room.clone(), muc: muc.clone(), user, nick });
            joining += 1;
        }
        self.queue_all(actions).await?;
        tracing::info!(%room, %muc, "linked a Matrix room with a MUC");
        Ok(Ok(format!(
            "OK: {room} is now linked to {muc}; its {joining} Matrix members join the MUC, and the MUC's occupants appear in the room."
        )))
    }

    /// `rooms unlink`: a linked room stops standing for its MUC (the room itself stays).
    pub(super) async fn unlink_room(self: &Arc<Self>, which: &str) -> Answer {
        let room = if which.starts_with('#') || which.starts_with('!') {
            match self.resolve_room(which).await {
                Ok(r) => r,
                Err(e) => return Ok(Err(e)),
            }
        } else {
            match BareJid::parse(which) {
                Ok(muc) => match self.linked_room_of(&muc).await? {
                    Some(r) => r,
                    None => return Ok(Err(Refusal::bad_request(format!("{muc} is linked to no room.")))),
                },
                Err(e) => {
                    return Ok(Err(Refusal::bad_request(format!(
                        "'{which}' is not a room ID, alias or MUC address: {e}"
                    ))));
                }
            }
        };
        let Some(muc) = self.linked_muc_of(&room).await? else {
            return Ok(Err(Refusal::bad_request(format!("{room} is not linked with a MUC."))));
        };
        let mut actions = vec![];
        for (user, nick) in self.store.xmpp_occupants(&room).await? {
            actions.push(Action::LinkedMucLeave { room: room.clone(), muc: muc.clone(), user, nick });
        }
        for jid in self.index_unlink(&room, &muc) {
            actions.push(Action::MatrixLeave { room: room.clone(), user: self.map.ghost_for(&jid) });
        }
        actions.push(Action::MatrixPost {
            room: room.clone(),
            user: self.map.bot(),
            text: Text::notice(format!("This room is no longer linked with the XMPP room {muc}.")),
            nick: None,
        });
        self.store.delete_linked_muc(&room).await?;
        self.queue_all(actions).await?;
        tracing::info!(%room, %muc, "unlinked a room from its MUC");
        Ok(Ok(format!("OK: {room} is no longer linked with {muc}; the Matrix members left the MUC.")))
    }
}
