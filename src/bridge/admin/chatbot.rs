//! `chatbot`: what admins see and do of the AI assistant: its use per person (for the budgets
//! and the bill), and forgetting every conversation at once.

use std::fmt::Write as _;

use super::Answer;
use crate::bridge::Bridge;
use crate::commands::admin::ChatbotCommand;
use crate::core::refusal::Refusal;

impl Bridge {
    pub(super) async fn chatbot_command(&self, action: ChatbotCommand) -> Answer {
        let Some(bot) = self.chatbot.get() else {
            return Ok(Err(Refusal::bad_request(
                "The AI assistant is not set up (no chatbot: section in the config).",
            )));
        };
        Ok(Ok(match action {
            ChatbotCommand::Usage { days } => {
                let usage = self.store.chatbot_usage(u32::from(days)).await?;
                let period = if days == 1 { "today (UTC)".to_owned() } else { format!("the last {days} days (UTC)") };
                if usage.is_empty() {
                    format!("Nobody used the AI assistant {period}.")
                } else {
                    let mut out = format!("AI assistant use {period}:\n");
                    let (mut tokens, mut images) = (0, 0);
                    for u in &usage {
                        let _ = writeln!(
                            out,
                            "{}: {} messages, {} tokens, {} images",
                            u.party, u.messages, u.tokens, u.images
                        );
                        tokens += u.tokens;
                        images += u.images;
                    }
                    let _ = write!(out, "Together: {tokens} tokens, {images} images");
                    if let Some(total) = bot.settings.limits.daily_tokens_total {
                        let _ = write!(out, " (daily budget for everyone: {total} tokens)");
                    }
                    out
                }
            }
            ChatbotCommand::ClearAll => {
                let forgotten = self.store.chatbot_clear_all().await?;
                tracing::info!(forgotten, "chatbot: every context cleared by an admin");
                format!("OK: every conversation with the AI assistant is forgotten ({forgotten} turns).")
            }
        }))
    }
}
