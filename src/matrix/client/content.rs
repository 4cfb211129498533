//! What a message refers to (replies, corrections) and files to post, as Matrix event content
//! (ruma's types: the wire format is theirs).

use ruma::events::Mentions;
use ruma::events::relation::Reply;
use ruma::events::room::ImageInfo;
use ruma::events::room::message::{
    AudioInfo, AudioMessageEventContent, FileInfo, FileMessageEventContent, ImageMessageEventContent, MessageType,
    Relation, ReplacementMetadata, RoomMessageEventContent, VideoInfo, VideoMessageEventContent,
};
use ruma::{OwnedEventId, OwnedMxcUri, UInt};

use crate::core::ids::MatrixUserId;

use super::MatrixError;

/// What a message refers to on Matrix, and when it was written.
#[derive(Debug, Clone, Copy, Default)]
pub struct Relations<'a> {
    /// The event it answers (`m.in_reply_to`; no fallback quote, as the spec now says).
    pub reply_to: Option<&'a str>,
    /// The event it corrects (`m.replace`).
    pub replaces: Option<&'a str>,
    /// When it was written (ms since the Unix epoch): the event's `origin_server_ts`, set with
    /// the appservice `ts` parameter (timestamp massaging), so a message that waited shows its
    /// own time. Not part of the content; it travels here to the one call that sends it.
    pub sent_at: Option<i64>,
    /// The users it mentions (`m.mentions.user_ids`: their clients notify them).
    pub mentions: &'a [MatrixUserId],
}

/// A file in the media repository, to post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedFile {
    pub mxc: String,
    pub name: String,
    pub mimetype: String,
    pub size: u64,
}

/// Message content with its relations: a reply names the event; a correction keeps the new
/// content in `m.new_content` and a `* ` marked copy for clients without edits (ruma's
/// `make_replacement`).
pub fn with_relations(
    content: RoomMessageEventContent,
    relations: Relations<'_>,
) -> Result<RoomMessageEventContent, MatrixError> {
    let event = |id: &str| OwnedEventId::try_from(id).map_err(|e| MatrixError::Protocol(format!("{id}: {e}")));
    let mentions = if relations.mentions.is_empty() {
        None
    } else {
        let users = relations.mentions.iter().map(super::to_ruma_user).collect::<Result<Vec<_>, _>>()?;
        Some(Mentions::with_user_ids(users))
    };
    Ok(if let Some(original) = relations.replaces {
        content.make_replacement(ReplacementMetadata::new(event(original)?, mentions))
    } else {
        let mut content = content;
        if let Some(reply_to) = relations.reply_to {
            content.relates_to = Some(Relation::Reply(Reply::with_event_id(event(reply_to)?)));
        }
        content.mentions = mentions;
        content
    })
}

/// The content of a file message; the message type follows the MIME type.
pub fn file_content(file: &UploadedFile) -> RoomMessageEventContent {
    let url = OwnedMxcUri::from(file.mxc.as_str());
    let size = UInt::new(file.size);
    let mimetype = Some(file.mimetype.clone());
    let filename = Some(file.name.clone());
    let msgtype = match file.mimetype.split('/').next() {
        Some("image") => {
            let mut info = ImageInfo::new();
            (info.mimetype, info.size) = (mimetype, size);
            let mut c = ImageMessageEventContent::plain(file.name.clone(), url).info(Some(Box::new(info)));
            c.filename = filename;
            MessageType::Image(c)
        }
        Some("video") => {
            let mut info = VideoInfo::new();
            (info.mimetype, info.size) = (mimetype, size);
            let mut c = VideoMessageEventContent::plain(file.name.clone(), url).info(Some(Box::new(info)));
            c.filename = filename;
            MessageType::Video(c)
        }
        Some("audio") => {
            let mut info = AudioInfo::new();
            (info.mimetype, info.size) = (mimetype, size);
            let mut c = AudioMessageEventContent::plain(file.name.clone(), url).info(Some(Box::new(info)));
            c.filename = filename;
            MessageType::Audio(c)
        }
        _ => {
            let mut info = FileInfo::new();
            (info.mimetype, info.size) = (mimetype, size);
            let mut c = FileMessageEventContent::plain(file.name.clone(), url).info(Some(Box::new(info)));
            c.filename = filename;
            MessageType::File(c)
        }
    };
    RoomMessageEventContent::new(msgtype)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn json(content: RoomMessageEventContent) -> serde_json::Value {
        serde_json::to_value(content).unwrap()
    }

    #[test]
    fn edits_keep_the_new_content_and_replies_name_the_event() {
        let text = || RoomMessageEventContent::text_plain("fixed");
        let content = json!({"msgtype": "m.text", "body": "fixed"});
        let edit = json(with_relations(text(), Relations { replaces: Some("$o"), ..Relations::default() }).unwrap());
        assert_eq!(edit["body"], "* fixed");
        assert_eq!(edit["m.new_content"], content);
        assert_eq!(edit["m.relates_to"], json!({"rel_type": "m.replace", "event_id": "$o"}));
        let reply = json(with_relations(text(), Relations { reply_to: Some("$r"), ..Relations::default() }).unwrap());
        assert_eq!(reply["body"], "fixed");
        assert_eq!(reply["m.relates_to"], json!({"m.in_reply_to": {"event_id": "$r"}}));
        let bob = [MatrixUserId::parse("@bob:hs").unwrap()];
        let mention = json(with_relations(text(), Relations { mentions: &bob, ..Relations::default() }).unwrap());
        assert_eq!(mention["m.mentions"], json!({"user_ids": ["@bob:hs"]}));
    }

    #[test]
    fn files_are_typed_by_their_mime_type() {
        let file = |m: &str| UploadedFile { mxc: "mxc://hs/a".into(), name: "a".into(), mimetype: m.into(), size: 3 };
        for (mime, msgtype) in
            [("image/png", "m.image"), ("audio/ogg", "m.audio"), ("video/mp4", "m.video"), ("text/plain", "m.file")]
        {
            let f = json(file_content(&file(mime)));
            assert_eq!(
                f,
                json!({"msgtype": msgtype, "body": "a", "filename": "a", "url": "mxc://hs/a", "info": {"mimetype": mime, "size": 3}}),
                "{mime}"
            );
        }
    }
}
