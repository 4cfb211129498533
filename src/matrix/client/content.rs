//! What a message refers to (replies, corrections) and files to post, as Matrix event content.

/// What a message refers to on Matrix.
#[derive(Debug, Clone, Copy, Default)]
pub struct Relations<'a> {
    /// The event it answers (`m.in_reply_to`; no fallback quote, as the spec now says).
    pub reply_to: Option<&'a str>,
    /// The event it corrects (`m.replace`).
    pub replaces: Option<&'a str>,
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
/// content in `m.new_content` and a `* ` marked copy for clients without edits.
pub fn with_relations(mut content: serde_json::Value, relations: Relations<'_>) -> serde_json::Value {
    if let Some(original) = relations.replaces {
        let new_content = content.clone();
        for key in ["body", "formatted_body"] {
            if let Some(text) = content[key].as_str() {
                content[key] = serde_json::json!(format!("* {text}"));
            }
        }
        content["m.new_content"] = new_content;
        content["m.relates_to"] = serde_json::json!({"rel_type": "m.replace", "event_id": original});
    } else if let Some(event) = relations.reply_to {
        content["m.relates_to"] = serde_json::json!({"m.in_reply_to": {"event_id": event}});
    }
    content
}

/// The content of a file message; the message type follows the MIME type.
pub fn file_content(file: &UploadedFile) -> serde_json::Value {
    let msgtype = match file.mimetype.split('/').next() {
        Some("image") => "m.image",
        Some("video") => "m.video",
        Some("audio") => "m.audio",
        _ => "m.file",
    };
    serde_json::json!({
        "msgtype": msgtype,
        "body": file.name,
        "filename": file.name,
        "url": file.mxc,
        "info": {"mimetype": file.mimetype, "size": file.size},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn edits_keep_the_new_content_and_replies_name_the_event() {
        let content = json!({"msgtype": "m.text", "body": "fixed"});
        let edit = with_relations(content.clone(), Relations { reply_to: None, replaces: Some("$o") });
        assert_eq!(edit["body"], "* fixed");
        assert_eq!(edit["m.new_content"], content);
        assert_eq!(edit["m.relates_to"], json!({"rel_type": "m.replace", "event_id": "$o"}));
        let reply = with_relations(content, Relations { reply_to: Some("$r"), replaces: None });
        assert_eq!(reply["body"], "fixed");
        assert_eq!(reply["m.relates_to"], json!({"m.in_reply_to": {"event_id": "$r"}}));
    }

    #[test]
    fn files_are_typed_by_their_mime_type() {
        let file = |m: &str| UploadedFile { mxc: "mxc://hs/a".into(), name: "a".into(), mimetype: m.into(), size: 3 };
        assert_eq!(file_content(&file("image/png"))["msgtype"], "m.image");
        assert_eq!(file_content(&file("audio/ogg"))["msgtype"], "m.audio");
        assert_eq!(file_content(&file("video/mp4"))["msgtype"], "m.video");
        let f = file_content(&file("text/plain"));
        assert_eq!(
            (f["msgtype"].as_str(), f["info"]["size"].as_u64(), f["url"].as_str()),
            (Some("m.file"), Some(3), Some("mxc://hs/a"))
        );
    }
}
