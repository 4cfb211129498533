//! `permissions`: what admins allow people (SMS, the chatbot, chatting from outside the served
//! servers).

use super::Answer;
use crate::bridge::Bridge;
use crate::commands::admin::PermissionsCommand;
use crate::core::refusal::Refusal;
use crate::core::watch::Party;

impl Bridge {
    pub(super) async fn permissions_command(&self, who: &Party, action: PermissionsCommand) -> Answer {
        match action {
            PermissionsCommand::Grant { user, permission } => self.grant(who, user, permission).await,
            PermissionsCommand::Revoke { user, permission } => self.revoke(user, permission).await,
            PermissionsCommand::List => self.permission_list().await,
        }
    }

    /// `permissions grant`.
    async fn grant(&self, who: &Party, user: String, permission: crate::commands::admin::Permission) -> Answer {
        Ok(Ok({
            let target = match Party::parse_contact(&user, &self.map) {
                Ok(t) => t,
                Err(e) => return Ok(Err(Refusal::bad_request(format!("Cannot grant to {user}: {e}")))),
            };
            self.store.grant(&target, permission.as_str(), who).await?;
            format!("OK: {target} may use {}.", permission.as_str())
        }))
    }

    /// `permissions revoke`.
    async fn revoke(&self, user: String, permission: crate::commands::admin::Permission) -> Answer {
        Ok(Ok({
            let target = match Party::parse_contact(&user, &self.map) {
                Ok(t) => t,
                Err(e) => return Ok(Err(Refusal::bad_request(format!("Cannot revoke from {user}: {e}")))),
            };
            if self.store.revoke(&target, permission.as_str()).await? {
                format!("OK: {target} may no longer use {}.", permission.as_str())
            } else {
                format!("{target} did not have {}.", permission.as_str())
            }
        }))
    }

    /// `permissions list`: every grant.
    async fn permission_list(&self) -> Answer {
        Ok(Ok({
            let grants = self.store.permissions().await?;
            if grants.is_empty() {
                "No permissions granted.".into()
            } else {
                let lines: Vec<_> = grants.iter().map(|(p, perm)| format!("- {p}: {perm}")).collect();
                format!("Permissions:\n{}", lines.join("\n"))
            }
        }))
    }
}
