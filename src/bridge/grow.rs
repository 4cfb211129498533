//! Adding a party to a chat (issue 18, item 4): a third person invited into a 1:1 chat on
//! Matrix gets a new hosted room with both people of the chat, the inviter as its owner (the
//! 1:1 stays a 1:1); `room create … --with PEOPLE` invites people on creation; an XMPP user's
//! direct invitation (XEP-0249) of a Matrix user into a hosted room is a mediated invite.

use std::sync::Arc;

use crate::bridge::Bridge;
use crate::core::action::{Action, RoomOp};
use crate::core::ids::{BareJid, MatrixUserId, RoomId};
use crate::core::refusal::Refusal;
use crate::core::watch::Party;
use crate::store::DirectChat;

/// A display name's share of a grown room's name (names come from the network: bounded).
const NAME_PART: usize = 40;

impl Bridge {
    /// Whom a new room invites besides `initiator`: the people named, without the initiator and
    /// repeats, each one the bridge serves, all within the cap. `Err`: why nothing is created.
    async fn room_guests(&self, initiator: &Party, people: Vec<Party>) -> Result<Vec<Party>, String> {
        let mut guests: Vec<Party> = vec![];
        for p in people {
            if &p != initiator && !guests.contains(&p) {
                guests.push(p);
            }
        }
        let cap = self.room_cap();
        if guests.len() + 1 > cap {
            return Err(format!(
                "A room holds at most {cap} participants; with you that would be {}. Nothing was created: name fewer people.",
                guests.len() + 1
            ));
        }
        for p in &guests {
            if matches!(p, Party::Matrix(u) if self.map.is_bridge_user(u) && !self.is_chatbot(u)) {
                return Err(format!("{p} is the bridge itself, not a person to invite. Nothing was created."));
            }
            // Not a relay for the whole federation: only people the bridge serves.
            if !self.may_use(p).await {
                return Err(format!("{p} is not someone this bridge serves. Nothing was created."));
            }
        }
        Ok(guests)
    }

    /// `room create ALIAS [NAME…] [--public] [--with PEOPLE…]`.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn room_create_command(
        &self,
        caller: &Party,
        alias: String,
        name: Vec<String>,
        public: bool,
        with: Vec<String>,
        reply_room: Option<&RoomId>,
        actions: &mut Vec<Action>,
    ) -> String {
        if let Err(e) = crate::commands::user::check_alias(&alias) {
            return e;
        }
        let people = match self.parse_people(&with) {
            Ok(p) => p,
            Err(e) => return format!("{e} Nothing was created."),
        };
        let members = match self.room_guests(caller, people).await {
            Ok(m) => m,
            Err(e) => return e,
        };
        let name = if name.is_empty() { alias.clone() } else { name.join(" ") };
        // The bridge's own alias space (claimed in the registration): `sales` → `ucb-sales`.
        let alias = self.current_config().rooms.alias(&alias);
        let invited: Vec<String> = members.iter().map(ToString::to_string).collect();
        actions.push(Action::MatrixCreateRoom {
            initiator: caller.clone(),
            name,
            alias: alias.clone(),
            open: public,
            reply_room: reply_room.cloned(),
            members,
        });
        let with = if invited.is_empty() { String::new() } else { format!(" with {}", invited.join(", ")) };
        format!("Creating the room #{alias}:{}{with} …", self.map.homeserver)
    }

    /// The Matrix side of `chat` invited `newcomer` into it: a direct chat stays between its two
    /// people, so the invitation is undone, and a new room with the three of them is started
    /// instead (the inviter as its owner), announced in the direct chat.
    pub(in crate::bridge) async fn grow_direct_chat(&self, chat: &DirectChat, newcomer: &MatrixUserId) -> Vec<Action> {
        let room = &chat.room;
        let ghost = self.map.ghost_for(&chat.xmpp);
        let who = self.party_of(newcomer);
        tracing::info!(%room, inviter = %chat.matrix, %newcomer, "a third person invited into a direct chat");
        let mut actions = vec![match &who {
            // A ghost turns the invitation down itself.
            Party::Xmpp(_) => Action::MatrixLeave { room: room.clone(), user: newcomer.clone() },
            Party::Matrix(_) => Action::MatrixRoomAct {
                room: room.clone(),
                op: RoomOp::Withdraw {
                    user: newcomer.clone(),
                    by: ghost.clone(),
                    reason: "this chat stays between two people; see the group conversation".into(),
                },
            },
        }];
        let inviter = Party::Matrix(chat.matrix.clone());
        let peer = Party::Xmpp(chat.xmpp.clone());
        let notice = |text: String| Action::MatrixPost {
            room: room.clone(),
            user: ghost.clone(),
            text: crate::core::action::Text::notice(text),
            nick: None,
        };
        let members = match self.room_guests(&inviter, vec![peer, who.clone()]).await {
            Ok(m) => m,
            Err(e) => {
                actions.push(notice(format!(
                    "{newcomer} was not added to this chat, and no group conversation was started: {e}"
                )));
                return actions;
            }
        };
        let short = |s: String| s.chars().take(NAME_PART).collect::<String>();
        let name = format!(
            "{}, {} and {}",
            short(self.displayname(&chat.matrix).unwrap_or_else(|| chat.matrix.localpart().to_owned())),
            short(chat.xmpp.local().unwrap_or(chat.xmpp.domain()).to_owned()),
            short(match &who {
                Party::Matrix(u) => self.displayname(u).unwrap_or_else(|| u.localpart().to_owned()),
                Party::Xmpp(j) => j.local().unwrap_or(j.domain()).to_owned(),
            }),
        );
        let alias = self.current_config().rooms.alias(&format!("chat-{:08x}", rand::random::<u32>()));
        actions.push(notice(format!(
            "This chat stays between you and {}; {who} was not added here. The group conversation with both is #{alias}:{} (being created, you as its moderator).",
            chat.xmpp, self.map.homeserver
        )));
        actions.push(Action::MatrixCreateRoom {
            initiator: inviter,
            name,
            alias,
            open: false,
            reply_room: Some(room.clone()),
            members,
        });
        actions
    }

    /// An XMPP user's direct invitation (XEP-0249) of the Matrix user behind `to_local` into
    /// `room`: a room the bridge hosts, where the sender may invite, takes them in as a
    /// mediated invitation does; anything else is refused with the reason.
    pub(in crate::bridge) async fn direct_room_invite(
        self: &Arc<Self>,
        from: &BareJid,
        to_local: &str,
        room: &BareJid,
    ) -> Result<(), Refusal> {
        let user = self.map.matrix_for_jid(to_local).map_err(|e| Refusal::bad_address(e.to_string()))?;
        match room.local() {
            Some(local) if room.domain() == self.map.component => {
                self.muc_invite(local, from, &format!("{to_local}@{}", self.map.component)).await
            }
            _ => Err(Refusal::policy(format!(
                "{room} is not a room this bridge hosts: {user} can be invited only into those (start one with `room create NAME --with {to_local}@{}` to {}).",
                self.map.component, self.map.component
            ))),
        }
    }
}
