//! `contacts import` and `contacts list`: contacts for missed-call notices from vCard or CSV
//! files an admin uploads to the control room (or gives in the XMPP form).

use std::sync::Arc;

use super::{AdminInput, Answer};
use crate::bridge::Bridge;
use crate::commands::admin::ContactsCommand;
use crate::contacts::import::{Format, MAX_IMPORT_BYTES};
use crate::core::action::Action;
use crate::core::ids::MatrixUserId;
use crate::core::inbound::{FileRef, MatrixIn};
use crate::core::refusal::Refusal;
use crate::core::watch::Party;
use crate::store::ContactImport;

/// How many recent control-room uploads are remembered.
const UPLOADS_KEPT: usize = 32;

impl Bridge {
    /// An admin posted a file in the control room: remember it for `contacts import`.
    pub(in crate::bridge) fn remember_upload(&self, sender: &MatrixUserId, file: FileRef) {
        if let Ok(mut u) = self.uploads.lock() {
            u.push_back((sender.clone(), file));
            while u.len() > UPLOADS_KEPT {
                u.pop_front();
            }
        }
    }

    /// The answer to a file posted in the control room.
    pub(in crate::bridge) fn control_room_upload(&self, sender: &MatrixUserId, event_id: &str) -> Option<Action> {
        let room = self.control_room()?;
        let body = if self.is_admin(&Party::Matrix(sender.clone())) {
            "File received. To import its contacts, send `contacts import` (or answer the file with it).".to_owned()
        } else {
            format!("{sender}: only the bridge's admins can run commands here.")
        };
        Some(Action::MatrixNotice { room, html: Some(super::as_html(&body)), body, reply_to: Some(event_id.into()) })
    }

    /// The file a `contacts import` means: the one it answers, else the admin's last upload.
    async fn file_to_import(&self, who: &Party, input: &AdminInput) -> Result<FileRef, Refusal> {
        let Party::Matrix(user) = who else {
            return Err(Refusal::bad_request("Give the file's content in the form (field 'content')."));
        };
        let uploads: Vec<(MatrixUserId, FileRef)> =
            self.uploads.lock().map(|u| u.iter().cloned().collect()).unwrap_or_default();
        if let Some(answered) = &input.reply_to {
            if let Some((_, f)) = uploads.iter().find(|(_, f)| &f.event_id == answered) {
                return Ok(f.clone());
            }
            let room = self.control_room().ok_or_else(|| Refusal::busy("The control room is not ready yet."))?;
            return match self.matrix.room_event(&room, answered).await {
                Ok(Some(MatrixIn::File { file: f, .. })) => Ok(f),
                Ok(_) => Err(Refusal::bad_request("The message you answered is not a file.")),
                Err(e) => Err(Refusal::internal(format!("Cannot read the message you answered: {e}"))),
            };
        }
        uploads.iter().rev().find(|(u, _)| u == user).map(|(_, f)| f.clone()).ok_or_else(|| {
            Refusal::bad_request(
                "Upload a vCard (.vcf) or CSV file to this room first, then send `contacts import` (or answer the file with it).",
            )
        })
    }

    async fn fetch_file(&self, file: &FileRef) -> Result<String, Refusal> {
        let too_big = |n: u64| {
            Refusal::policy(format!(
                "{} is {n} bytes; the limit for contact files is {MAX_IMPORT_BYTES} bytes.",
                file.name
            ))
        };
        if let Some(size) = file.size
            && size > MAX_IMPORT_BYTES as u64
        {
            return Err(too_big(size));
        }
        let (bytes, _) = self
            .matrix
            .download(&file.mxc)
            .await
            .map_err(|e| Refusal::internal(format!("Cannot download {}: {e}", file.name)))?;
        if bytes.len() > MAX_IMPORT_BYTES {
            return Err(too_big(bytes.len() as u64));
        }
        String::from_utf8(bytes)
            .map_err(|_| Refusal::bad_request(format!("{} is not UTF-8 text (a vCard or CSV file).", file.name)))
    }

    pub(super) async fn contacts_command(
        self: &Arc<Self>,
        who: &Party,
        action: ContactsCommand,
        input: &AdminInput,
    ) -> Answer {
        let calls = match self.calls_module() {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        match action {
            ContactsCommand::List => {
                let imports = self.store.contact_imports().await?;
                let mut lines = vec![format!("Contacts in use: {}.", calls.contact_count())];
                if imports.is_empty() {
                    lines.push("No imported files (only the config's missed_calls.contacts.files).".into());
                } else {
                    lines.push("| file | format | contacts |".into());
                    for i in imports {
                        lines.push(format!("| {} | {} | {} |", i.name, i.format, i.contacts));
                    }
                }
                Ok(Ok(lines.join("\n")))
            }
            ContactsCommand::Import => {
                let (name, mimetype, content) = match &input.file {
                    Some((name, content)) => (name.clone(), None, content.clone()),
                    None => {
                        let file = match self.file_to_import(who, input).await {
                            Ok(f) => f,
                            Err(e) => return Ok(Err(e)),
                        };
                        match self.fetch_file(&file).await {
                            Ok(text) => (file.name.clone(), file.mimetype.clone(), text),
                            Err(e) => return Ok(Err(e)),
                        }
                    }
                };
                if content.len() > MAX_IMPORT_BYTES {
                    return Ok(Err(Refusal::bad_request(format!(
                        "The file is larger than the limit of {MAX_IMPORT_BYTES} bytes."
                    ))));
                }
                let format = Format::detect(&name, mimetype.as_deref(), &content);
                let report = match calls.read_contacts(&content, format) {
                    Ok(r) => r,
                    Err(e) => return Ok(Err(Refusal::bad_request(format!("{name} cannot be read: {e}")))),
                };
                if report.contacts.is_empty() {
                    let mut text = format!("{name} has no contact with a phone number; nothing was imported.");
                    for p in report.problems.iter().take(20) {
                        text.push_str(&format!("\n- {p}"));
                    }
                    return Ok(Err(Refusal::bad_request(text)));
                }
                let n = report.contacts.len();
                let import = ContactImport {
                    name: name.clone(),
                    format: format.as_str().to_owned(),
                    content,
                    contacts: i64::try_from(n).unwrap_or(i64::MAX),
                };
                self.store.save_contact_import(&import, who).await?;
                calls.refresh(true).await?;
                let mut lines = vec![format!(
                    "OK: imported {n} contacts from {name} ({}); {} problems. Contacts in use: {}.",
                    format.as_str(),
                    report.problems.len(),
                    calls.contact_count()
                )];
                for p in report.problems.iter().take(20) {
                    lines.push(format!("- {p}"));
                }
                if report.problems.len() > 20 {
                    lines.push(format!("- … and {} more", report.problems.len() - 20));
                }
                Ok(Ok(lines.join("\n")))
            }
        }
    }
}
