//! Choices the bridge offered someone in a command's answer, and how their answer is read: the
//! mobile numbers `sms NAME` found (answered with `sms NAME 2` or a bare `2`), and the people
//! `start-chat GROUP` will invite (answered with `confirm`, or `start-chat GROUP --without …`).
//! Plain state, kept in memory for [`MENU_TTL`]: a restart forgets an open choice, and the
//! command that offered it shows it again.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::core::watch::Party;

/// How long an offered choice can be answered.
pub const MENU_TTL: Duration = Duration::from_secs(600);

/// What a person was offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Menu {
    /// `sms TARGET` found `count` mobile numbers; a bare number picks one.
    SmsNumber { target: String, count: usize },
    /// `start-chat GROUP` showed whom the room will invite; `confirm` creates it.
    StartChat { group: String, participants: Vec<Party> },
}

/// The open choice of each person (one at a time: a new one replaces the old).
#[derive(Debug, Default)]
pub struct Menus {
    open: HashMap<Party, (Instant, Menu)>,
}

impl Menus {
    /// Offer `menu` to `who` (expired choices of everyone are dropped on the way).
    pub fn offer(&mut self, who: &Party, menu: Menu, now: Instant) {
        self.open.retain(|_, (at, _)| now.saturating_duration_since(*at) < MENU_TTL);
        self.open.insert(who.clone(), (now, menu));
    }

    /// `who`'s open choice, if it has not expired.
    pub fn get(&self, who: &Party, now: Instant) -> Option<&Menu> {
        let (at, menu) = self.open.get(who)?;
        (now.saturating_duration_since(*at) < MENU_TTL).then_some(menu)
    }

    /// Take `who`'s open choice away, if it is a room to confirm and has not expired.
    pub fn take_start_chat(&mut self, who: &Party, now: Instant) -> Option<(String, Vec<Party>)> {
        match self.get(who, now) {
            Some(Menu::StartChat { .. }) => match self.open.remove(who) {
                Some((_, Menu::StartChat { group, participants })) => Some((group, participants)),
                _ => None,
            },
            _ => None,
        }
    }
}

/// A bare choice number (`2`), as answered to a menu.
pub fn bare_choice(text: &str) -> Option<usize> {
    let t = text.trim();
    if t.is_empty() || t.len() > 3 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

/// The people of `listed` that `without` leaves out, each named by their number in `listed`
/// (from 1) or by their address (`read` reads one). `Err` names every word that is neither.
pub fn left_out(
    listed: &[Party],
    without: &[String],
    read: impl Fn(&str) -> Option<Party>,
) -> Result<Vec<Party>, String> {
    let mut out: Vec<Party> = Vec::new();
    let mut unknown = Vec::new();
    for word in without.iter().flat_map(|w| w.split([',', ' ']).filter(|s| !s.is_empty())) {
        let by_number = word.parse::<usize>().ok().and_then(|n| n.checked_sub(1)).and_then(|i| listed.get(i));
        let found = by_number.cloned().or_else(|| read(word).filter(|p| listed.contains(p)));
        match found {
            Some(p) if !out.contains(&p) => out.push(p),
            Some(_) => {}
            None => unknown.push(word.to_owned()),
        }
    }
    if unknown.is_empty() {
        Ok(out)
    } else {
        Err(format!(
            "Not in the list (give a number from 1 to {} or an address from it): {}.",
            listed.len(),
            unknown.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ids::{BareJid, MatrixUserId};

    fn m(s: &str) -> Party {
        Party::Matrix(MatrixUserId::parse(s).unwrap())
    }

    fn x(s: &str) -> Party {
        Party::Xmpp(BareJid::parse(s).unwrap())
    }

    fn read(s: &str) -> Option<Party> {
        if s.starts_with('@') {
            MatrixUserId::parse(s).ok().map(Party::Matrix)
        } else {
            BareJid::parse(s).ok().map(Party::Xmpp)
        }
    }

    #[test]
    fn people_are_left_out_by_number_or_address() {
        let listed = [m("@bob:hs"), x("ann@x"), m("@cy:hs")];
        assert_eq!(left_out(&listed, &["2".into()], read), Ok(vec![x("ann@x")]));
        assert_eq!(
            left_out(&listed, &["@cy:hs".into(), "1".into(), "3".into()], read),
            Ok(vec![m("@cy:hs"), m("@bob:hs")])
        );
        assert_eq!(left_out(&listed, &["1,2".into()], read), Ok(vec![m("@bob:hs"), x("ann@x")]));
        assert_eq!(left_out(&listed, &[], read), Ok(vec![]));
        let err = left_out(&listed, &["4".into(), "zed@x".into(), "0".into(), "1".into()], read).unwrap_err();
        assert!(err.contains("4, zed@x, 0") && err.contains("1 to 3"), "{err}");
    }

    #[test]
    fn a_choice_is_answered_until_it_expires_and_a_new_one_replaces_it() {
        let (bob, ann) = (m("@bob:hs"), x("ann@x"));
        let t0 = Instant::now();
        let mut menus = Menus::default();
        menus.offer(&bob, Menu::SmsNumber { target: "Erika".into(), count: 2 }, t0);
        assert_eq!(menus.get(&bob, t0), Some(&Menu::SmsNumber { target: "Erika".into(), count: 2 }));
        assert_eq!(menus.get(&ann, t0), None, "one person's choice is theirs");
        assert_eq!(menus.take_start_chat(&bob, t0), None, "an SMS choice is not a room to confirm");
        assert!(menus.get(&bob, t0).is_some(), "and it stays");
        menus.offer(&bob, Menu::StartChat { group: "team".into(), participants: vec![ann.clone()] }, t0);
        assert_eq!(menus.take_start_chat(&bob, t0 + Duration::from_secs(5)), Some(("team".into(), vec![ann.clone()])));
        assert_eq!(menus.take_start_chat(&bob, t0), None, "confirmed once");
        menus.offer(&ann, Menu::StartChat { group: "t".into(), participants: vec![] }, t0);
        assert_eq!(menus.take_start_chat(&ann, t0 + MENU_TTL), None, "expired");
    }

    #[test]
    fn bare_choices() {
        assert_eq!(bare_choice(" 2 "), Some(2));
        assert_eq!(bare_choice("12"), Some(12));
        assert_eq!(bare_choice("2a"), None);
        assert_eq!(bare_choice("+49176"), None);
        assert_eq!(bare_choice("01761234"), None);
        assert_eq!(bare_choice(""), None);
    }
}
