//! The assistant's images (`chatbot.image_keywords`): made by the provider from the prompt alone
//! (no context), kept with the action that asked (a retried delivery sends the same image
//! rather than paying for a new one), and posted with the prompt as caption — a Matrix image, or
//! on XMPP a link the bridge serves, as the message-content section does for files.

use crate::bridge::Bridge;
use crate::bridge::chatbot::To;
use crate::core::action::{Extras, Text};
use crate::core::ids::{EventId, MatrixUserId, RoomId};
use crate::core::inbound::FileRef;
use crate::core::outbox::DeliveryError;
use crate::core::watch::Party;
use crate::matrix::client::{MatrixError, Relations, UploadedFile};
use crate::xmpp::out::Outgoing;

const IMAGE_TOO_LARGE: &str = "Sorry, the image is larger than the bridge passes on.";

impl Bridge {
    /// Make an image of `prompt` (no context is sent) and post it with the prompt as its
    /// caption: on Matrix as an image, on XMPP as a link the bridge serves (XEP-0066), as the
    /// message-content section does for files. The image is kept with the action: a retried
    /// delivery sends it again instead of asking the provider for a new one.
    pub(super) async fn chatbot_image(
        &self,
        id: i64,
        bot: &crate::chatbot::Chatbot,
        to: &To<'_>,
        prompt: &str,
    ) -> Result<(), DeliveryError> {
        if to.room.is_none() && to.muc.is_none() && !matches!(to.party, Party::Xmpp(_)) {
            return Err(DeliveryError::Permanent(format!("no chatbot room of {}", to.party)));
        }
        let (bytes, mimetype) = match self.store.chatbot_image_of(id).await? {
            Some(kept) => {
                tracing::info!(from = %to.party, "chatbot: sending the image made before again");
                kept
            }
            None => {
                self.chatbot_typing(to, true).await;
                let result = bot.provider.image(prompt).await;
                self.chatbot_typing(to, false).await;
                let image = match result {
                    Ok(image) => image,
                    Err(e) => {
                        tracing::warn!(from = %to.party, error = %e, "chatbot: no image from the provider");
                        return self.chatbot_say(id, to, Text::notice(e.friendly())).await;
                    }
                };
                tracing::info!(from = %to.party, bytes = image.bytes.len(), "chatbot: image made");
                self.store.chatbot_save_image(id, &image.bytes, &image.mimetype).await?;
                self.store.chatbot_add_usage(to.party, 0, 1).await?;
                (image.bytes, image.mimetype)
            }
        };
        let me = self.chatbot_user().await?;
        let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        let extension = mimetype.rsplit('/').next().unwrap_or("png").to_owned();
        let mxc = self.matrix.upload(&me, bytes, &mimetype).await.map_err(MatrixError::into_delivery)?;
        let file = UploadedFile { mxc, name: format!("image.{extension}"), mimetype, size };
        match to.room {
            Some(room) => self.chatbot_post_image(id, room, &me, &file, to.reply_to, prompt).await,
            None => self.chatbot_send_image(id, to, file, prompt).await,
        }
    }

    /// The image and its caption into a Matrix room (the ids are the action's: a repeat is
    /// dropped by the homeserver).
    async fn chatbot_post_image(
        &self,
        id: i64,
        room: &RoomId,
        me: &MatrixUserId,
        file: &UploadedFile,
        reply_to: Option<&EventId>,
        prompt: &str,
    ) -> Result<(), DeliveryError> {
        let relations = Relations { reply_to: reply_to.map(EventId::as_str), ..Relations::default() };
        let txn = self.txn_id(id);
        self.matrix.send_file(room, me, file, relations, &txn).await.map_err(MatrixError::into_delivery)?;
        let caption = Text::plain(prompt);
        self.matrix
            .send_message(room, me, &caption, None, Relations::default(), &format!("{txn}-c"))
            .await
            .map(|_| ())
            .map_err(MatrixError::into_delivery)
    }

    /// The image on XMPP (to a person or into a MUC): a link the bridge serves (as the body and,
    /// to a person, XEP-0066 `url`, so clients show it inline), then the prompt as its caption.
    async fn chatbot_send_image(
        &self,
        id: i64,
        to: &To<'_>,
        file: UploadedFile,
        prompt: &str,
    ) -> Result<(), DeliveryError> {
        // A served file belongs to a room; the assistant's images outside any room share one
        // room id of their own, which no Matrix room has (`!` + a name no homeserver makes).
        let room = RoomId::parse(&format!("!ucb-chatbot-images:{}", self.map.homeserver))
            .map_err(|e| DeliveryError::Permanent(format!("chatbot image link: {e}")))?;
        let file = FileRef {
            event_id: format!("chatbot-image-{id}"),
            name: file.name,
            mxc: file.mxc,
            size: Some(file.size),
            mimetype: Some(file.mimetype),
        };
        let mut tx = self.store.begin().await?;
        let link = self.media_link(&mut tx, &room, &file).await?;
        tx.commit().await?;
        let Some(link) = link else {
            return self.chatbot_say(id, to, Text::notice(IMAGE_TOO_LARGE)).await;
        };
        let me = self.map.chatbot_jid().ok_or_else(|| DeliveryError::Permanent("the chatbot is off".into()))?;
        let (image_id, caption_id) = (self.stanza_id(id), format!("{}-c", self.stanza_id(id)));
        let (image, caption) = match (to.muc, to.party) {
            (Some(muc), _) => (
                Outgoing::SayRemote {
                    user: me.clone(),
                    muc: muc.clone(),
                    text: Text::plain(link.url),
                    id: image_id,
                    extras: Default::default(),
                    mentions: vec![],
                },
                Outgoing::SayRemote {
                    user: me,
                    muc: muc.clone(),
                    text: Text::plain(prompt),
                    id: caption_id,
                    extras: Default::default(),
                    mentions: vec![],
                },
            ),
            (None, Party::Xmpp(jid)) => {
                let text = Text::plain(link.url.clone());
                let extras = Extras { file: Some(link), ..Extras::default() };
                (
                    Outgoing::Chat { from: me.clone(), to: jid.clone(), text, id: image_id, nick: None, extras },
                    Outgoing::chat(me, jid.clone(), Text::plain(prompt), caption_id),
                )
            }
            (None, Party::Matrix(user)) => {
                return Err(DeliveryError::Permanent(format!("no chatbot room of {user}")));
            }
        };
        self.xmpp.deliver(image).await?;
        self.xmpp.deliver(caption).await
    }
}
