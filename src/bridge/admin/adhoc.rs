//! The admin and user commands as XMPP ad-hoc commands (XEP-0050): running a submitted form.

use std::sync::Arc;

use super::AdminInput;
use crate::bridge::Bridge;
use crate::core::ids::BareJid;
use crate::core::watch::Party;

impl Bridge {
    /// An admin command from XMPP (the `admin` ad-hoc command); the caller checked the rights.
    pub async fn xmpp_admin(self: &Arc<Self>, from: &BareJid, line: &str, file: Option<(String, String)>) -> String {
        self.run_admin_command(&Party::Xmpp(from.clone()), line, &AdminInput { reply_to: None, file }).await
    }
}
