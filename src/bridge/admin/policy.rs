//! `missed-calls policy` and `missed-calls options`: the missed-call settings admins change at
//! run time (stored; the config's values apply where none is).

use std::sync::Arc;

use super::Answer;
use crate::bridge::Bridge;
use crate::commands::admin::{MissedCallsCommand, OptionsCommand};
use crate::core::refusal::Refusal;
use crate::core::watch::Party;

impl Bridge {
    pub(super) async fn missed_calls_command(self: &Arc<Self>, who: &Party, action: MissedCallsCommand) -> Answer {
        let calls = match self.calls_module() {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        let set = |name: &str, value: Option<&str>| {
            let calls = calls.clone();
            let (name, value) = (name.to_owned(), value.map(str::to_owned));
            let bridge = self.clone();
            let who = who.clone();
            async move {
                bridge.store.set_call_setting(&name, value.as_deref(), &who).await?;
                calls.refresh(false).await
            }
        };
        let answer = match action {
            MissedCallsCommand::Policy { policy: None } => {
                let stored = self.store.call_settings().await?;
                let row = calls.options(&stored).into_iter().find(|r| r.name == "policy");
                match row {
                    Some(r) => format!(
                        "Policy: {}{} (none, first, last or all).",
                        r.value,
                        r.config.map(|c| format!(", set by an admin; the config says {c}")).unwrap_or_default()
                    ),
                    None => "Policy: unknown.".into(),
                }
            }
            MissedCallsCommand::Policy { policy: Some(p) } => {
                set("policy", Some(p.as_str())).await?;
                format!("OK: the policy is now {}.", p.as_str())
            }
            MissedCallsCommand::Options { action: None | Some(OptionsCommand::Show) } => {
                let stored = self.store.call_settings().await?;
                let mut lines =
                    vec!["Missed-call options:".to_owned(), "| option | value | config | meaning |".to_owned()];
                for r in calls.options(&stored) {
                    let config = r.config.unwrap_or_else(|| "(same)".into());
                    lines.push(format!("| {} | {} | {config} | {} |", r.name, r.value, r.about));
                }
                lines.push(
                    "Set one with `missed-calls options set NAME VALUE`, undo with `missed-calls options reset NAME`."
                        .into(),
                );
                lines.join("\n")
            }
            MissedCallsCommand::Options { action: Some(OptionsCommand::Set { name, value }) } => {
                if let Err(e) = calls.check_option(&name, &value) {
                    return Ok(Err(Refusal::bad_request(e.to_string())));
                }
                set(&name, Some(value.trim())).await?;
                let now = crate::calls::settings::value(&name, &calls.live().rules, &calls.live().render);
                format!("OK: {name} is now {}.", now.unwrap_or(value))
            }
            MissedCallsCommand::Options { action: Some(OptionsCommand::Reset { name }) } => {
                let known = name == "policy" || crate::calls::settings::OPTIONS.iter().any(|(n, _)| *n == name);
                if !known {
                    // The same message as for `set`: it lists the options.
                    return Ok(Err(Refusal::bad_request(
                        calls.check_option(&name, "").err().map(|e| e.to_string()).unwrap_or_default(),
                    )));
                }
                set(&name, None).await?;
                let now = crate::calls::settings::value(&name, &calls.live().rules, &calls.live().render);
                format!("OK: {name} is back to the config's value, {}.", now.unwrap_or_default())
            }
        };
        Ok(Ok(answer))
    }
}
