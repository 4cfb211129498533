//! Who may pick up whose calls (`missed_calls.pickup_groups`), for pickup alerts: `everyone`
//! (every line owner may pick up every call), or groups of extensions whose members may pick up
//! each other's calls, as a PBX's pickup groups are set up.

use serde::Deserialize;

use super::event::Extension;

/// `missed_calls.pickup_groups`. The default: no groups, so nobody gets pickup alerts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Written")]
pub enum PickupGroups {
    /// Every line owner may pick up every call.
    Everyone,
    /// Lists of extensions; a member may pick up the calls of the others in their group.
    Groups(Vec<Vec<Extension>>),
    #[default]
    Nobody,
}

/// How the config file writes it: the word `everyone`, or a list of lists of extensions.
#[derive(Deserialize)]
#[serde(untagged)]
enum Written {
    Word(String),
    Groups(Vec<Vec<String>>),
}

impl TryFrom<Written> for PickupGroups {
    type Error = String;
    fn try_from(w: Written) -> Result<Self, String> {
        match w {
            Written::Word(w) if w.trim() == "everyone" => Ok(PickupGroups::Everyone),
            Written::Word(w) => {
                Err(format!("'{w}': write `everyone`, or groups of extensions like [[\"201\", \"202\"]]"))
            }
            Written::Groups(groups) => {
                if groups.iter().flatten().any(|e| e.trim().is_empty()) {
                    return Err("an extension in pickup_groups is empty".into());
                }
                Ok(PickupGroups::Groups(
                    groups.iter().map(|g| g.iter().map(|e| Extension::new(e.trim())).collect()).collect(),
                ))
            }
        }
    }
}

impl PickupGroups {
    /// May the owner of `mine` (their extensions) pick up a call ringing at `ringing`?
    pub fn may_pick_up(&self, mine: &[Extension], ringing: &Extension) -> bool {
        if mine.contains(ringing) {
            return false; // their own phone: nothing to pick up
        }
        match self {
            PickupGroups::Everyone => !mine.is_empty(),
            PickupGroups::Groups(groups) => {
                groups.iter().any(|g| g.contains(ringing) && mine.iter().any(|m| g.contains(m)))
            }
            PickupGroups::Nobody => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(e: &str) -> Extension {
        Extension::new(e)
    }

    #[test]
    fn pickup_groups_as_written() {
        let g: PickupGroups = yaml_serde::from_str("[[\"211\", \" 212 \"], [\"301\"]]").unwrap();
        assert_eq!(g, PickupGroups::Groups(vec![vec![ext("211"), ext("212")], vec![ext("301")]]));
        assert_eq!(yaml_serde::from_str::<PickupGroups>("everyone").unwrap(), PickupGroups::Everyone);
        assert!(yaml_serde::from_str::<PickupGroups>("anyone").unwrap_err().to_string().contains("everyone"));
        assert!(yaml_serde::from_str::<PickupGroups>("[[\"\"]]").is_err());
    }

    #[test]
    fn only_members_of_the_ringing_phones_group_may_pick_up() {
        let g = PickupGroups::Groups(vec![vec![ext("211"), ext("212")], vec![ext("213"), ext("214")]]);
        assert!(g.may_pick_up(&[ext("212")], &ext("211")));
        assert!(g.may_pick_up(&[ext("999"), ext("212")], &ext("211")), "one of their phones is in the group");
        assert!(!g.may_pick_up(&[ext("213")], &ext("211")), "another group");
        assert!(!g.may_pick_up(&[], &ext("211")), "no phone at all");
        assert!(!g.may_pick_up(&[ext("211")], &ext("211")), "their own phone");
        assert!(PickupGroups::Everyone.may_pick_up(&[ext("500")], &ext("211")));
        assert!(!PickupGroups::Everyone.may_pick_up(&[], &ext("211")), "a phone to pick up with");
        assert!(!PickupGroups::Nobody.may_pick_up(&[ext("212")], &ext("211")));
    }
}
