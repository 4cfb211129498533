//! An SMS chat's Matrix side: a person's messages in their room with a number's ghost (and
//! what of them SMS cannot carry), the invitation that makes that room, and the ghost's name
//! there.

use crate::bridge::Bridge;
use crate::core::action::{Action, SmsOrigin, Text, TextKind};
use crate::core::ids::{MatrixUserId, PhoneNumber, RoomId};
use crate::core::inbound::MatrixIn;
use crate::core::outbox::DeliveryError;
use crate::core::watch::Party;
use crate::sms::PERMISSION;
use crate::sms::unsendable::{Unsendable, file_link_text};
use crate::store::StoreTx;

impl Bridge {
    /// A Matrix user's message in their room with a number's ghost.
    pub(crate) async fn sms_from_matrix(
        &self,
        tx: &mut StoreTx,
        room: RoomId,
        sender: MatrixUserId,
        event_id: String,
        text: Text,
        (owner, phone): (Party, PhoneNumber),
    ) -> crate::store::Result<Vec<Action>> {
        let ghost = self.map.sms_ghost(&phone);
        let notice = |body: String| Action::MatrixPost {
            room: room.clone(),
            user: ghost.clone(),
            text: Text::notice(body),
            nick: None,
        };
        if owner != Party::Matrix(sender.clone()) {
            return Ok(vec![notice(format!("Only {owner} sends SMS to {phone} from this room."))]);
        }
        let body = match text.kind {
            TextKind::Emote => format!("* {}", text.body),
            _ => text.body,
        };
        let origin = SmsOrigin::Matrix { room: room.clone(), user: sender.clone(), event_id: event_id.into() };
        Ok(match self.sms_actions(tx, &owner, &phone, &body, origin, Some(&room)).await? {
            Ok(actions) => actions,
            Err(refusal) => vec![notice(refusal.text)],
        })
    }

    /// A Matrix user invited a number's ghost: that room becomes their conversation with it, if
    /// they may send SMS and the number is one. Otherwise the ghost refuses: it joins only to say
    /// why, then leaves, and the room is not recorded (so it never shows the contact store's name
    /// for the number there: without the permission an invite must not be a reverse phone
    /// lookup, L4).
    pub(crate) async fn sms_invite(
        &self,
        tx: &mut StoreTx,
        room: RoomId,
        sender: MatrixUserId,
        ghost: MatrixUserId,
        phone: PhoneNumber,
    ) -> crate::store::Result<Vec<Action>> {
        let party = Party::Matrix(sender);
        let refusal = match self.sms() {
            None => Some("SMS is not set up on this bridge, so this chat cannot send SMS.".to_owned()),
            Some(_) if !self.store.has_permission(&party, PERMISSION).await? => Some(format!(
                "You may not send SMS: this chat needs the sms permission. An admin of the bridge can \
                 allow it (permissions grant {party} sms); then invite me again."
            )),
            Some(service) => service.check_address(&phone).err().map(|e| format!("{e} This chat cannot send SMS.")),
        };
        let join = Action::MatrixJoin { room: room.clone(), user: ghost.clone() };
        if let Some(text) = refusal {
            return Ok(vec![
                join,
                Action::MatrixPost { room: room.clone(), user: ghost.clone(), text: Text::notice(text), nick: None },
                Action::MatrixLeave { room, user: ghost },
            ]);
        }
        tx.set_sms_room(&party, &phone, &room).await?;
        Ok(vec![join])
    }

    /// Before a number's ghost joins `room` (`Action::MatrixJoin`): register it and choose its
    /// display name. The contact store's name ("Erika Mustermann (SMS)") only when `room` is the
    /// SMS chat of a person who may send SMS; otherwise a new ghost is named by its number and a
    /// known one keeps its name (changing a global name back and forth would show in every room).
    pub(crate) async fn prepare_sms_ghost(
        &self,
        room: &RoomId,
        ghost: &MatrixUserId,
        phone: &PhoneNumber,
    ) -> Result<(), DeliveryError> {
        let mut tx = self.store.begin().await?;
        let conversation = tx.sms_by_room(room).await?;
        drop(tx);
        let owner_may = match conversation {
            Some((owner, p)) if &p == phone => self.store.has_permission(&owner, PERMISSION).await?,
            _ => false,
        };
        if owner_may && let Some(service) = self.sms() {
            let name = self.with_sms_contacts(service, |c| service.display_name(phone, c));
            return self.ensure_ghost(ghost, &name).await;
        }
        if self.store.ghost(ghost).await?.is_none() {
            return self.ensure_ghost(ghost, phone.as_str()).await;
        }
        Ok(())
    }
}

impl Bridge {
    /// What is not a plain message, in a Matrix user's SMS chat: an edit, a reaction, a
    /// redaction, a file, an encrypted event. A file goes as a link when `sms.files_as_links`
    /// is on; everything else gets the ghost's notice why it was not sent. `None`: the event is
    /// not one of these, or not in an SMS chat.
    pub(crate) async fn sms_chat_content(
        &self,
        tx: &mut StoreTx,
        event: &MatrixIn,
    ) -> crate::store::Result<Option<Vec<Action>>> {
        let (room, what) = match event {
            MatrixIn::Message { room, replaces: Some(_), .. } => (room, Unsendable::Edit),
            MatrixIn::Reaction { room, .. } => (room, Unsendable::Reaction),
            MatrixIn::Redaction { room, .. } => (room, Unsendable::Retraction),
            MatrixIn::File { room, .. } => (room, Unsendable::File),
            MatrixIn::Encrypted { room, .. } | MatrixIn::EncryptionEnabled { room, .. } => {
                (room, Unsendable::Encrypted)
            }
            MatrixIn::Unsupported { room, what, .. } => (room, Unsendable::Other(what.clone())),
            _ => return Ok(None),
        };
        let Some((owner, phone)) = tx.sms_by_room(room).await? else { return Ok(None) };
        let links = self.sms().is_some_and(|s| s.settings.files_as_links);
        let what = match event {
            MatrixIn::File { sender, file, .. } if links => match self.media_link(tx, room, file).await? {
                Some(link) => {
                    let text = Text::plain(file_link_text("", &link.url));
                    let (event_id, sender) = (file.event_id.clone(), sender.clone());
                    let actions =
                        self.sms_from_matrix(tx, room.clone(), sender, event_id, text, (owner, phone)).await?;
                    return Ok(Some(actions));
                }
                None => Unsendable::FileTooLarge,
            },
            _ => what,
        };
        let text = Text::notice(what.notice(&phone));
        let ghost = self.map.sms_ghost(&phone);
        Ok(Some(vec![Action::MatrixPost { room: room.clone(), user: ghost, text, nick: None }]))
    }
}
