//! The user and admin commands as XMPP ad-hoc commands (XEP-0050) on the component, with data
//! forms (XEP-0004): listed through disco (the admin ones only to admins), one form step each,
//! answered with a note. The forms map onto the same command trees as the text commands, so
//! both behave alike; admin forms become a command line that is parsed, checked and audited as
//! in the control room.

use std::sync::Arc;

use xmpp_parsers::data_forms::{DataForm, DataFormType, Field, FieldType, Option_};
use xmpp_parsers::disco::{DiscoItemsResult, Item};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::minidom::Element;
use xmpp_parsers::stanza::Stanza;

use crate::bridge::Bridge;
use crate::commands::user::{NotifyCommand, RoomCommand, Switch, UserCommand, When};
use crate::core::action::Refusal;
use crate::core::ids::BareJid;
use crate::xmpp::outbound;

pub const COMMANDS: &str = "http://jabber.org/protocol/commands";

/// The commands: node and name.
const LIST: [(&str, &str); 10] = [
    ("help", "Show the bridge's commands"),
    ("notify-add", "Tell me when a contact becomes available again or logs off"),
    ("notify-list", "List my notifications"),
    ("notify-cancel", "Stop notifying me about a contact"),
    ("room-create", "Start a group conversation with me as its moderator"),
    ("sms", "Chat with a phone number by SMS"),
    ("missed-calls", "Missed-call notices for me: on or off"),
    ("language", "The language of my notices"),
    ("start-chat", "Start a group conversation with a contact group"),
    ("whoami", "Who the bridge takes me for"),
];

/// The admin commands (admins only; listed only to them): node and name.
const ADMIN_LIST: [(&str, &str); 5] = [
    ("admin", "Run an admin command (admins only)"),
    ("block", "Missed-call block list: add, remove, list (admins only)"),
    ("missed-calls-policy", "Who is told about a missed call (admins only)"),
    ("groups", "Contact groups: create, delete, add, remove, list (admins only)"),
    ("contacts-import", "Import contacts from a vCard or CSV text (admins only)"),
];

fn list_field(var: &str, label: &str, options: &[&str], default: &str) -> Field {
    Field {
        label: Some(label.to_owned()),
        options: options.iter().map(|v| Option_ { label: None, value: (*v).to_owned() }).collect(),
        values: vec![default.to_owned()],
        ..Field::new(var, FieldType::ListSingle)
    }
}

fn multi_field(var: &str, label: &str) -> Field {
    Field { label: Some(label.to_owned()), ..Field::new(var, FieldType::TextMulti) }
}

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
        "sms" => vec![text_field("number", "Phone number or contact name", true)],
        "admin" => vec![text_field("command", "Command (e.g. status, rooms list, permissions grant USER sms)", true)],
        "missed-calls" => vec![list_field("switch", "Missed-call notices", &["on", "off"], "on")],
        "language" => vec![list_field("language", "Language", &["en", "de"], "en")],
        "start-chat" => vec![text_field("group", "Contact group", true)],
        "block" => vec![
            list_field("action", "Action", &["add", "remove", "list"], "add"),
            text_field("number", "Number or extension", false),
            Field {
                label: Some("It is an extension".to_owned()),
                ..Field::new("extension", FieldType::Boolean).with_value("0")
            },
        ],
        "missed-calls-policy" => {
            vec![list_field("policy", "Who is told about a missed call", &["none", "first", "last", "all"], "all")]
        }
        "groups" => vec![
            list_field("action", "Action", &["list", "create", "delete", "add", "remove"], "list"),
            text_field("name", "Group", false),
            multi_field("members", "Members (Matrix IDs or JIDs, one a line)"),
        ],
        "contacts-import" => vec![
            text_field("name", "File name (e.g. team.vcf or team.csv)", true),
            multi_field("content", "Content of the vCard or CSV file"),
        ],
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

/// Every value of a field (a text-multi field has one per line).
fn form_values(form: Option<&DataForm>, var: &str) -> Vec<String> {
    form.and_then(|f| f.fields.iter().find(|f| f.var.as_deref() == Some(var)))
        .map(|f| f.values.clone())
        .unwrap_or_default()
}

/// A command line (and a file for `contacts import`) for a submitted admin form; `Err` says
/// what is wrong with the form. The line runs through the same parser and audit as in the
/// control room.
fn admin_line(node: &str, form: Option<&DataForm>) -> Result<(String, Option<(String, String)>), String> {
    let value = |var: &str| form_value(form, var).filter(|v| !v.is_empty());
    let required = |var: &str| value(var).ok_or_else(|| format!("The field '{var}' is required."));
    // One word each: values must not smuggle in more arguments.
    let word = |var: &str| {
        let v = required(var)?;
        if v.contains(char::is_whitespace) { Err(format!("The field '{var}' must be one word.")) } else { Ok(v) }
    };
    Ok(match node {
        "admin" => (required("command")?, None),
        "block" => match value("action").as_deref().unwrap_or("add") {
            "list" => ("block list".into(), None),
            action @ ("add" | "remove") => {
                let number: String = required("number")?.chars().filter(|c| !c.is_whitespace()).collect();
                let ext = if matches!(value("extension").as_deref(), Some("1" | "true")) { " --extension" } else { "" };
                (format!("block {action}{ext} {number}"), None)
            }
            other => return Err(format!("'{other}' is not one of add, remove, list.")),
        },
        "missed-calls-policy" => (format!("missed-calls policy {}", word("policy")?), None),
        "groups" => match value("action").as_deref().unwrap_or("list") {
            "list" => ("groups list".into(), None),
            action @ ("create" | "delete") => (format!("groups {action} {}", word("name")?), None),
            action @ ("add" | "remove") => {
                let members: Vec<String> = form_values(form, "members")
                    .iter()
                    .flat_map(|v| v.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
                    .collect();
                if members.is_empty() {
                    return Err("The field 'members' is required.".into());
                }
                (format!("groups {action} {} {}", word("name")?, members.join(" ")), None)
            }
            other => return Err(format!("'{other}' is not one of list, create, delete, add, remove.")),
        },
        "contacts-import" => {
            let content = form_values(form, "content").join("\n");
            if content.trim().is_empty() {
                return Err("The field 'content' is required.".into());
            }
            if content.len() > crate::contacts::import::MAX_IMPORT_BYTES {
                return Err(format!(
                    "The content is larger than the limit of {} bytes.",
                    crate::contacts::import::MAX_IMPORT_BYTES
                ));
            }
            ("contacts import".into(), Some((word("name")?, content)))
        }
        other => return Err(format!("There is no command '{other}'.")),
    })
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
        "sms" => UserCommand::Sms { target: vec![required("number")?] },
        "room-create" => {
            let name = value("name").filter(|n| !n.is_empty()).map(|n| vec![n]).unwrap_or_default();
            let public = matches!(value("public").as_deref(), Some("1" | "true"));
            UserCommand::Room { action: RoomCommand::Create { alias: required("alias")?, name, public } }
        }
        "missed-calls" => match value("switch").as_deref() {
            None | Some("on") => UserCommand::MissedCalls { switch: Switch::On },
            Some("off") => UserCommand::MissedCalls { switch: Switch::Off },
            Some(other) => return Err(format!("'{other}' is not one of on, off.")),
        },
        "language" => UserCommand::Language { language: required("language")? },
        "start-chat" => UserCommand::StartChat { group: required("group")? },
        "whoami" => UserCommand::Whoami,
        other => return Err(format!("There is no command '{other}'.")),
    })
}

/// disco#items for the commands node; the admin commands only for admins.
pub fn items(from: Jid, to: Jid, id: String, admin: bool) -> Stanza {
    let items = LIST
        .iter()
        .chain(ADMIN_LIST.iter().filter(|_| admin))
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
    let admin_node = ADMIN_LIST.iter().any(|(n, _)| *n == node);
    if admin_node && !is_admin {
        let text = "Only the bridge's admins can run admin commands.";
        // Audited like a refused command line: what was tried (the form's line, else the node).
        let form =
            payload.get_child("x", xmpp_parsers::ns::DATA_FORMS).and_then(|x| DataForm::try_from(x.clone()).ok());
        let attempted = form_value(form.as_ref(), "command").unwrap_or_else(|| format!("ad-hoc {node}"));
        if let Err(e) =
            bridge.store.audit(&crate::core::watch::Party::Xmpp(sender.clone()), &attempted, false, text).await
        {
            tracing::warn!(error = %e, "cannot write the audit log");
        }
        return bridge.xmpp.send_reply(error(Refusal::Forbidden, text)).await;
    }
    if !admin_node && !LIST.iter().any(|(n, _)| *n == node) {
        return bridge.xmpp.send_reply(error(Refusal::NotFound, &format!("There is no command '{node}'."))).await;
    }
    let form = payload.get_child("x", xmpp_parsers::ns::DATA_FORMS).and_then(|x| DataForm::try_from(x.clone()).ok());
    let fields = form_fields(&node);
    let reply = if action == "cancel" {
        command_reply(&node, &session, "canceled", vec![])
    } else if form.is_none() && !fields.is_empty() {
        // First step: the form to fill in.
        let title = LIST.iter().chain(&ADMIN_LIST).find(|(n, _)| *n == node).map(|(_, t)| (*t).to_owned());
        let x = DataForm { type_: DataFormType::Form, title, instructions: None, fields };
        let actions = Element::builder("actions", COMMANDS)
            .attr(xmpp_parsers::minidom::rxml::NcName::try_from("execute").expect("literal"), "complete")
            .append(Element::builder("complete", COMMANDS).build())
            .build();
        command_reply(&node, &session, "executing", vec![actions, x.into()])
    } else {
        let answer = if admin_node {
            match admin_line(&node, form.as_ref()) {
                Ok((line, file)) => Ok(bridge.xmpp_admin(&sender, &line, file).await),
                Err(e) => return bridge.xmpp.send_reply(error(Refusal::BadRequest, &e)).await,
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
        assert_eq!(
            command("sms", Some(&submitted(&[("number", " +49 176 1234 5678 ")]))).unwrap(),
            UserCommand::Sms { target: vec!["+49 176 1234 5678".into()] }
        );
        assert!(command("sms", None).unwrap_err().contains("number"));
        assert!(command("notify-add", Some(&submitted(&[("contact", "a@b"), ("when", "never")]))).is_err());
        assert!(command("frobnicate", None).is_err());
        assert!(form_fields("notify-list").is_empty() && !form_fields("room-create").is_empty());
        assert_eq!(
            command("missed-calls", Some(&submitted(&[("switch", "off")]))),
            Ok(UserCommand::MissedCalls { switch: Switch::Off })
        );
        assert_eq!(
            command("start-chat", Some(&submitted(&[("group", "sales")]))),
            Ok(UserCommand::StartChat { group: "sales".into() })
        );
        assert!(command("start-chat", Some(&submitted(&[]))).unwrap_err().contains("group"));
        for node in ["missed-calls", "language", "start-chat", "block", "groups", "contacts-import"] {
            assert!(!form_fields(node).is_empty(), "{node} has a form");
        }
    }

    #[test]
    fn admin_forms_become_command_lines() {
        let line = |node, fields: &[(&str, &str)]| admin_line(node, Some(&submitted(fields)));
        assert_eq!(
            line("block", &[("action", "add"), ("number", "+49 30 123")]),
            Ok(("block add +4930123".into(), None))
        );
        assert_eq!(
            line("block", &[("action", "remove"), ("number", "299"), ("extension", "1")]),
            Ok(("block remove --extension 299".into(), None))
        );
        assert_eq!(line("block", &[("action", "list")]), Ok(("block list".into(), None)));
        assert_eq!(line("missed-calls-policy", &[("policy", "last")]), Ok(("missed-calls policy last".into(), None)));
        assert!(line("missed-calls-policy", &[("policy", "last --x")]).is_err(), "no extra arguments");
        assert_eq!(line("groups", &[("action", "create"), ("name", "ops")]), Ok(("groups create ops".into(), None)));
        let mut members = submitted(&[("action", "add"), ("name", "ops")]);
        members
            .fields
            .push(Field { values: vec!["@a:hs".into(), "b@x".into()], ..Field::new("members", FieldType::TextMulti) });
        assert_eq!(admin_line("groups", Some(&members)), Ok(("groups add ops @a:hs b@x".into(), None)));
        assert!(line("groups", &[("action", "add"), ("name", "ops")]).unwrap_err().contains("members"));
        let mut import = submitted(&[("name", "t.vcf")]);
        import.fields.push(Field {
            values: vec!["BEGIN:VCARD".into(), "END:VCARD".into()],
            ..Field::new("content", FieldType::TextMulti)
        });
        assert_eq!(
            admin_line("contacts-import", Some(&import)),
            Ok(("contacts import".into(), Some(("t.vcf".into(), "BEGIN:VCARD\nEND:VCARD".into()))))
        );
        assert!(line("contacts-import", &[("name", "t.vcf")]).unwrap_err().contains("content"));
        assert_eq!(line("admin", &[("command", "status")]), Ok(("status".into(), None)));
    }
}
