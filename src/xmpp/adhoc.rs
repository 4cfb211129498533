//! The user commands as XMPP ad-hoc commands (XEP-0050) on the component, with data forms
//! (XEP-0004): listed through disco, one form step each, answered with a note. The forms map
//! onto the same command tree as the text commands, so both behave alike.

use std::sync::Arc;

use xmpp_parsers::data_forms::{DataForm, DataFormType, Field, FieldType, Option_};
use xmpp_parsers::disco::{DiscoItemsResult, Item};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::minidom::Element;
use xmpp_parsers::stanza::Stanza;

use crate::bridge::Bridge;
use crate::commands::user::{NotifyCommand, RoomCommand, UserCommand, When};
use crate::core::action::Refusal;
use crate::core::ids::BareJid;
use crate::xmpp::outbound;

pub const COMMANDS: &str = "http://jabber.org/protocol/commands";

/// The commands: node and name.
const LIST: [(&str, &str); 5] = [
    ("help", "Show the bridge's commands"),
    ("notify-add", "Tell me when a contact becomes available again or logs off"),
    ("notify-list", "List my notifications"),
    ("notify-cancel", "Stop notifying me about a contact"),
    ("room-create", "Start a group conversation with me as its moderator"),
];

fn text_field(var: &str, label: &str, required: bool) -> Field {
    Field { label: Some(label.to_owned()), required, ..Field::new(var, FieldType::TextSingle) }
}

/// The form a command asks for (empty: it runs at once).
fn form_fields(node: &str) -> Vec<Field> {
    match node {
        "notify-add" => vec![
            text_field("contact", "Contact (JID or Matrix ID)", true),
            Field {
                label: Some("When".to_owned()),
                options: ["both", "available", "offline"]
                    .into_iter()
                    .map(|v| Option_ { label: None, value: v.to_owned() })
                    .collect(),
                values: vec!["both".to_owned()],
                ..Field::new("when", FieldType::ListSingle)
            },
        ],
        "notify-cancel" => vec![text_field("contact", "Contact (JID or Matrix ID)", true)],
        "admin" => vec![text_field("command", "Command (e.g. status, rooms list, permissions grant USER sms)", true)],
        "room-create" => vec![
            text_field("alias", "Address (lower-case letters, digits, . _ -)", true),
            text_field("name", "Name", false),
            Field {
                label: Some("Anyone may join".to_owned()),
                ..Field::new("public", FieldType::Boolean).with_value("0")
            },
        ],
        _ => vec![],
    }
}

fn form_value(form: Option<&DataForm>, var: &str) -> Option<String> {
    form?.fields.iter().find(|f| f.var.as_deref() == Some(var))?.values.first().map(|v| v.trim().to_owned())
}

/// The command a submitted form stands for; `Err` says what is wrong with it.
fn command(node: &str, form: Option<&DataForm>) -> Result<UserCommand, String> {
    let value = |var: &str| form_value(form, var);
    let required =
        |var: &str| value(var).filter(|v| !v.is_empty()).ok_or_else(|| format!("The field '{var}' is required."));
    Ok(match node {
        "help" => UserCommand::Help,
        "notify-list" => UserCommand::Notify { action: NotifyCommand::List },
        "notify-add" => {
            let when = match value("when").as_deref() {
                None | Some("both") => When::Both,
                Some("available") => When::Available,
                Some("offline") => When::Offline,
                Some(other) => return Err(format!("'{other}' is not one of both, available, offline.")),
            };
            UserCommand::Notify { action: NotifyCommand::Add { contact: required("contact")?, when } }
        }
        "notify-cancel" => UserCommand::Notify { action: NotifyCommand::Cancel { contact: required("contact")? } },
        "room-create" => {
            let name = value("name").filter(|n| !n.is_empty()).map(|n| vec![n]).unwrap_or_default();
            let public = matches!(value("public").as_deref(), Some("1" | "true"));
            UserCommand::Room { action: RoomCommand::Create { alias: required("alias")?, name, public } }
        }
        other => return Err(format!("There is no command '{other}'.")),
    })
}

/// The admin command: one text field that takes any admin command line.
const ADMIN: (&str, &str) = ("admin", "Run an admin command (admins only)");

/// disco#items for the commands node; the admin command only for admins.
pub fn items(from: Jid, to: Jid, id: String, admin: bool) -> Stanza {
    let items = LIST
        .iter()
        .chain(admin.then_some(&ADMIN))
        .map(|(node, name)| Item { jid: from.clone(), node: Some((*node).to_owned()), name: Some((*name).to_owned()) })
        .collect();
    let result = DiscoItemsResult { node: Some(COMMANDS.to_owned()), items, rsm: None };
    let mut iq = Iq::from_result(id, Some(result));
    *iq.from_mut() = Some(from);
    *iq.to_mut() = Some(to);
    Stanza::Iq(iq)
}

fn command_reply(node: &str, session: &str, status: &str, body: Vec<Element>) -> Element {
    let name = |n: &str| xmpp_parsers::minidom::rxml::NcName::try_from(n).expect("a literal attribute name");
    let mut e = Element::builder("command", COMMANDS)
        .attr(name("node"), node)
        .attr(name("sessionid"), session)
        .attr(name("status"), status)
        .build();
    for child in body {
        e.append_child(child);
    }
    e
}

/// An `<iq type='set'><command/></iq>` to the component.
pub async fn on_command(bridge: &Arc<Bridge>, from: Jid, to: Jid, id: String, payload: Element) {
    let Some(sender) = BareJid::parse(from.to_bare().as_str()).ok() else { return };
    let node = payload.attr("node").unwrap_or_default().to_owned();
    let action = payload.attr("action").unwrap_or("execute");
    let session = payload.attr("sessionid").map(str::to_owned).unwrap_or_else(|| format!("ucb-{id}"));
    let error = |refusal, text: &str| outbound::iq_error(Some(to.clone()), from.clone(), id.clone(), refusal, text);
    let is_admin = bridge.is_admin(&crate::core::watch::Party::Xmpp(sender.clone()));
    if node == ADMIN.0 && !is_admin {
        let text = "Only the bridge's admins can run admin commands.";
        return bridge.xmpp.send_reply(error(Refusal::Forbidden, text)).await;
    }
    if !LIST.iter().chain([&ADMIN]).any(|(n, _)| *n == node) {
        return bridge.xmpp.send_reply(error(Refusal::NotFound, &format!("There is no command '{node}'."))).await;
    }
    let form = payload.get_child("x", xmpp_parsers::ns::DATA_FORMS).and_then(|x| DataForm::try_from(x.clone()).ok());
    let fields = form_fields(&node);
    let reply = if action == "cancel" {
        command_reply(&node, &session, "canceled", vec![])
    } else if form.is_none() && !fields.is_empty() {
        // First step: the form to fill in.
        let title = LIST.iter().find(|(n, _)| *n == node).map(|(_, t)| (*t).to_owned());
        let x = DataForm { type_: DataFormType::Form, title, instructions: None, fields };
        let actions = Element::builder("actions", COMMANDS)
            .attr(xmpp_parsers::minidom::rxml::NcName::try_from("execute").expect("literal"), "complete")
            .append(Element::builder("complete", COMMANDS).build())
            .build();
        command_reply(&node, &session, "executing", vec![actions, x.into()])
    } else {
        let answer = if node == ADMIN.0 {
            match form_value(form.as_ref(), "command").filter(|c| !c.is_empty()) {
                Some(line) => Ok(bridge.xmpp_admin(&sender, &line, None).await),
                None => {
                    return bridge
                        .xmpp
                        .send_reply(error(Refusal::BadRequest, "The field 'command' is required."))
                        .await;
                }
            }
        } else {
            match command(&node, form.as_ref()) {
                Ok(c) => bridge.xmpp_adhoc(&sender, c).await,
                Err(e) => return bridge.xmpp.send_reply(error(Refusal::BadRequest, &e)).await,
            }
        };
        let text = match answer {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(%from, error = %e, "ad-hoc command failed");
                return bridge.xmpp.send_reply(error(Refusal::Internal, "The bridge could not run the command.")).await;
            }
        };
        let note = Element::builder("note", COMMANDS)
            .attr(xmpp_parsers::minidom::rxml::NcName::try_from("type").expect("literal"), "info")
            .append(text)
            .build();
        command_reply(&node, &session, "completed", vec![note])
    };
    let mut iq = Iq::from_result(id, Some(Payload(reply)));
    *iq.from_mut() = Some(to);
    *iq.to_mut() = Some(from);
    bridge.xmpp.send_reply(Stanza::Iq(iq)).await;
}

/// An element as an iq result payload.
struct Payload(Element);
impl From<Payload> for Element {
    fn from(p: Payload) -> Element {
        p.0
    }
}
impl TryFrom<Element> for Payload {
    type Error = xmpp_parsers::FromElementError;
    fn try_from(e: Element) -> Result<Self, Self::Error> {
        Ok(Payload(e))
    }
}
impl xmpp_parsers::iq::IqResultPayload for Payload {}

#[cfg(test)]
mod tests {
    use super::*;

    fn submitted(fields: &[(&str, &str)]) -> DataForm {
        DataForm {
            type_: DataFormType::Submit,
            title: None,
            instructions: None,
            fields: fields.iter().map(|(k, v)| Field::text_single(k, v)).collect(),
        }
    }

    #[test]
    fn forms_map_to_the_command_tree() {
        assert_eq!(
            command("notify-add", Some(&submitted(&[("contact", " alice@x "), ("when", "offline")]))),
            Ok(UserCommand::Notify { action: NotifyCommand::Add { contact: "alice@x".into(), when: When::Offline } })
        );
        assert_eq!(
            command(
                "room-create",
                Some(&submitted(&[("alias", "sales"), ("name", "Sales --public team"), ("public", "0")]))
            ),
            Ok(UserCommand::Room {
                action: RoomCommand::Create {
                    alias: "sales".into(),
                    name: vec!["Sales --public team".into()],
                    public: false
                }
            })
        );
        assert!(command("notify-add", Some(&submitted(&[("when", "both")]))).unwrap_err().contains("contact"));
        assert!(command("notify-add", Some(&submitted(&[("contact", "a@b"), ("when", "never")]))).is_err());
        assert!(command("frobnicate", None).is_err());
        assert!(form_fields("notify-list").is_empty() && !form_fields("room-create").is_empty());
    }
}
