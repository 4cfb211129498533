//! "After the fact": an outgoing call to a number settles the earlier missed calls from it.

use serde::{Deserialize, Serialize};

use super::{UserId, number_key};
use crate::calls::event::UnixMillis;

/// Kinds of journal entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalKind {
    Missed,
    Answered,
    Outgoing,
}

/// One row of a user's call journal, as far as the "called back" rule needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub id: i64,
    pub user: UserId,
    pub kind: JournalKind,
    /// The other party's number, normalised the same way for every entry.
    pub number: Option<String>,
    /// The matched contact, if any: calling back any number of the same contact counts.
    pub contact_id: Option<String>,
    pub at: UnixMillis,
    pub processed: bool,
}

/// Missed calls that an outgoing call settles: the same user's earlier unprocessed missed calls
/// from the number (or the contact) the user has now called. Returns their ids.
pub fn settled_by(outgoing: &JournalEntry, journal: &[JournalEntry]) -> Vec<i64> {
    if outgoing.kind != JournalKind::Outgoing {
        return Vec::new();
    }
    let out_key = outgoing.number.as_deref().map(number_key).filter(|k| !k.is_empty());
    journal
        .iter()
        .filter(|e| e.kind == JournalKind::Missed && !e.processed && e.user == outgoing.user && e.at < outgoing.at)
        .filter(|e| {
            let same_number = out_key.is_some() && e.number.as_deref().map(number_key) == out_key;
            let same_contact = outgoing.contact_id.is_some() && e.contact_id == outgoing.contact_id;
            same_number || same_contact
        })
        .map(|e| e.id)
        .collect()
}

/// Every missed call in a journal that a later outgoing call settles (for a batch re-check).
pub fn all_settled(journal: &[JournalEntry]) -> Vec<i64> {
    let mut ids: Vec<i64> = journal.iter().flat_map(|out| settled_by(out, journal)).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}
