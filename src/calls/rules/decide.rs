//! The decision itself, step by step: call-wide checks, then the ringing extensions
//! ([`candidates`]), then the policy's choice, then per chosen user (see the module's
//! documentation for the order and why).

use super::{
    BlockList, Channel, Decision, Directory, Facts, Notice, NoticeReason, Policy, RuleSettings, SkipReason, Skipped,
    UserEntry, number_key,
};
use crate::calls::event::{Direction, Extension, UnixMillis};
use crate::calls::model::CallSummary;

/// A person whose phone rang, with all their ringing extensions folded together.
struct Candidate<'a> {
    user: &'a UserEntry,
    extension: Extension,
    first_ring_at: UnixMillis,
    last_ring_at: UnixMillis,
    ring_ms: i64,
    answered: bool,
}

/// Apply the rules to one finished call.
pub fn decide(settings: &RuleSettings, directory: &Directory, summary: &CallSummary, facts: &Facts) -> Decision {
    let ex = &settings.exceptions;
    if settings.policy == Policy::None {
        return Decision::skip_call(SkipReason::PolicyNone);
    }
    if summary.direction == Direction::Outbound {
        return Decision::skip_call(SkipReason::Outgoing);
    }
    let reason = match &summary.answered {
        None => NoticeReason::Missed,
        Some(_) if settings.notify_even_if_answered_by_other => NoticeReason::AnsweredElsewhere,
        Some(_) => return Decision::skip_call(SkipReason::Answered),
    };
    if ex.internal_calls && summary.direction == Direction::Internal {
        return Decision::skip_call(SkipReason::Internal);
    }
    if ex.hidden_numbers && summary.caller.is_hidden() {
        return Decision::skip_call(SkipReason::HiddenNumber);
    }
    if ex.block_list && caller_blocked(&settings.block_list, summary, facts) {
        return Decision::skip_call(SkipReason::BlockedNumber);
    }
    if ex.no_contact && !facts.contact_found {
        return Decision::skip_call(SkipReason::NoContact);
    }

    let mut decision = Decision::default();
    let candidates = candidates(settings, directory, summary, &mut decision);
    let chosen: Vec<Candidate> = match settings.policy {
        Policy::None | Policy::All => candidates,
        Policy::First | Policy::Last => {
            let pick = if settings.policy == Policy::First {
                candidates.iter().enumerate().min_by_key(|(_, c)| c.first_ring_at).map(|(i, _)| i)
            } else {
                candidates.iter().enumerate().max_by_key(|(_, c)| c.last_ring_at).map(|(i, _)| i)
            };
            let mut chosen = Vec::new();
            for (i, c) in candidates.into_iter().enumerate() {
                if Some(i) == pick {
                    chosen.push(c);
                } else {
                    decision.skipped.push(Skipped {
                        user: Some(c.user.id.clone()),
                        extension: Some(c.extension),
                        reason: SkipReason::NotChosen,
                    });
                }
            }
            chosen
        }
    };

    for c in chosen {
        let user = c.user;
        let skip = |reason| Skipped { user: Some(user.id.clone()), extension: Some(c.extension.clone()), reason };
        if !user.opt_in.unwrap_or(settings.default_opt_in) {
            decision.skipped.push(skip(SkipReason::OptedOut));
            continue;
        }
        let uf = facts.users.get(&user.id).cloned().unwrap_or_default();
        // A hidden caller has no number to compare, so these two never apply to it.
        if !summary.caller.is_hidden() {
            if ex.repeated_same_day && uf.notices_today_same_number > 0 {
                decision.skipped.push(skip(SkipReason::RepeatedSameDay));
                continue;
            }
            if ex.repeated_until_logon
                && let Some(noticed) = uf.last_notice_same_number_at
                && uf.last_logon_at.is_none_or(|logon| logon < noticed)
            {
                decision.skipped.push(skip(SkipReason::RepeatedWithoutLogon));
                continue;
            }
        }
        let channels = channels_for(settings, user);
        if channels.is_empty() {
            decision.skipped.push(skip(SkipReason::NoChannel));
            continue;
        }
        decision.notices.push(Notice {
            user: user.id.clone(),
            extension: c.extension.clone(),
            ring_ms: c.ring_ms,
            reason,
            channels,
            summary: summary.clone(),
        });
    }
    decision
}

/// The people whose phones rang, each once, in ring order, without the ones filtered per
/// extension (their skips are recorded in `decision`).
fn candidates<'a>(
    settings: &RuleSettings,
    directory: &'a Directory,
    summary: &CallSummary,
    decision: &mut Decision,
) -> Vec<Candidate<'a>> {
    let ex = &settings.exceptions;
    let mut out: Vec<Candidate<'a>> = Vec::new();
    if summary.participants.is_empty() {
        // The PBX reported no legs (a plain direct call): the owner of the dialled line is the
        // one whose phone rang, for as long as the call lasted.
        let Some(user) = directory.owner_of_number(&summary.called) else {
            decision.skipped.push(Skipped { user: None, extension: None, reason: SkipReason::NobodyRang });
            return out;
        };
        let extension = user.extensions.first().cloned().unwrap_or_else(|| Extension::new(summary.called.clone()));
        out.push(Candidate {
            user,
            extension,
            first_ring_at: summary.started_at,
            last_ring_at: summary.started_at,
            ring_ms: summary.duration_ms(),
            answered: summary.answered.as_ref().is_some_and(|a| user.extensions.contains(&a.by)),
        });
    } else {
        for p in &summary.participants {
            let skip = |user: Option<&UserEntry>, reason| Skipped {
                user: user.map(|u| u.id.clone()),
                extension: Some(p.extension.clone()),
                reason,
            };
            let owner = directory.owner_of_extension(&p.extension);
            if ex.block_list && settings.block_list.extensions.contains(&p.extension) {
                decision.skipped.push(skip(owner, SkipReason::BlockedExtension));
                continue;
            }
            let Some(user) = owner else {
                decision.skipped.push(skip(None, SkipReason::NoOwner));
                continue;
            };
            match out.iter_mut().find(|c| c.user.id == user.id) {
                // Two phones of one person: they rang side by side, so the longer ring counts.
                Some(c) => {
                    c.first_ring_at = c.first_ring_at.min(p.first_ring_at);
                    c.last_ring_at = c.last_ring_at.max(p.last_ring_at);
                    c.ring_ms = c.ring_ms.max(p.ring_ms);
                    c.answered |= p.answered;
                }
                None => out.push(Candidate {
                    user,
                    extension: p.extension.clone(),
                    first_ring_at: p.first_ring_at,
                    last_ring_at: p.last_ring_at,
                    ring_ms: p.ring_ms,
                    answered: p.answered,
                }),
            }
        }
        // Answered on a phone of theirs that did not ring for this call (picked it up).
        if let Some(a) = &summary.answered {
            for c in &mut out {
                c.answered |= c.user.extensions.contains(&a.by);
            }
        }
    }
    let min_ms = i64::from(ex.min_ring_secs) * 1000;
    out.retain(|c| {
        let reason = if c.answered {
            SkipReason::AnsweredByThemselves
        } else if ex.short_ring && c.ring_ms < min_ms {
            SkipReason::ShortRing { ring_ms: c.ring_ms }
        } else {
            return true;
        };
        decision.skipped.push(Skipped { user: Some(c.user.id.clone()), extension: Some(c.extension.clone()), reason });
        false
    });
    out
}

fn channels_for(settings: &RuleSettings, user: &UserEntry) -> Vec<Channel> {
    let mut channels: Vec<Channel> = settings
        .channels
        .iter()
        .copied()
        .filter(|ch| user.channels.as_ref().is_none_or(|mine| mine.contains(ch)))
        .filter(|ch| match ch {
            Channel::Email => user.email.as_deref().is_some_and(|e| !e.trim().is_empty()),
            Channel::Sms => user.mobile.as_deref().is_some_and(|m| !m.trim().is_empty()),
            Channel::Chat => user.chat(),
        })
        .collect();
    channels.sort_unstable();
    channels.dedup();
    channels
}

fn caller_blocked(list: &BlockList, summary: &CallSummary, facts: &Facts) -> bool {
    let Some(number) = summary.caller.visible_number() else { return false };
    let keys = [Some(number_key(number)), facts.caller_e164.as_deref().map(number_key)];
    list.numbers.iter().map(|n| number_key(n)).any(|n| !n.is_empty() && keys.iter().flatten().any(|k| *k == n))
        || list.extensions.iter().any(|e| e.as_str() == number)
}
