//! `reload`: read the config file again and apply what can change without a restart.

use std::sync::Arc;

use crate::bridge::Bridge;
use crate::core::refusal::Refusal;

impl Bridge {
    /// `reload`: read the config file again; apply what can change while running and say what
    /// needs a restart. Connections stay up.
    pub(super) async fn reload(self: &Arc<Self>) -> Result<String, Refusal> {
        let not_reloaded = |e: &dyn std::fmt::Display| {
            Refusal::bad_request(format!("The config was not reloaded, nothing changed: {e}"))
        };
        let old = self.current_config();
        let mut new = crate::config::Config::load(&old.source).map_err(|e| not_reloaded(&e))?;
        // The same bar as at start-up: a weak or placeholder secret is not taken in.
        new.check_secrets().map_err(|e| not_reloaded(&e))?;
        let differs = crate::config::differs;
        let mut restart = vec![];
        for (key, changed) in [
            ("homeserver", differs(&old.homeserver, &new.homeserver)),
            ("appservice", differs(&old.appservice, &new.appservice)),
            ("xmpp", differs(&old.xmpp, &new.xmpp)),
            ("database", !old.database_overridden && differs(&old.database, &new.database)),
            ("logging", differs(&old.logging, &new.logging)),
            ("admins.control_room", old.admins.control_room != new.admins.control_room),
            // The registration claims the aliases: a new prefix needs a new registration too.
            ("rooms.alias_prefix", old.rooms.alias_prefix != new.rooms.alias_prefix),
            ("limits.max_transaction_bytes", old.limits.max_transaction_bytes != new.limits.max_transaction_bytes),
            // The Matrix client and the SMS gateway are set up once, at start.
            ("links", differs(&old.links, &new.links)),
            ("sms", differs(&old.sms, &new.sms)),
            // The chatbot's client and its address (claimed by the registration) are set at
            // start. (A changed `api_key` itself is not seen: its debug form hides it.)
            ("chatbot", differs(&old.chatbot, &new.chatbot)),
        ] {
            if changed {
                restart.push(key.to_owned());
            }
        }
        // What only a restart changes keeps its running value.
        new.database = old.database.clone();
        new.database_overridden = old.database_overridden;
        let mut applied = vec![];
        for (key, changed) in [
            ("admins", differs(&(&old.admins.matrix, &old.admins.xmpp), &(&new.admins.matrix, &new.admins.xmpp))),
            ("admins.command_prefix", old.admins.command_prefix != new.admins.command_prefix),
            ("limits.max_message_bytes", old.limits.max_message_bytes() != new.limits.max_message_bytes()),
            ("limits.matrix_event_bytes", old.limits.matrix_event_bytes != new.limits.matrix_event_bytes),
            ("limits.xmpp_stanza_bytes", old.limits.xmpp_stanza_bytes != new.limits.xmpp_stanza_bytes),
            ("rooms", differs(&old.rooms, &new.rooms)),
            ("missed_calls", differs(&old.missed_calls, &new.missed_calls)),
            // Read when people choose, so a new list applies to the next choice.
            ("notifications", differs(&old.notifications, &new.notifications)),
        ] {
            if changed {
                applied.push(key.to_owned());
            }
        }
        match (self.calls.get(), &new.missed_calls) {
            (Some(calls), _) => {
                let more = calls.reload(new.missed_calls_settings().as_ref()).await.map_err(|e| {
                    Refusal::bad_request(format!("The config was not reloaded, nothing changed: {e:#}"))
                })?;
                restart.extend(more);
            }
            (None, Some(_)) => restart.push("missed_calls (the module starts at the next restart)".into()),
            (None, None) => {}
        }
        self.set_current_config(new);
        tracing::info!(file = %old.source.display(), ?applied, ?restart, "config reloaded");
        let mut text = format!("OK: reloaded {}.", old.source.display());
        text.push_str(&format!(
            "\nApplied: {}.",
            if applied.is_empty() { "nothing had changed".to_owned() } else { applied.join(", ") }
        ));
        if !restart.is_empty() {
            text.push_str(&format!("\nChanged, but needs a restart: {}.", restart.join(", ")));
        }
        Ok(text)
    }
}
