//! `journal export`: a person's journal as a CSV file, uploaded to the homeserver's media
//! repository by the bot and sent as a file message (Matrix), or served by the bridge under
//! `/media/…` like any Matrix file and sent as an XEP-0066 link from the component (XMPP).
//! Sent at once, not through the outbox: it is an answer made on demand, and a failure is
//! answered ("try again"), not retried.

use serde::Serialize;

use crate::bridge::Bridge;
use crate::core::action::{Attachment, Extras, Text};
use crate::core::ids::{BareJid, RoomId};
use crate::core::journal::Entry;
use crate::core::watch::Party;
use crate::http::calls::csv_safe;
use crate::matrix::client::{Relations, UploadedFile};
use crate::store::{MediaLink, StoreTx};
use crate::xmpp::out::Outgoing;

const FILE_NAME: &str = "journal.csv";

#[derive(Serialize)]
struct Row<'a> {
    id: &'a str,
    when: &'a str,
    what: &'a str,
    with: std::borrow::Cow<'a, str>,
    details: &'a str,
    note: std::borrow::Cow<'a, str>,
}

/// The entries as CSV (a header and one row each); names and notes are defused against
/// spreadsheet formulas, as in the HTTP journal.
pub(super) fn to_csv(entries: &[Entry]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    w.write_record(["id", "when", "what", "with", "details", "note"])?;
    for e in entries {
        w.serialize(Row {
            id: &e.id,
            when: &e.when,
            what: &e.what,
            with: csv_safe(&e.with),
            details: &e.detail,
            note: csv_safe(e.note.as_deref().unwrap_or("")),
        })?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// Send the file to `caller`: into `room` (their chat with the bot) on Matrix, from the
/// component on XMPP. `Err` says why it could not go.
pub(super) async fn send(
    bridge: &Bridge,
    tx: &mut StoreTx,
    caller: &Party,
    room: Option<&RoomId>,
    csv: Vec<u8>,
) -> Result<(), String> {
    let bot = bridge.map.bot();
    let size = csv.len() as u64;
    let mxc = bridge.matrix.upload(&bot, csv, "text/csv").await.map_err(|e| format!("upload: {e}"))?;
    let txn = format!("journal-export-{}", super::media::new_token());
    match caller {
        Party::Matrix(_) => {
            let room = room.ok_or("no chat to send it to")?;
            let file = UploadedFile { mxc, name: FILE_NAME.into(), mimetype: "text/csv".into(), size };
            bridge.matrix.send_file(room, &bot, &file, Relations::default(), &txn).await.map_err(|e| e.to_string())?;
        }
        Party::Xmpp(jid) => {
            let token = super::media::new_token();
            // A media link belongs to the event it came from (forgotten when that is redacted);
            // an export has none, so it stands under a room id of its own that nothing redacts.
            let link = MediaLink {
                token: token.clone(),
                mxc,
                name: FILE_NAME.into(),
                mimetype: Some("text/csv".into()),
                size: Some(size),
                room: RoomId::parse(&format!("!journal-export:{}", bridge.map.homeserver))
                    .map_err(|e| e.to_string())?,
                event_id: txn.clone(),
                created_at: crate::store::now_ms(),
            };
            // In the command's transaction: a link is served only once the answer is committed.
            tx.save_media(&link).await.map_err(|e| e.to_string())?;
            let url = format!("{}/media/{token}/{FILE_NAME}", bridge.current_config().media_base_url());
            let from = BareJid::parse(&bridge.map.component).map_err(|e| e.to_string())?;
            let extras = Extras {
                file: Some(Attachment {
                    url: url.clone(),
                    name: Some(FILE_NAME.into()),
                    mimetype: Some("text/csv".into()),
                    size: Some(size),
                }),
                ..Default::default()
            };
            let out = Outgoing::Chat { from, to: jid.clone(), text: Text::notice(url), id: txn, nick: None, extras };
            bridge.xmpp.deliver(out).await.map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_has_a_header_and_defused_cells() {
        let e = Entry {
            id: "c3".into(),
            at: 1,
            when: "1970-01-01 00:00 UTC".into(),
            what: "missed call".into(),
            with: "=HYPERLINK(\"x\")".into(),
            detail: "rang 10 s".into(),
            owner: None,
            note: Some("call back, \"soon\"".into()),
        };
        let csv = String::from_utf8(to_csv(&[e]).expect("writes")).expect("UTF-8");
        let mut r = csv::Reader::from_reader(csv.as_bytes());
        assert_eq!(
            r.headers().expect("a header").iter().collect::<Vec<_>>(),
            ["id", "when", "what", "with", "details", "note"]
        );
        let row = r.records().next().expect("a row").expect("parses");
        assert_eq!(&row[0], "c3");
        assert!(row[3].starts_with('\''), "{:?}", &row[3]);
        assert_eq!(&row[5], "call back, \"soon\"");
        assert_eq!(to_csv(&[]).expect("writes"), b"id,when,what,with,details,note\n");
    }
}
