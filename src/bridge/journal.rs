//! `journal`: a person's calls (the missed-call module's journal, by their line) and chats
//! (`chat_journal`, counted as messages are accepted), listed newest first, noted, exported as
//! CSV, and readable over HTTP with a token of their own. Only one's own entries; a contact
//! group's for admins and for members with the `group-journal` permission.

use crate::bridge::Bridge;
use crate::commands::user::{JournalCommand, JournalFilter, JournalScope, TokenAction};
use crate::core::action::Action;
use crate::core::ids::RoomId;
use crate::core::journal::{self, Entry};
use crate::core::watch::Party;
use crate::store::{ChatEntry, ChatQuery, JournalQuery, JournalRow, StoreTx};

/// Default reach of a listing without `--since`.
const DEFAULT_DAYS: i64 = 30;
/// Rows read per person and kind for one listing (the listing shows `journal::MAX_LISTED`).
const READ_ROWS: i64 = 500;
/// Longest note kept.
const MAX_NOTE_CHARS: usize = 500;
/// Most members a group's journal reads.
const MAX_GROUP: usize = 100;

impl Bridge {
    /// Run `journal …` for `caller`; Matrix listings go out as an HTML table (`actions`), and
    /// the text answer is then empty.
    pub(super) async fn journal_command(
        &self,
        tx: &mut StoreTx,
        caller: &Party,
        action: Option<JournalCommand>,
        filter: JournalFilter,
        reply_room: Option<&RoomId>,
        actions: &mut Vec<Action>,
    ) -> crate::store::Result<String> {
        let action = match action {
            Some(JournalCommand::Note { id, text }) => {
                return self.journal_note(tx, caller, &id, &text.join(" ")).await;
            }
            Some(JournalCommand::Token { action }) => return self.journal_token(tx, caller, action).await,
            Some(JournalCommand::Export { since }) => return self.journal_export(tx, caller, since, reply_room).await,
            listing => listing,
        };
        let (scope, filter) = match &action {
            Some(a) => a.listing().unwrap_or((JournalScope::All, &filter)),
            None => (JournalScope::All, &filter),
        };
        let since = match filter.since.as_deref().map(parse_since).transpose() {
            Ok(s) => s.unwrap_or_else(|| crate::store::now_ms() - DEFAULT_DAYS * 86_400_000),
            Err(e) => return Ok(e),
        };
        let what = match scope {
            JournalScope::All => "calls and chats",
            JournalScope::Missed => "missed calls and chats",
            JournalScope::Calls => "calls",
            JournalScope::Chats => "chats",
        };
        let (owners, title) = match &filter.group {
            None => (vec![caller.clone()], format!("Your journal ({what})")),
            Some(group) => match self.group_journal_owners(caller, group).await? {
                Ok(owners) => (owners, format!("The journal of group {group} ({what})")),
                Err(refusal) => return Ok(refusal),
            },
        };
        let show_owner = filter.group.is_some();
        let mut entries = vec![];
        for owner in &owners {
            entries.extend(self.entries_of(owner, scope, since, filter.contact.as_deref(), show_owner).await?);
        }
        let text = journal::table(&title, &journal::newest_first(entries));
        match (caller, reply_room) {
            (Party::Matrix(_), Some(room)) => {
                let html = Some(crate::bridge::admin::as_html(&text));
                actions.push(Action::MatrixNotice { room: room.clone(), body: text, html, reply_to: None });
                Ok(String::new())
            }
            _ => Ok(text),
        }
    }

    /// The members whose journal `caller` may read as group `group`, or the refusal.
    async fn group_journal_owners(
        &self,
        caller: &Party,
        group: &str,
    ) -> crate::store::Result<Result<Vec<Party>, String>> {
        let Some(members) = self.store.group_members(group).await? else {
            return Ok(Err(format!("There is no contact group '{group}'.")));
        };
        let allowed = self.is_admin(caller)
            || (members.contains(caller) && self.store.has_permission(caller, "group-journal").await?);
        if !allowed {
            return Ok(Err(format!(
                "You may not read the journal of group '{group}': that takes being one of its members with the group-journal permission, or an admin."
            )));
        }
        Ok(Ok(members.into_iter().take(MAX_GROUP).collect()))
    }

    /// One person's entries of `scope` since `since`, matching `contact`.
    async fn entries_of(
        &self,
        owner: &Party,
        scope: JournalScope,
        since: i64,
        contact: Option<&str>,
        show_owner: bool,
    ) -> crate::store::Result<Vec<Entry>> {
        let notes: std::collections::HashMap<String, String> =
            self.store.journal_notes(&owner.key()).await?.into_iter().collect();
        let contact = contact.map(|c| c.trim().to_lowercase()).filter(|c| !c.is_empty());
        let matches = |text: &str| contact.as_deref().is_none_or(|c| text.to_lowercase().contains(c));
        let owner_name = show_owner.then(|| owner.to_string());
        let mut out = vec![];
        if scope != JournalScope::Chats
            && let Some(line) = self.calls.get().and_then(|c| c.user_of(owner))
        {
            let q = JournalQuery {
                user: Some(line.to_string()),
                from: Some(since),
                kind: (scope == JournalScope::Missed).then(|| "missed".to_owned()),
                limit: READ_ROWS,
                ..Default::default()
            };
            for row in self.store.journal(&q).await? {
                let mut e = call_entry(&row);
                if matches(&e.with) {
                    e.note = notes.get(&e.id).cloned();
                    e.owner = owner_name.clone();
                    out.push(e);
                }
            }
        }
        if scope != JournalScope::Calls {
            let q = ChatQuery {
                party: owner.key(),
                since,
                contact: None,
                missed_only: scope == JournalScope::Missed,
                limit: READ_ROWS,
            };
            for row in self.store.chat_journal(&q).await? {
                let with = self.counterpart_name(&row.conversation);
                if matches(&with) {
                    let mut e = chat_entry(&row, with);
                    e.note = notes.get(&e.id).cloned();
                    e.owner = owner_name.clone();
                    out.push(e);
                }
            }
        }
        Ok(out)
    }

    /// The other side of a conversation as its reader knows them.
    pub(super) fn counterpart_name(&self, conversation: &str) -> String {
        if let Some(Party::Matrix(user)) = Party::from_key(conversation) {
            return match self.displayname(&user) {
                Some(name) => format!("{name} ({user})"),
                None => user.to_string(),
            };
        }
        if let Some(room) = conversation.strip_prefix("room:") {
            return format!("room {room}");
        }
        let bare = conversation.split_once(':').map_or(conversation, |(_, rest)| rest);
        match self.calls.get().and_then(|c| c.contacts().lookup(bare).and_then(|k| k.display_name().map(str::to_owned)))
        {
            Some(name) => format!("{name} ({bare})"),
            None => bare.to_owned(),
        }
    }

    /// `journal note ID TEXT`: only on one's own entries; `-` removes the note.
    async fn journal_note(
        &self,
        tx: &mut StoreTx,
        caller: &Party,
        id: &str,
        text: &str,
    ) -> crate::store::Result<String> {
        let Some((call, n)) = journal::parse_entry_id(id) else {
            return Ok(format!("'{id}' is not an entry of the journal: use the id the listing shows (c12, m7)."));
        };
        let owner = if call {
            let line = self.calls.get().and_then(|c| c.user_of(caller)).map(|l| l.to_string());
            self.store.call_entry_owner(n).await?.filter(|o| line.as_ref() == Some(o)).is_some()
        } else {
            self.store.chat_entry_owner(n).await?.is_some_and(|o| o == caller.key())
        };
        if !owner {
            // The same answer for someone else's entry and none at all: ids tell nothing.
            return Ok(format!("Your journal has no entry {id}."));
        }
        let entry = format!("{}{n}", if call { 'c' } else { 'm' });
        let text = text.trim();
        if text == "-" {
            tx.set_journal_note(&caller.key(), &entry, None).await?;
            return Ok(format!("OK: the note on {entry} is removed."));
        }
        let note: String = text.chars().filter(|c| !c.is_control()).take(MAX_NOTE_CHARS).collect();
        tx.set_journal_note(&caller.key(), &entry, Some(&note)).await?;
        Ok(format!("OK: noted on {entry}."))
    }

    /// `journal token new|revoke`.
    async fn journal_token(
        &self,
        tx: &mut StoreTx,
        caller: &Party,
        action: TokenAction,
    ) -> crate::store::Result<String> {
        if self.calls.get().is_none() {
            return Ok("The HTTP journal is not in use on this bridge (no missed_calls section).".into());
        }
        Ok(match action {
            TokenAction::New => {
                let token = format!("ucbj_{}{}", super::media::new_token(), super::media::new_token());
                tx.add_journal_token(&crate::http::calls::token_hash(&token), &caller.key()).await?;
                format!(
                    "Your journal token (it reads only your entries; keep it secret; `journal token revoke` ends it):\n{token}\nUse: GET {}/calls/journal with the header Authorization: Bearer <token>",
                    self.current_config().media_base_url()
                )
            }
            TokenAction::Revoke => match tx.revoke_journal_tokens(&caller.key()).await? {
                0 => "You had no journal token.".into(),
                n => format!("OK: {n} journal token(s) revoked."),
            },
        })
    }

    /// `journal export`: one's own entries as a CSV file, in the chat the command came from.
    async fn journal_export(
        &self,
        tx: &mut StoreTx,
        caller: &Party,
        since: Option<String>,
        reply_room: Option<&RoomId>,
    ) -> crate::store::Result<String> {
        let since = match since.as_deref().map(parse_since).transpose() {
            Ok(s) => s.unwrap_or(0),
            Err(e) => return Ok(e),
        };
        let mut entries = self.entries_of(caller, JournalScope::All, since, None, false).await?;
        entries.sort_by_key(|e| std::cmp::Reverse(e.at));
        let csv = match super::journal_export::to_csv(&entries) {
            Ok(csv) => csv,
            Err(e) => return Ok(format!("Cannot write the export: {e}")),
        };
        let count = entries.len();
        match super::journal_export::send(self, tx, caller, reply_room, csv).await {
            Ok(()) => Ok(format!("Your journal export: {count} entries (journal.csv).")),
            Err(why) => {
                tracing::warn!(%caller, error = %why, "journal export not sent");
                Ok(format!("Cannot send the export now: {why}. Try again in a moment."))
            }
        }
    }
}

/// `--since`: a day (`2026-12-01`, midnight UTC) or an RFC 3339 time; `Err` is the answer.
pub(super) fn parse_since(value: &str) -> Result<i64, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(t.timestamp_millis());
    }
    chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
        .ok_or_else(|| format!("--since {value}: expected a day (2026-12-01) or a time (2026-12-01T09:00:00Z)."))
}

/// A time as the journal shows it (UTC).
pub(super) fn show_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map_or_else(|| ms.to_string(), |t| t.format("%Y-%m-%d %H:%M UTC").to_string())
}

fn call_entry(row: &JournalRow) -> Entry {
    let e = &row.entry;
    let what = match e.kind.as_str() {
        "missed" if row.processed => "missed call (called back)",
        "missed" => "missed call",
        "outgoing" => "outgoing call",
        _ => "call",
    };
    let with = match (&e.name, &e.number) {
        (Some(name), Some(number)) => format!("{name} ({number})"),
        (Some(name), None) => name.clone(),
        (None, Some(number)) => number.clone(),
        (None, None) => "hidden number".into(),
    };
    let detail = match e.kind.as_str() {
        "missed" => format!("rang {} s", e.ring_ms / 1000),
        _ => format!("{} s", (e.ended_at - e.started_at).max(0) / 1000),
    };
    Entry {
        id: format!("c{}", row.id),
        at: e.started_at,
        when: show_time(e.started_at),
        what: what.into(),
        with,
        detail,
        owner: None,
        note: None,
    }
}

fn chat_entry(row: &ChatEntry, with: String) -> Entry {
    let what = match (row.missed, row.kind.as_str()) {
        (true, "sms") => "missed SMS chat",
        (true, "room") => "missed room chat",
        (true, _) => "missed chat",
        (false, "sms") => "SMS chat",
        (false, "room") => "room chat",
        (false, _) => "chat",
    };
    let unread = if row.unread_since.is_some() { ", unread" } else { "" };
    let detail = format!(
        "{} message(s), {} to {}{unread}",
        row.messages,
        show_time(row.first_at),
        show_time(row.last_at).get(11..).unwrap_or_default()
    );
    Entry {
        id: format!("m{}", row.id),
        at: row.last_at,
        when: show_time(row.last_at),
        what: what.into(),
        with,
        detail,
        owner: None,
        note: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_days_and_times() {
        assert_eq!(parse_since("1970-01-02"), Ok(86_400_000));
        assert_eq!(parse_since("1970-01-01T00:00:01Z"), Ok(1_000));
        assert!(parse_since("yesterday").unwrap_err().contains("--since yesterday"));
        assert_eq!(show_time(0), "1970-01-01 00:00 UTC");
    }
}
