//! `sms NUMBER-OR-CONTACT` and the answer to the choice of numbers it offers.

use crate::bridge::Bridge;
use crate::core::action::Action;
use crate::core::menus::Menu;
use crate::core::watch::Party;
use crate::sms::{PERMISSION, Resolved};

impl Bridge {
    /// `sms NUMBER-OR-CONTACT`: open a conversation with a number.
    pub(crate) async fn sms_command(
        &self,
        caller: &Party,
        target: &str,
        actions: &mut Vec<Action>,
    ) -> crate::store::Result<String> {
        let Some(service) = self.sms() else { return Ok("SMS is not set up on this bridge.".into()) };
        if !self.store.has_permission(caller, PERMISSION).await? {
            return Ok(format!(
                "You may not send SMS. An admin of the bridge can allow it (permissions grant {caller} sms)."
            ));
        }
        let phone = match self.with_sms_contacts(service, |c| service.resolve(target, c)) {
            Ok(Resolved::Number(p)) => p,
            Ok(Resolved::Choice { target, name, numbers }) => {
                let list: Vec<String> = numbers.iter().enumerate().map(|(i, n)| format!("{}. {n}", i + 1)).collect();
                self.offer_menu(caller, Menu::SmsNumber { target: target.clone(), count: numbers.len() });
                return Ok(format!(
                    "{name} has {} mobile numbers:\n{}\nChoose one: answer with its number here (e.g. `2`), or send `sms {target} 2`.",
                    numbers.len(),
                    list.join("\n")
                ));
            }
            Err(e) => return Ok(e.to_string()),
        };
        let hello = format!("This is your SMS conversation with {phone}. What you write here goes out as SMS.");
        actions.push(self.sms_notice(caller, &phone, &hello));
        Ok(match caller {
            Party::Matrix(_) => {
                format!("OK: {} invites you to a chat; write there to send SMS to {phone}.", self.map.sms_ghost(&phone))
            }
            Party::Xmpp(_) => format!("OK: write to {} to send SMS to {phone}.", self.map.sms_jid(&phone)),
        })
    }

    /// A bare number sent as a command: the answer to the choice offered last.
    pub(crate) async fn menu_answer(
        &self,
        caller: &Party,
        n: usize,
        actions: &mut Vec<Action>,
    ) -> crate::store::Result<String> {
        match self.open_menu(caller) {
            Some(Menu::SmsNumber { target, .. }) => self.sms_command(caller, &format!("{target} {n}"), actions).await,
            Some(Menu::StartChat { group, .. }) => Ok(format!(
                "Send `confirm` to create the room for {group}, or `start-chat {group} --without {n}` to leave {n} out."
            )),
            None => Ok(
                "There is nothing to choose from: a number answers a choice the bridge offered (e.g. `sms NAME` with several mobile numbers), for 10 minutes."
                    .into(),
            ),
        }
    }
}
