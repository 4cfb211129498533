//! XMPP ad-hoc commands (XEP-0050), run: the rights checked (a refused admin command is
//! audited), the form step answered, a submitted form parsed by its command tree and run as
//! the same command typed would be. The forms and stanzas are `xmpp::adhoc`'s.

use std::sync::Arc;

use super::AdminInput;
use crate::bridge::Bridge;
use crate::commands::{admin, user};
use crate::core::refusal::Refusal;
use crate::core::watch::Party;
use crate::core::xmpp_in::{AdhocCommand, AdhocStep, Submission};
use crate::xmpp::adhoc::CommandAnswer;
use crate::xmpp::reply::{Answer, Envelope};

impl Bridge {
    /// An ad-hoc command to the component; `reply` answers it.
    pub async fn adhoc_command(self: &Arc<Self>, command: AdhocCommand, reply: Option<&Envelope>) {
        let answer = self.run_adhoc(command).await.unwrap_or_else(Answer::Refused);
        self.answer(reply, answer).await;
    }

    async fn run_adhoc(self: &Arc<Self>, command: AdhocCommand) -> Result<Answer, Refusal> {
        let sender = command.sender;
        let who = Party::Xmpp(sender.clone());
        let Some(admin_node) = command.admin else {
            return Err(Refusal::not_found(format!("There is no command '{}'.", command.node)));
        };
        if admin_node && !self.is_admin(&who) {
            let text = "Only the bridge's admins can run admin commands.";
            // Audited like a refused command line: what was tried (the form's line, else the node).
            if let Err(e) = self.store.audit(&who, &command.attempted, false, text).await {
                tracing::warn!(error = %e, "cannot write the audit log");
            }
            return Err(Refusal::forbidden(text));
        }
        let submission = match command.step {
            AdhocStep::Cancel => return Ok(Answer::Command(CommandAnswer::Canceled)),
            AdhocStep::Form => return Ok(Answer::Command(CommandAnswer::Form)),
            AdhocStep::Submitted(submission) => submission.map_err(Refusal::bad_request)?,
        };
        let answer = match submission {
            // Admin commands answer their mistakes, audited, as in the control room.
            Submission::Line(line) => Ok(self.run_admin_command(&who, &line, &AdminInput::default()).await),
            Submission::Admin { words, line, file } => {
                let input = AdminInput { reply_to: None, file };
                Ok(self.run_admin(&who, &line, admin::parse_words(&words), &input).await)
            }
            Submission::User { words } => {
                let command = user::parse_words(&words).map_err(Refusal::bad_request)?;
                self.xmpp_adhoc(&sender, command).await
            }
        };
        match answer {
            Ok(text) => Ok(Answer::Command(CommandAnswer::Completed(text))),
            Err(e) => {
                tracing::warn!(from = %sender, error = %e, "ad-hoc command failed");
                Err(Refusal::internal("The bridge could not run the command."))
            }
        }
    }
}
