//! Who a remote party may speak for. A MUC names the real address of each occupant on its own
//! say-so; the bridge believes it only where the MUC's operator also runs that address's domain,
//! or where the MUC is on a server the bridge serves (which sees real addresses through
//! authenticated connections). Anything else is a nick, never a person's ghost.

/// Whether `muc_domain` is `domain` or one of its subdomains (`conference.example.org` is under
/// `example.org`): the same DNS owner runs both.
pub fn is_under(muc_domain: &str, domain: &str) -> bool {
    let (m, d) = (muc_domain.to_ascii_lowercase(), domain.to_ascii_lowercase());
    !d.is_empty() && (m == d || m.strip_suffix(&d).is_some_and(|rest| rest.ends_with('.')))
}

/// Whether a MUC on `muc_domain` may name `real_domain`'s users as its occupants.
/// `served` says whether a domain is one whose XMPP server the bridge serves.
pub fn muc_vouches_for(muc_domain: &str, real_domain: &str, served: impl Fn(&str) -> bool) -> bool {
    is_under(muc_domain, real_domain) || parents(muc_domain).any(served)
}

/// A domain and each of its parent domains (`a.b.c`, `b.c`, `c`).
pub fn parents(domain: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(Some(domain), |d| d.split_once('.').map(|(_, rest)| rest)).filter(|d| !d.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_muc_speaks_for_its_own_domain_and_its_parents() {
        let served = |d: &str| d == "corp.example";
        assert!(muc_vouches_for("conference.evil.org", "evil.org", served));
        assert!(muc_vouches_for("evil.org", "evil.org", served));
        // The attack: a MUC elsewhere claims a company address.
        assert!(!muc_vouches_for("conference.evil.org", "corp.example", served));
        assert!(!muc_vouches_for("evil.org", "conference.evil.org", served));
        // Look-alike suffixes are not subdomains.
        assert!(!muc_vouches_for("conference.notcorp.example", "corp.example", served));
        assert!(!muc_vouches_for("xcorp.example", "corp.example", served));
        // The company's own MUC service is trusted for anyone (it saw them authenticated).
        assert!(muc_vouches_for("conference.corp.example", "partner.org", served));
        assert!(muc_vouches_for("CONFERENCE.evil.org", "Evil.Org", served));
    }
}
