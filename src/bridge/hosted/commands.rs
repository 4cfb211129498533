//! Room commands typed in a bridged Matrix room (`!kick`, `!promote`, `!demote`, `!who`): parsed,
//! judged by the room model (`core::room`) like the same request from XMPP, and carried out by
//! `rooms::carry_out`.

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
}
