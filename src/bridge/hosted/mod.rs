//! Hosted rooms (`Conversation::HostedRoom`): a Matrix room the bridge hosts as a MUC on its
//! component, where the bridge is the authority (`core::room` decides). Both directions live
//! here: the Matrix side (`rooms`: messages, invitations, joins, kicks, power levels, topic;
//! `commands`: `!kick` and the other room commands, and `room leave`; `effects`: carrying out
//! what the room's rules decided; `adopt`: a room made in a Matrix client becoming one), the
//! XMPP side (`occupants`: joining and leaving; `muc`: messages, subject, invitations,
//! `muc#admin`, the archive), carrying out their actions (`delivery`), and typing and read
//! markers (`markers`), the room's avatar both ways (`avatar`, XEP-0486), and phone numbers as
//! members (`phones`: SMS out, answers in). An XMPP message in a hosted room becomes a Matrix event in
//! `muc::muc_message` (accepted, archived and queued) and `delivery::room_say` (posted).

mod adopt;
mod avatar;
mod commands;
mod delivery;
mod effects;
mod markers;
pub mod muc;
pub mod occupants;
mod phones;
mod rooms;

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use crate::core::ids::{MatrixUserId, RoomId};
use crate::store::HostedRoom;

/// What the bridge keeps in memory about hosted rooms.
#[derive(Default)]
pub(in crate::bridge) struct State {
    /// Hosted rooms by ID (`None`: known not to be one).
    rooms: Mutex<HashMap<RoomId, Option<HostedRoom>>>,
    /// Who was typing in each hosted room at the last `m.typing`.
    typing: Mutex<HashMap<RoomId, HashSet<MatrixUserId>>>,
    /// Rooms the bot offered to bridge: who may confirm, and since when (`adopt`).
    offers: Mutex<HashMap<RoomId, (MatrixUserId, std::time::Instant)>>,
}
