//! The control room: the Matrix room where admins run admin commands, found or created at
//! start; answers are replies to the commands, with lists and tables as HTML.

use std::sync::Arc;

use super::AdminInput;
use crate::bridge::Bridge;
use crate::core::action::Action;
use crate::core::ids::{MatrixUserId, RoomId};
use crate::core::watch::Party;
use crate::matrix::client::MatrixError;

impl Bridge {
    pub fn control_room(&self) -> Option<RoomId> {
        self.control.lock().ok().and_then(|c| c.clone())
    }

    /// At start: find the control room by its alias, or create it and invite the admins.
    pub async fn ensure_control_room(&self) -> Result<RoomId, MatrixError> {
        let alias = format!("#{}:{}", self.config.admins.control_room, self.map.homeserver);
        let room = match self.matrix.resolve_alias(&alias).await? {
            // Only a room the bot made is trusted with the admins' traffic: an alias someone
            // else claimed (before the registration reserved it) is refused, not joined.
            Some(room) => {
                self.matrix.join(&room, &self.map.bot()).await?;
                match self.matrix.room_origin(&room).await? {
                    Some(o) if o.creator == self.map.bot().to_string() => room,
                    _ => {
                        return Err(MatrixError::Protocol(format!(
                            "{alias} points to {room}, a room the bridge did not create; remove the alias or choose another admins.control_room"
                        )));
                    }
                }
            }
            None => {
                let admins: Vec<MatrixUserId> = self
                    .config
                    .admins
                    .matrix
                    .iter()
                    .filter(|p| !p.contains('*'))
                    .filter_map(|p| MatrixUserId::parse(p).ok())
                    .collect();
                let room = self
                    .matrix
                    .create_group_room(
                        "ucbridge control room",
                        &self.config.admins.control_room,
                        false,
                        &[],
                        &[],
                        "control",
                    )
                    .await?;
                tracing::info!(%room, alias, "created the control room");
                // One by one: an admin without an account yet must not stop the others (they
                // can ask the bot for an invitation later: `control-room`).
                for admin in admins {
                    if let Err(e) = self.matrix.invite(&room, &self.map.bot(), &admin).await {
                        tracing::info!(%admin, error = %e, "cannot invite an admin to the control room");
                    }
                }
                room
            }
        };
        if let Ok(mut c) = self.control.lock() {
            *c = Some(room.clone());
        }
        Ok(room)
    }

    /// A message in the control room: an admin's command, or a refusal; the answer is a reply
    /// to the command, with lists as HTML.
    pub(in crate::bridge) async fn control_room_message(
        self: &Arc<Self>,
        sender: &MatrixUserId,
        body: &str,
        event_id: &str,
        reply_to: Option<String>,
    ) -> Option<Action> {
        let room = self.control_room()?;
        let who = Party::Matrix(sender.clone());
        let answer = if self.is_admin(&who) {
            self.run_admin_command(&who, body, &AdminInput { reply_to, file: None }).await
        } else {
            tracing::info!(%sender, command = body, "non-admin tried an admin command");
            let refusal = format!("{sender}: only the bridge's admins can run commands here.");
            if let Err(e) = self.store.audit(&who, body, false, &refusal).await {
                tracing::warn!(error = %e, "cannot write the audit log");
            }
            refusal
        };
        let html = Some(as_html(&answer));
        Some(Action::MatrixNotice { room, body: answer, html, reply_to: Some(event_id.into()) })
    }
}

/// An answer as HTML: lines starting with `- ` become a list, lines starting with `| ` a table
/// (cells split at ` | `, the first row the header), others paragraphs; all escaped.
pub fn as_html(text: &str) -> String {
    let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    let mut out = String::new();
    let mut in_list = false;
    let mut table: Option<usize> = None;
    for line in text.lines() {
        if let Some(row) = line.strip_prefix("| ") {
            if in_list {
                out.push_str("</ul>");
                in_list = false;
            }
            let cells: Vec<&str> = row.trim_end_matches(" |").split(" | ").collect();
            let tag = if table.is_none() { "th" } else { "td" };
            if table.is_none() {
                out.push_str("<table>");
            }
            table = Some(table.unwrap_or(0) + 1);
            out.push_str("<tr>");
            for c in cells {
                out.push_str(&format!("<{tag}>{}</{tag}>", escape(c.trim())));
            }
            out.push_str("</tr>");
            continue;
        }
        if table.take().is_some() {
            out.push_str("</table>");
        }
        match line.strip_prefix("- ") {
            Some(item) => {
                if !in_list {
                    out.push_str("<ul>");
                    in_list = true;
                }
                out.push_str(&format!("<li>{}</li>", escape(item)));
            }
            None => {
                if in_list {
                    out.push_str("</ul>");
                    in_list = false;
                }
                out.push_str(&format!("<p>{}</p>", escape(line)));
            }
        }
    }
    if in_list {
        out.push_str("</ul>");
    }
    if table.is_some() {
        out.push_str("</table>");
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn answers_become_escaped_html() {
        assert_eq!(
            super::as_html("Permissions:\n- <a>: sms\n- b & c: chat\ndone"),
            "<p>Permissions:</p><ul><li>&lt;a&gt;: sms</li><li>b &amp; c: chat</li></ul><p>done</p>"
        );
        assert_eq!(
            super::as_html("Options:\n| name | value |\n| a<b | on |\nend"),
            "<p>Options:</p><table><tr><th>name</th><th>value</th></tr><tr><td>a&lt;b</td><td>on</td></tr></table><p>end</p>"
        );
    }
}
