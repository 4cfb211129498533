//! What an SMS cannot carry, and the sentence that tells the sender so. SMS is text only: an
//! edit, a reaction, a retraction or a file sent into an SMS chat is not sent, and the sender is
//! told why instead of hearing nothing.

use crate::core::ids::PhoneNumber;

/// Something sent into an SMS chat that does not go out as an SMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsendable {
    /// A correction of an earlier message (Matrix edit, XEP-0308).
    Edit,
    /// A reaction (Matrix annotation, XEP-0444).
    Reaction,
    /// Taking a message back (Matrix redaction, XEP-0424).
    Retraction,
    /// A file, while `sms.files_as_links` is off.
    File,
    /// A file larger than the bridge serves (`media.max_bytes`), with `sms.files_as_links` on.
    FileTooLarge,
    /// An encrypted message the bridge cannot read.
    Encrypted,
    /// Anything else that is not text; `what` names it ("a poll").
    Other(String),
}

impl Unsendable {
    /// The notice for the sender: what was not sent to `phone`, and why.
    pub fn notice(&self, phone: &PhoneNumber) -> String {
        let why = match self {
            Self::Edit => "an SMS cannot be changed once it is sent. Send the correction as a new message.".to_owned(),
            Self::Reaction => "SMS carries text only, so a reaction cannot be sent. Answer with a message.".to_owned(),
            Self::Retraction => "an SMS cannot be taken back once it is sent; the phone keeps it.".to_owned(),
            Self::File => "SMS carries text only, so files are not sent. (An admin can have files sent as \
                 links: sms.files_as_links.)"
                .to_owned(),
            Self::FileTooLarge => "the file is larger than the bridge passes on, so no link to it was sent.".to_owned(),
            Self::Encrypted => "the message is encrypted and the bridge cannot read it.".to_owned(),
            Self::Other(what) => format!("SMS carries text only, so {what} cannot be sent."),
        };
        format!("Not sent to {phone}: {why}")
    }
}

/// The text of an SMS that carries a file as a link: the caption (if any) and the link.
pub fn file_link_text(caption: &str, url: &str) -> String {
    let caption = caption.trim();
    if caption.is_empty() || caption == url {
        url.to_owned()
    } else if caption.contains(url) {
        caption.to_owned()
    } else {
        format!("{caption} {url}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone() -> PhoneNumber {
        PhoneNumber::parse("+4917612345678").expect("a valid number")
    }

    #[test]
    fn every_notice_names_the_number_and_says_it_was_not_sent() {
        let all = [
            Unsendable::Edit,
            Unsendable::Reaction,
            Unsendable::Retraction,
            Unsendable::File,
            Unsendable::FileTooLarge,
            Unsendable::Encrypted,
            Unsendable::Other("a poll".into()),
        ];
        for u in all {
            let text = u.notice(&phone());
            assert!(text.starts_with("Not sent to +4917612345678: "), "{text}");
        }
        assert!(Unsendable::File.notice(&phone()).contains("sms.files_as_links"));
        assert!(Unsendable::Other("a poll".into()).notice(&phone()).contains("a poll cannot be sent"));
    }

    #[test]
    fn a_file_link_keeps_its_caption() {
        let url = "https://bridge.example/media/abc/photo.jpg";
        assert_eq!(file_link_text("", url), url);
        assert_eq!(file_link_text(url, url), url);
        assert_eq!(file_link_text("look", url), format!("look {url}"));
        assert_eq!(file_link_text(&format!("see {url}"), url), format!("see {url}"));
    }
}
