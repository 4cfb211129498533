//! The journal rows of a finished call: one per person involved (who rang, who answered, who
//! called out), with the caller's contact when the contact store knows them.

use super::event::Direction;
use super::event::Extension;
use super::live::Live;
use super::mail;
use super::model::CallSummary;
use super::rules::UserId;
use super::service::CallsService;
use crate::contacts::Contact;
use crate::store::NewJournalRow;

impl CallsService {
    /// People who may be told about this call (for their facts).
    pub(super) fn candidates(&self, live: &Live, s: &CallSummary) -> Vec<UserId> {
        let mut out: Vec<UserId> = s
            .participants
            .iter()
            .filter_map(|p| live.directory.owner_of_extension(&p.extension))
            .map(|u| u.id.clone())
            .collect();
        if let Some(u) = live.directory.owner_of_number(&s.called) {
            out.push(u.id.clone());
        }
        out.sort();
        out.dedup();
        out
    }

    /// One journal row per person involved: who rang (missed or answered), who answered, who
    /// called (outgoing).
    pub(super) fn journal_rows(&self, live: &Live, s: &CallSummary, contact: Option<&Contact>) -> Vec<NewJournalRow> {
        let direction = match s.direction {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
            Direction::Internal => "internal",
        };
        let base = |user: &UserId, kind: &str| NewJournalRow {
            user: user.to_string(),
            kind: kind.to_owned(),
            call_id: s.call_id.to_string(),
            direction: direction.to_owned(),
            number: None,
            number_key: String::new(),
            name: None,
            contact_id: None,
            extension: None,
            started_at: s.started_at,
            ended_at: s.ended_at,
            ring_ms: 0,
            answered_by: s.answered.as_ref().map(|a| a.by.to_string()),
            notified: false,
            channels: String::new(),
            skip_reason: None,
        };
        let mut rows: Vec<NewJournalRow> = Vec::new();
        let caller_owner = s.caller.visible_number().and_then(|n| live.directory.owner_of_number(n));
        if s.direction != Direction::Inbound
            && let Some(owner) = caller_owner
        {
            let out_contact = live.contacts.lookup(&s.called);
            let mut row = base(&owner.id, "outgoing");
            row.number = Some(s.called.clone());
            row.number_key = self.key_of(&s.called);
            row.name = out_contact.and_then(Contact::display_name).map(str::to_owned);
            row.contact_id = out_contact.and_then(contact_id);
            row.extension = s.caller.number.clone();
            rows.push(row);
        }
        if s.direction == Direction::Outbound {
            return rows;
        }
        // The people whose phones rang, once each (two extensions of one person merge).
        let mut rang: Vec<(UserId, Extension, i64, bool)> = Vec::new();
        for p in &s.participants {
            let Some(owner) = live.directory.owner_of_extension(&p.extension) else { continue };
            let answered = p.answered || s.answered.as_ref().is_some_and(|a| a.by == p.extension);
            match rang.iter_mut().find(|(u, ..)| *u == owner.id) {
                Some(r) => {
                    r.3 |= answered;
                    if p.ring_ms > r.2 {
                        r.1 = p.extension.clone();
                        r.2 = p.ring_ms;
                    }
                }
                None => rang.push((owner.id.clone(), p.extension.clone(), p.ring_ms, answered)),
            }
        }
        if let Some(a) = &s.answered
            && let Some(owner) = live.directory.owner_of_extension(&a.by)
            && !rang.iter().any(|(u, ..)| *u == owner.id)
        {
            rang.push((owner.id.clone(), a.by.clone(), 0, true));
        }
        if rang.is_empty()
            && let Some(owner) = live.directory.owner_of_number(&s.called)
        {
            rang.push((owner.id.clone(), Extension::new(s.called.clone()), 0, s.answered.is_some()));
        }
        for (user, extension, ring_ms, _) in rang {
            // Missed = nobody took the call; a call a colleague took counts as answered.
            let kind = if s.answered.is_some() { "answered" } else { "missed" };
            let mut row = base(&user, kind);
            row.number = s.caller.visible_number().map(str::to_owned);
            row.number_key = row.number.as_deref().map(|n| self.key_of(n)).unwrap_or_default();
            row.name = contact
                .and_then(Contact::display_name)
                .map(str::to_owned)
                .or_else(|| s.caller.name.clone())
                .map(|n| mail::one_line(&n));
            row.contact_id = contact.and_then(contact_id);
            row.extension = Some(extension.to_string());
            row.ring_ms = ring_ms;
            if caller_owner.is_some_and(|o| o.id == user) {
                continue; // calling oneself
            }
            rows.push(row);
        }
        rows
    }
}

fn contact_id(c: &Contact) -> Option<String> {
    c.uid
        .clone()
        .or_else(|| c.phones.iter().find_map(|p| p.e164.clone()))
        .or_else(|| c.display_name().map(str::to_owned))
}
