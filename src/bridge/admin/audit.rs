//! `audit`: the last admin commands (refused attempts too), who ran them and how they ended.

use super::Answer;
use crate::bridge::Bridge;

impl Bridge {
    pub(super) async fn audit_command(&self, count: u16) -> Answer {
        let entries = self.store.audit_log(i64::from(count)).await?;
        Ok(Ok(if entries.is_empty() {
            "The audit log is empty.".into()
        } else {
            let mut lines = vec![format!("The last {} admin commands, newest first:", entries.len())];
            lines.push("| when (UTC) | who | command | result |".into());
            for (at, who, command, ok) in entries {
                let when = chrono::DateTime::from_timestamp_millis(at)
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_else(|| at.to_string());
                let one_line = |s: &str| s.replace(['\n', '|'], " ");
                lines.push(format!(
                    "| {when} | {} | {} | {} |",
                    one_line(&who),
                    one_line(&command),
                    if ok { "done" } else { "refused or failed" }
                ));
            }
            lines.join("\n")
        }))
    }
}
