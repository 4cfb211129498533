//! Room commands typed in a bridged Matrix room (`!kick`, `!promote`, `!demote`, `!who`), and the
//! user command `room leave`: parsed, judged by the room model (`core::room`) like the same
//! request from XMPP, and carried out by `effects::carry_out`.

use crate::bridge::Bridge;
use crate::core::action::Action;
use crate::core::ids::MatrixUserId;
use crate::core::refusal::Refusal;
use crate::core::room::Request;
use crate::core::watch::Party;
use crate::store::{HostedRoom, RoomMember, StoreTx};

/// Room commands, typed in a bridged Matrix room.
const ROOM_HELP: &str = "Room commands: `!demote @user:server` (a moderator asks the bridge to make a moderator a \
participant again; Matrix does not let moderators demote each other), `!promote @user:server`, \
`!kick @user:server`, `!who` (participants and roles).";

impl Bridge {
    /// `!command` typed in a bridged Matrix room.
    pub(super) async fn room_command(
        &self,
        tx: &mut StoreTx,
        r: &HostedRoom,
        members: &[RoomMember],
        sender: &MatrixUserId,
        command: &str,
    ) -> crate::store::Result<Vec<Action>> {
        let room = &r.room;
        let mut words = command.split_whitespace();
        let verb = words.next().unwrap_or_default().to_ascii_lowercase();
        let target = words.next();
        let actor = Party::Matrix(sender.clone());
        let request = |t: &str, make: fn(Party) -> Request| -> Result<Request, Refusal> {
            let user =
                MatrixUserId::parse(t).map_err(|e| Refusal::bad_address(format!("{t} is not a Matrix ID ({e})")))?;
            Ok(make(self.party_of(&user)))
        };
        let request = match (verb.as_str(), target) {
            ("demote", Some(t)) => request(t, Request::Revoke),
            ("promote", Some(t)) => request(t, Request::Appoint),
            ("kick", Some(t)) => request(t, Request::Remove),
            ("who", _) => {
                let lines: Vec<String> = members
                    .iter()
                    .map(|m| {
                        let state = if m.joined { "" } else { ", invited" };
                        format!("- {} ({}): {}{state}", m.nick, m.party, m.role.as_str())
                    })
                    .collect();
                return Ok(vec![self.bot_notice(room, format!("Participants:\n{}", lines.join("\n")))]);
            }
            _ => Err(Refusal::bad_request(ROOM_HELP)),
        };
        let request = match request {
            Ok(r) => r,
            Err(refusal) => return Ok(vec![self.bot_notice(room, format!("{sender}: {refusal}"))]),
        };
        let mut model = self.room_model(members);
        match model.apply(&actor, request) {
            Ok(effects) => self.carry_out(tx, r, members, &actor, effects, None).await,
            Err(refused) => Ok(vec![self.bot_notice(room, format!("{sender}: refused: {refused}."))]),
        }
    }

    /// The user command `room leave ROOM`: the caller leaves a hosted room for good.
    pub(in crate::bridge) async fn leave_room_command(
        &self,
        tx: &mut StoreTx,
        caller: &Party,
        room: &str,
        actions: &mut Vec<Action>,
    ) -> crate::store::Result<String> {
        let Some(r) = self.room_named(room).await? else {
            return Ok(format!("There is no bridged room {room}."));
        };
        let members = tx.room_members(&r.room).await?;
        let mut model = self.room_model(&members);
        let Ok(effects) = model.apply(caller, Request::Leave) else {
            return Ok(format!("You are not in {room}."));
        };
        actions.extend(self.carry_out(tx, &r, &members, caller, effects, None).await?);
        Ok(format!("OK: you left {room}."))
    }

    /// A hosted room by its MUC address (`sales\40hs@bridge`), Matrix alias (`#ucb-sales:hs`)
    /// or the short name given to `room create` (`sales`).
    async fn room_named(&self, name: &str) -> crate::store::Result<Option<HostedRoom>> {
        let name = name.trim();
        // A MUC address first: its localpart starts with `#` too.
        if let Some((local, domain)) = name.rsplit_once('@') {
            return if domain == self.map.component { self.room_by_muc(local).await } else { Ok(None) };
        }
        if name.starts_with('#') {
            return self.store.room_by_alias(name).await;
        }
        if crate::commands::user::check_alias(name).is_ok() {
            let alias = format!("#{}:{}", self.current_config().rooms.alias(name), self.map.homeserver);
            return self.store.room_by_alias(&alias).await;
        }
        Ok(None)
    }
}
