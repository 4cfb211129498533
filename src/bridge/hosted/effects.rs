//! Carrying out what the room model (`core::room`) decided — role changes, people added,
//! removed or leaving, a new owner — on both networks, and recording it.

use crate::bridge::Bridge;
use crate::core::action::{Action, OccupantChange, RoomOp, Text};
use crate::core::room::{Effect, Role};
use crate::core::watch::Party;
use crate::store::{HostedRoom, RoomMember, StoreTx};

impl Bridge {
    /// Record what a moderator's request changed, and queue it for both networks. `reason` is
    /// the moderator's own (an XMPP `muc#admin` item's `<reason/>`), shown with a removal.
    pub(in crate::bridge) async fn carry_out(
        &self,
        tx: &mut StoreTx,
        r: &HostedRoom,
        members: &[RoomMember],
        actor: &Party,
        effects: Vec<Effect>,
        reason: Option<&str>,
    ) -> crate::store::Result<Vec<Action>> {
        let room = &r.room;
        let mut actions = vec![];
        for effect in effects {
            match effect {
                Effect::RoleChanged(who, role) => {
                    let Some(m) = members.iter().find(|m| m.party == who) else { continue };
                    tx.save_member(room, &RoomMember { role, ..m.clone() }).await?;
                    if role == Role::Owner {
                        actions.push(self.new_owner(tx, r, members, actor, m).await?);
                    }
                    actions.push(Action::MatrixRoomAct {
                        room: room.clone(),
                        op: RoomOp::SetPower { user: self.matrix_id_of(&who), level: role.power_level() },
                    });
                    actions.push(Action::XmppOccupant {
                        room: room.clone(),
                        who,
                        nick: m.nick.clone(),
                        change: OccupantChange::Present { role },
                    });
                }
                Effect::Left(who) if &who == actor => {
                    let Some(m) = members.iter().find(|m| m.party == who) else { continue };
                    tx.remove_member(room, &who).await?;
                    // A Matrix user has left already; an XMPP user's ghost leaves for them.
                    if let Party::Xmpp(jid) = &who {
                        actions.push(Action::MatrixLeave { room: room.clone(), user: self.map.ghost_for(jid) });
                    }
                    actions.push(Action::XmppOccupant {
                        room: room.clone(),
                        who: who.clone(),
                        nick: m.nick.clone(),
                        change: OccupantChange::Gone { kicked: false, reason: None, banned: false },
                    });
                }
                Effect::Left(who) => {
                    let Some(m) = members.iter().find(|m| m.party == who) else { continue };
                    tx.remove_member(room, &who).await?;
                    let reason = match reason.map(str::trim).filter(|r| !r.is_empty()) {
                        Some(why) => format!("removed by {actor}: {why}"),
                        None => format!("removed by {actor}"),
                    };
                    actions.push(Action::MatrixRoomAct {
                        room: room.clone(),
                        op: RoomOp::Kick { user: self.matrix_id_of(&who), reason: reason.clone() },
                    });
                    actions.push(Action::XmppOccupant {
                        room: room.clone(),
                        who: who.clone(),
                        nick: m.nick.clone(),
                        change: OccupantChange::Gone { kicked: true, reason: Some(reason), banned: false },
                    });
                    if let Party::Xmpp(jid) = &who {
                        actions.push(Action::XmppNotice {
                            to: jid.clone(),
                            text: Text::notice(format!("{actor} removed you from {}.", self.muc_of(r))),
                        });
                    }
                }
                Effect::Joined(who, role) => {
                    let nick = self.new_nick(members, &who, None);
                    if let Some(phone) = self.phone_of(&who) {
                        // A number: no invitation to answer, it is there at once.
                        let m = RoomMember { party: who, role, joined: true, nick };
                        tx.save_member(room, &m).await?;
                        actions.extend(self.phone_joined(tx, room, &m, &phone, actor, true).await?);
                        continue;
                    }
                    tx.save_member(room, &RoomMember { party: who.clone(), role, joined: false, nick }).await?;
                    match &who {
                        Party::Matrix(user) => actions.push(Action::MatrixRoomAct {
                            room: room.clone(),
                            op: RoomOp::Invite { user: user.clone() },
                        }),
                        Party::Xmpp(jid) => {
                            let ghost = self.map.ghost_for(jid);
                            if !r.open {
                                actions.push(Action::MatrixRoomAct {
                                    room: room.clone(),
                                    op: RoomOp::Invite { user: ghost.clone() },
                                });
                            }
                            actions.push(Action::MatrixJoin { room: room.clone(), user: ghost });
                            actions.push(Action::XmppMucInvite {
                                room: room.clone(),
                                to: jid.clone(),
                                from: actor.clone(),
                                reason: None,
                            });
                        }
                    }
                }
            }
        }
        Ok(actions)
    }

    /// `next` inherits the room from `left`: the room's record says so, and the bot tells the room.
    async fn new_owner(
        &self,
        tx: &mut StoreTx,
        r: &HostedRoom,
        members: &[RoomMember],
        left: &Party,
        next: &RoomMember,
    ) -> crate::store::Result<Action> {
        let updated = HostedRoom { owner: next.party.clone(), ..r.clone() };
        tx.save_room(&updated).await?;
        self.cache_room(&updated);
        let name = |p: &Party| members.iter().find(|m| &m.party == p).map_or_else(|| p.to_string(), |m| m.nick.clone());
        Ok(self.bot_notice(&r.room, format!("{} left; {} is the room's owner now.", name(left), next.nick)))
    }
}
