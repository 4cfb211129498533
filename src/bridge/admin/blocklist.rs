//! `block`: numbers whose calls are never reported, and extensions never told.

use std::sync::Arc;

use super::Answer;
use crate::bridge::Bridge;
use crate::commands::admin::BlockCommand;
use crate::core::refusal::Refusal;
use crate::core::watch::Party;

impl Bridge {
    pub(super) async fn block_command(self: &Arc<Self>, who: &Party, action: BlockCommand) -> Answer {
        let calls = match self.calls_module() {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        let entry = |words: &[String], extension: bool| -> Result<(&'static str, String), Refusal> {
            let text = words.join(" ");
            if extension {
                let e = text.trim();
                if e.is_empty() || e.contains(char::is_whitespace) || e.len() > 32 {
                    return Err(Refusal::bad_request(format!("'{text}' is not an extension.")));
                }
                return Ok(("extension", e.to_owned()));
            }
            let key = calls.block_key(&text);
            if key.trim_start_matches('+').is_empty() || key.len() > 32 {
                return Err(Refusal::bad_request(format!("'{text}' is not a phone number.")));
            }
            Ok(("number", key))
        };
        let answer = match action {
            BlockCommand::Add { number, extension } => {
                let (kind, key) = match entry(&number, extension) {
                    Ok(e) => e,
                    Err(e) => return Ok(Err(e)),
                };
                if !self.store.block(kind, &key, who).await? {
                    return Ok(Err(Refusal::bad_request(format!("{key} is on the block list already."))));
                }
                calls.refresh(false).await?;
                match kind {
                    "extension" => format!("OK: the extension {key} is never told about missed calls."),
                    _ => format!("OK: missed calls from {key} are not reported any more."),
                }
            }
            BlockCommand::Remove { number, extension } => {
                let (kind, key) = match entry(&number, extension) {
                    Ok(e) => e,
                    Err(e) => return Ok(Err(e)),
                };
                if !self.store.unblock(kind, &key).await? {
                    let in_config = calls.config_block_list();
                    let from_config = in_config.numbers.iter().any(|n| calls.block_key(n) == key)
                        || in_config.extensions.iter().any(|e| e.as_str() == key);
                    return Ok(Err(Refusal::bad_request(if from_config {
                        format!("{key} is on the config's block list (missed_calls.rules.block_list); change it there.")
                    } else {
                        format!("{key} is not on the block list.")
                    })));
                }
                calls.refresh(false).await?;
                format!("OK: {key} is off the block list.")
            }
            BlockCommand::List => {
                let stored = self.store.block_list().await?;
                let config = calls.config_block_list();
                if stored.is_empty() && config.numbers.is_empty() && config.extensions.is_empty() {
                    return Ok(Ok("The block list is empty.".into()));
                }
                let mut lines = vec!["Block list:".to_owned(), "| entry | kind | from |".to_owned()];
                for b in stored {
                    lines.push(format!("| {} | {} | {} |", b.entry, b.kind, b.added_by));
                }
                for n in &config.numbers {
                    lines.push(format!("| {n} | number | config |"));
                }
                for e in &config.extensions {
                    lines.push(format!("| {e} | extension | config |"));
                }
                lines.join("\n")
            }
        };
        Ok(Ok(answer))
    }
}
