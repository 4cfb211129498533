//! Reaction sets: XMPP (XEP-0444) sends the full set of a person's reactions to a message each
//! time; Matrix has one `m.reaction` event per key, removed by redaction. The bridge keeps the
//! current set per (message, reactor) and turns one model into the other.

/// What changes from the set `current` to the set `wanted`: keys to add (in the order wanted
/// names them) and keys to remove (in the order current has them). Repeated keys count once;
/// empty keys are ignored.
pub fn changes(current: &[String], wanted: &[String]) -> (Vec<String>, Vec<String>) {
    let wanted = normalise(wanted);
    let current = normalise(current);
    let add = wanted.iter().filter(|k| !current.contains(k)).cloned().collect();
    let remove = current.iter().filter(|k| !wanted.contains(k)).cloned().collect();
    (add, remove)
}

/// A set of keys without repeats or empty keys, in first-seen order.
pub fn normalise(keys: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(keys.len());
    for k in keys {
        let k = k.trim();
        if !k.is_empty() && !out.iter().any(|o| o == k) {
            out.push(k.to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(keys: &[&str]) -> Vec<String> {
        keys.iter().map(|k| (*k).to_owned()).collect()
    }

    #[test]
    fn adds_and_removes_what_differs() {
        assert_eq!(changes(&v(&["👍", "😂"]), &v(&["😂", "🎉"])), (v(&["🎉"]), v(&["👍"])));
        assert_eq!(changes(&[], &v(&["👍"])), (v(&["👍"]), v(&[])));
        assert_eq!(changes(&v(&["👍"]), &[]), (v(&[]), v(&["👍"])));
        assert_eq!(changes(&v(&["👍"]), &v(&["👍"])), (v(&[]), v(&[])));
    }

    #[test]
    fn repeats_and_blanks_count_once_or_not_at_all() {
        assert_eq!(changes(&[], &v(&["👍", "👍", " ", ""])), (v(&["👍"]), v(&[])));
        assert_eq!(normalise(&v(&[" 👍 ", "👍", "❤️"])), v(&["👍", "❤️"]));
    }
}
