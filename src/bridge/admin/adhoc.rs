//! XMPP ad-hoc commands (XEP-0050), run: the rights checked (a refused admin command is
//! audited), the form step answered, a submitted form parsed by its command tree and run as
//! the same command typed would be. The forms and stanzas are `xmpp::adhoc`'s.

use std::sync::Arc;

use super::AdminInput;
use crate::bridge::Bridge;
use crate::commands::{admin, user};
use crate::core::refusal::RefusalKind;
use crate::core::watch::Party;
use crate::xmpp::adhoc::{Request, Submission};

impl Bridge {
    /// An `<iq type='set'><command/></iq>` to the component.
    pub async fn adhoc_command(self: &Arc<Self>, request: Request) {
        let Some(sender) = request.sender() else { return };
        let who = Party::Xmpp(sender.clone());
        let Some(admin_node) = request.is_admin_node() else {
            let text = format!("There is no command '{}'.", request.node());
            return self.xmpp.send_reply(request.error(RefusalKind::NotFound, &text)).await;
        };
        if admin_node && !self.is_admin(&who) {
            let text = "Only the bridge's admins can run admin commands.";
            // Audited like a refused command line: what was tried (the form's line, else the node).
            if let Err(e) = self.store.audit(&who, &request.attempted(), false, text).await {
                tracing::warn!(error = %e, "cannot write the audit log");
            }
            return self.xmpp.send_reply(request.error(RefusalKind::Forbidden, text)).await;
        }
        if let Some(reply) = request.first_step() {
            return self.xmpp.send_reply(reply).await;
        }
        let answer = match request.submission() {
            Err(mistake) => return self.xmpp.send_reply(request.error(RefusalKind::BadRequest, &mistake)).await,
            // Admin commands answer their mistakes, audited, as in the control room.
            Ok(Submission::Line(line)) => Ok(self.run_admin_command(&who, &line, &AdminInput::default()).await),
            Ok(Submission::Admin { words, line, file }) => {
                let input = AdminInput { reply_to: None, file };
                Ok(self.run_admin(&who, &line, admin::parse_words(&words), &input).await)
            }
            Ok(Submission::User { words }) => match user::parse_words(&words) {
                Ok(command) => self.xmpp_adhoc(&sender, command).await,
                Err(mistake) => return self.xmpp.send_reply(request.error(RefusalKind::BadRequest, &mistake)).await,
            },
        };
        match answer {
            Ok(text) => self.xmpp.send_reply(request.completed(&text)).await,
            Err(e) => {
                tracing::warn!(from = %sender, error = %e, "ad-hoc command failed");
                let text = "The bridge could not run the command.";
                self.xmpp.send_reply(request.error(RefusalKind::Internal, text)).await
            }
        }
    }
}
