//! The user and admin commands as XMPP ad-hoc commands (XEP-0050) on the component, with data
//! forms (XEP-0004): listed through disco (the admin ones only to admins), one form step each,
//! answered with a note. Nodes, names and form fields are generated from the commands' clap
//! trees (the commands each tree offers: `commands::user::ADHOC`, `commands::admin::ADHOC`), and
//! a submitted form becomes the words of its command, parsed by the same tree as a typed
//! command, so both behave alike. Running a command is the bridge's (`bridge::admin::adhoc`).

use std::sync::LazyLock;

use clap::{ArgAction, CommandFactory};
use xmpp_parsers::data_forms::{DataForm, DataFormType, Field, FieldType, Option_};
use xmpp_parsers::disco::{DiscoItemsResult, Item};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::minidom::Element;
use xmpp_parsers::stanza::Stanza;

use crate::commands::{Adhoc, admin, user};
use crate::core::ids::BareJid;
pub use crate::core::xmpp_in::Submission;
use crate::core::xmpp_in::{AdhocCommand, AdhocStep, XmppIn};
use crate::xmpp::inbound::Read;
use crate::xmpp::reply::Envelope;

pub const COMMANDS: &str = "http://jabber.org/protocol/commands";

/// The node that takes any admin command as a line, as typed in the control room.
const ADMIN_LINE: &str = "admin";

/// One ad-hoc command.
struct Entry {
    node: String,
    name: String,
    /// Listed to admins only, and refused to everyone else.
    admin: bool,
    kind: Kind,
}

enum Kind {
    /// A command of a tree, at `path`; with subcommands, the form's `action` picks one.
    Command { command: Box<clap::Command>, path: Vec<String>, file: bool },
    /// The `admin` node: a command line.
    Line,
}

/// Every ad-hoc command: the user commands, then the admin ones.
static ENTRIES: LazyLock<Vec<Entry>> = LazyLock::new(|| {
    let mut entries = from_tree(user::UserLine::command(), user::ADHOC, false);
    entries.push(Entry {
        node: ADMIN_LINE.to_owned(),
        name: "Run an admin command (admins only)".to_owned(),
        admin: true,
        kind: Kind::Line,
    });
    entries.extend(from_tree(admin::AdminLine::command(), admin::ADHOC, true));
    entries
});

/// The entries for the commands a tree offers: node = the path joined with `-`, name = the
/// command's `about`.
fn from_tree(mut root: clap::Command, offered: &[Adhoc], admin: bool) -> Vec<Entry> {
    root.build();
    offered
        .iter()
        .filter_map(|a| {
            let mut command = &root;
            for word in a.path {
                command = command.find_subcommand(word)?;
            }
            let about = command.get_about().map(|a| a.to_string()).unwrap_or_default();
            let about = about.split_whitespace().collect::<Vec<_>>().join(" ");
            Some(Entry {
                node: a.path.join("-"),
                name: if admin { format!("{about} (admins only)") } else { about },
                admin,
                kind: Kind::Command {
                    command: Box::new(command.clone()),
                    path: a.path.iter().map(|w| (*w).to_owned()).collect(),
                    file: a.file,
                },
            })
        })
        .collect()
}

fn entry(node: &str) -> Option<&'static Entry> {
    ENTRIES.iter().find(|e| e.node == node)
}

/// A command's subcommands (a node with an `action` field when there are any).
fn subcommands(command: &clap::Command) -> Vec<&clap::Command> {
    command.get_subcommands().filter(|c| c.get_name() != "help").collect()
}

/// A command's arguments, without clap's own.
fn arguments(command: &clap::Command) -> impl Iterator<Item = &clap::Arg> {
    command.get_arguments().filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
}

/// An argument that takes several words (`sms +49 176 …`, `groups add sales A B`).
fn takes_words(arg: &clap::Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Append) || arg.get_num_args().is_some_and(|n| n.max_values() > 1)
}

fn list_field(var: &str, label: &str, options: &[String], default: Option<&str>) -> Field {
    Field {
        label: Some(label.to_owned()),
        options: options.iter().map(|v| Option_ { label: None, value: v.clone() }).collect(),
        values: default.map(str::to_owned).into_iter().collect(),
        ..Field::new(var, FieldType::ListSingle)
    }
}

/// The form field of an argument: switches are booleans, value enums lists, arguments of
/// several words multi-line texts (a word or more a line), others one-line texts. The label is
/// the argument's help text.
fn field(arg: &clap::Arg, required: bool) -> Field {
    let var = arg.get_id().as_str();
    let label =
        arg.get_help().map(|h| h.to_string().trim_end_matches('.').to_owned()).unwrap_or_else(|| var.to_owned());
    let default = arg.get_default_values().first().and_then(|v| v.to_str()).map(str::to_owned);
    let options: Vec<String> =
        arg.get_possible_values().iter().filter(|v| !v.is_hide_set()).map(|v| v.get_name().to_owned()).collect();
    match arg.get_action() {
        ArgAction::SetTrue => Field { label: Some(label), ..Field::new(var, FieldType::Boolean).with_value("0") },
        _ if !options.is_empty() => {
            // A required choice starts at the first option; an optional one at none.
            let default = default.or_else(|| arg.is_required_set().then(|| options[0].clone()));
            list_field(var, &label, &options, default.as_deref())
        }
        _ if takes_words(arg) => Field { label: Some(label), required, ..Field::new(var, FieldType::TextMulti) },
        _ => Field { label: Some(label), required, ..Field::new(var, FieldType::TextSingle) },
    }
}

/// The form an ad-hoc command asks for (empty: it runs at once).
fn form_fields(node: &str) -> Vec<Field> {
    let Some(entry) = entry(node) else { return vec![] };
    let (command, file) = match &entry.kind {
        Kind::Line => {
            let label = "Command (e.g. status, rooms list, permissions grant USER sms)";
            return vec![Field {
                label: Some(label.to_owned()),
                required: true,
                ..Field::new("command", FieldType::TextSingle)
            }];
        }
        Kind::Command { command, file, .. } => (command, *file),
    };
    let subs = subcommands(command);
    let mut fields: Vec<Field> = if subs.is_empty() {
        arguments(command).map(|a| field(a, a.is_required_set())).collect()
    } else {
        let names: Vec<String> = subs.iter().map(|c| c.get_name().to_owned()).collect();
        let mut fields = vec![list_field("action", "Action", &names, Some(&names[0]))];
        // The arguments of every action, once each: which are needed depends on the action.
        for arg in subs.iter().flat_map(|c| arguments(c)) {
            if !fields.iter().any(|f| f.var.as_deref() == Some(arg.get_id().as_str())) {
                fields.push(field(arg, false));
            }
        }
        fields
    };
    if file {
        let name = "File name (e.g. team.vcf or team.csv)";
        fields.push(Field {
            label: Some(name.to_owned()),
            required: true,
            ..Field::new("name", FieldType::TextSingle)
        });
        let content = "Content of the vCard or CSV file";
        fields.push(Field { label: Some(content.to_owned()), ..Field::new("content", FieldType::TextMulti) });
    }
    fields
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

/// The command a submitted form stands for; `Err` says what is wrong with the form (the
/// commands parser's text, see `commands::parse_line`). Values follow the options
/// (`--when=…`) and a `--`, so no value reads as another argument.
fn submission(node: &str, form: Option<&DataForm>) -> Result<Submission, String> {
    let value = |var: &str| form_value(form, var).filter(|v| !v.is_empty());
    let required = |var: &str| value(var).ok_or_else(|| format!("The field '{var}' is required."));
    let Some(entry) = entry(node) else { return Err(format!("There is no command '{node}'.")) };
    let (command, path, file) = match &entry.kind {
        Kind::Line => return Ok(Submission::Line(required("command")?)),
        Kind::Command { command, path, file } => (command, path, *file),
    };
    let mut words = path.clone();
    let subs = subcommands(command);
    let command: &clap::Command = if subs.is_empty() {
        command
    } else {
        let names: Vec<&str> = subs.iter().map(|c| c.get_name()).collect();
        let action = value("action").unwrap_or_else(|| names[0].to_owned());
        let Some(sub) = subs.iter().find(|c| c.get_name() == action) else {
            return Err(format!("'{action}' is not one of {}.", names.join(", ")));
        };
        words.push(action);
        sub
    };
    let (mut options, mut positionals) = (vec![], vec![]);
    for arg in arguments(command) {
        let var = arg.get_id().as_str();
        if arg.is_positional() {
            let given: Vec<String> = if takes_words(arg) {
                form_values(form, var).iter().flat_map(|v| v.split_whitespace().map(str::to_owned)).collect()
            } else {
                value(var).into_iter().collect()
            };
            if given.is_empty() && arg.is_required_set() {
                return Err(format!("The field '{var}' is required."));
            }
            positionals.extend(given);
        } else if let Some(long) = arg.get_long() {
            if takes_words(arg) {
                // An option of several words (`--without 2 bob@x`): one `--long=word` each.
                let words = form_values(form, var);
                options.extend(words.iter().flat_map(|v| v.split_whitespace()).map(|w| format!("--{long}={w}")));
                continue;
            }
            match (arg.get_action(), value(var)) {
                (ArgAction::SetTrue, Some(v)) if v == "1" || v == "true" => options.push(format!("--{long}")),
                (ArgAction::SetTrue, _) | (_, None) => {}
                (_, Some(v)) => options.push(format!("--{long}={v}")),
            }
        }
    }
    let line = words.iter().chain(&options).chain(&positionals).cloned().collect::<Vec<_>>().join(" ");
    words.extend(options);
    if !positionals.is_empty() {
        words.push("--".to_owned());
        words.extend(positionals);
    }
    if !entry.admin {
        return Ok(Submission::User { words });
    }
    let file = if file {
        let content = form_values(form, "content").join("\n");
        if content.trim().is_empty() {
            return Err("The field 'content' is required.".into());
        }
        let name = required("name")?;
        if name.contains(char::is_whitespace) {
            return Err("The field 'name' must be one word.".into());
        }
        Some((name, content))
    } else {
        None
    };
    Ok(Submission::Admin { words, line, file })
}

/// disco#items for the commands node; the admin commands only for admins.
pub fn items(from: Jid, to: Jid, id: String, admin: bool) -> Stanza {
    let items = ENTRIES
        .iter()
        .filter(|e| admin || !e.admin)
        .map(|e| Item { jid: from.clone(), node: Some(e.node.clone()), name: Some(e.name.clone()) })
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

/// An `<iq type='set'><command/></iq>` to the component, read into the bridge's terms; its
/// answer is built by [`answer`] from the [`Envelope`] (which keeps the node and session).
pub fn read(from: Jid, to: Jid, id: String, payload: &Element) -> Read {
    let Ok(sender) = BareJid::parse(from.to_bare().as_str()) else { return Read::Nothing };
    let node = payload.attr("node").unwrap_or_default().to_owned();
    let session = payload.attr("sessionid").map(str::to_owned).unwrap_or_else(|| format!("ucb-{id}"));
    let form = payload.get_child("x", xmpp_parsers::ns::DATA_FORMS).and_then(|x| DataForm::try_from(x.clone()).ok());
    let step = if payload.attr("action") == Some("cancel") {
        AdhocStep::Cancel
    } else if form.is_none() && !form_fields(&node).is_empty() {
        AdhocStep::Form
    } else {
        AdhocStep::Submitted(submission(&node, form.as_ref()))
    };
    let command = AdhocCommand {
        sender,
        admin: entry(&node).map(|e| e.admin),
        // What was tried, for the audit of a refusal: the command line, else the node.
        attempted: form_value(form.as_ref(), "command").unwrap_or_else(|| format!("ad-hoc {node}")),
        node: node.clone(),
        step,
    };
    Read::Bridge(XmppIn::AdhocCommand(command), Some(Envelope::iq(from, to, id).with_command(node, session)))
}

/// The answer to a command (`node`, `session`) that is not an error, as an iq result from
/// `from` to `to`.
pub fn answer(from: Jid, to: Jid, id: String, node: &str, session: &str, answer: CommandAnswer) -> Stanza {
    let command = match answer {
        CommandAnswer::Canceled => command_reply(node, session, "canceled", vec![]),
        CommandAnswer::Form => {
            let title = entry(node).map(|e| e.name.clone());
            let x = DataForm { type_: DataFormType::Form, title, instructions: None, fields: form_fields(node) };
            let actions = Element::builder("actions", COMMANDS)
                .attr(xmpp_parsers::minidom::rxml::NcName::try_from("execute").expect("literal"), "complete")
                .append(Element::builder("complete", COMMANDS).build())
                .build();
            command_reply(node, session, "executing", vec![actions, x.into()])
        }
        CommandAnswer::Completed(text) => {
            let note = Element::builder("note", COMMANDS)
                .attr(xmpp_parsers::minidom::rxml::NcName::try_from("type").expect("literal"), "info")
                .append(text)
                .build();
            command_reply(node, session, "completed", vec![note])
        }
    };
    let mut iq = Iq::from_result(id, Some(Payload(command)));
    *iq.from_mut() = Some(from);
    *iq.to_mut() = Some(to);
    Stanza::Iq(iq)
}

/// How a command is answered when it is not refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandAnswer {
    /// The command was cancelled.
    Canceled,
    /// The form to fill in (the first step).
    Form,
    /// It ran: its answer, as the completed command's note.
    Completed(String),
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
    use crate::commands::user::{NotifyCommand, RoomCommand, Switch, UserCommand, When};

    fn submitted(fields: &[(&str, &str)]) -> DataForm {
        DataForm {
            type_: DataFormType::Submit,
            title: None,
            instructions: None,
            fields: fields.iter().map(|(k, v)| Field::text_single(k, v)).collect(),
        }
    }

    /// A user form, parsed as the bridge parses it.
    fn command(node: &str, form: Option<&DataForm>) -> Result<UserCommand, String> {
        match submission(node, form)? {
            Submission::User { words } => user::parse_words(&words),
            other => panic!("not a user command: {other:?}"),
        }
    }

    fn field_of<'a>(node: &str, var: &str, fields: &'a [Field]) -> &'a Field {
        fields.iter().find(|f| f.var.as_deref() == Some(var)).unwrap_or_else(|| panic!("{node} has no field {var}"))
    }

    #[test]
    fn nodes_come_from_the_command_trees() {
        let user: Vec<&str> = ENTRIES.iter().filter(|e| !e.admin).map(|e| e.node.as_str()).collect();
        assert_eq!(
            user,
            [
                "help",
                "notify-add",
                "notify-list",
                "notify-cancel",
                "room-create",
                "sms",
                "notifications",
                "missed-calls",
                "missed-chats",
                "language",
                "start-chat",
                "confirm",
                "groups-mine",
                "whoami"
            ]
        );
        let admin: Vec<&str> = ENTRIES.iter().filter(|e| e.admin).map(|e| e.node.as_str()).collect();
        assert_eq!(admin, ["admin", "block", "missed-calls-policy", "groups", "contacts-import"]);
        assert!(entry("notify-add").unwrap().name.contains("available again"));
        assert!(entry("block").unwrap().name.ends_with("(admins only)"));
        // Fields with their types and help text.
        let fields = form_fields("notify-add");
        assert_eq!(field_of("notify-add", "contact", &fields).type_, FieldType::TextSingle);
        assert!(field_of("notify-add", "contact", &fields).required);
        let when = field_of("notify-add", "when", &fields);
        assert_eq!(when.type_, FieldType::ListSingle);
        assert_eq!(when.values, ["both"]);
        assert_eq!(when.options.len(), 4, "available, offline, both, pickup");
        let fields = form_fields("room-create");
        assert_eq!(field_of("room-create", "public", &fields).type_, FieldType::Boolean);
        assert!(field_of("room-create", "alias", &fields).label.as_deref().unwrap().contains("address"));
        let fields = form_fields("block");
        assert_eq!(field_of("block", "action", &fields).options.len(), 3);
        assert_eq!(field_of("block", "number", &fields).type_, FieldType::TextMulti);
        assert_eq!(field_of("block", "extension", &fields).type_, FieldType::Boolean);
        let fields = form_fields("groups");
        assert_eq!(field_of("groups", "members", &fields).type_, FieldType::TextMulti);
        let fields = form_fields("missed-calls-policy");
        assert_eq!(field_of("missed-calls-policy", "policy", &fields).options.len(), 4);
        let fields = form_fields("contacts-import");
        field_of("contacts-import", "content", &fields);
        assert!(form_fields("notify-list").is_empty() && form_fields("whoami").is_empty());
        for node in ["missed-calls", "language", "start-chat", "block", "groups", "contacts-import", "admin"] {
            assert!(!form_fields(node).is_empty(), "{node} has a form");
        }
    }

    #[test]
    fn forms_map_to_the_command_tree() {
        assert_eq!(
            command("notify-add", Some(&submitted(&[("contact", " alice@x "), ("when", "offline")]))),
            Ok(UserCommand::Notify { action: NotifyCommand::Add { contact: "alice@x".into(), when: When::Offline } })
        );
        // A value is never read as an option.
        assert_eq!(
            command(
                "room-create",
                Some(&submitted(&[("alias", "sales"), ("name", "Sales --public team"), ("public", "0")]))
            ),
            Ok(UserCommand::Room {
                action: RoomCommand::Create {
                    alias: "sales".into(),
                    name: vec!["Sales".into(), "--public".into(), "team".into()],
                    public: false,
                    with: vec![]
                }
            })
        );
        assert_eq!(
            command("room-create", Some(&submitted(&[("alias", "-x"), ("public", "true")]))),
            Ok(UserCommand::Room {
                action: RoomCommand::Create { alias: "-x".into(), name: vec![], public: true, with: vec![] }
            })
        );
        assert!(command("notify-add", Some(&submitted(&[("when", "both")]))).unwrap_err().contains("contact"));
        assert_eq!(
            command("sms", Some(&submitted(&[("target", " +49 176 1234 5678 ")]))).unwrap(),
            UserCommand::Sms { target: vec!["+49".into(), "176".into(), "1234".into(), "5678".into()] }
        );
        assert!(command("sms", None).unwrap_err().contains("target"));
        let err = command("notify-add", Some(&submitted(&[("contact", "a@b"), ("when", "never")]))).unwrap_err();
        assert!(err.contains("never") && err.contains("Usage: notify add"), "{err}");
        assert!(submission("frobnicate", None).is_err());
        assert_eq!(
            command("missed-calls", Some(&submitted(&[("switch", "off")]))),
            Ok(UserCommand::MissedCalls { switch: Switch::Off })
        );
        // `notifications`: the form's kind, switch, channel and address; nothing chosen shows them.
        assert_eq!(
            command(
                "notifications",
                Some(&submitted(&[("kind", "missed-calls"), ("switch", "on"), ("via", "email"), ("to", "a@b.org")]))
            ),
            Ok(UserCommand::Notifications {
                kind: Some(user::NoticeKind::MissedCalls),
                switch: Some(Switch::On),
                via: Some(user::Via::Email),
                to: Some("a@b.org".into())
            })
        );
        assert_eq!(
            command("notifications", Some(&submitted(&[]))),
            Ok(UserCommand::Notifications { kind: None, switch: None, via: None, to: None })
        );
        let fields = form_fields("notifications");
        assert_eq!(field_of("notifications", "kind", &fields).options.len(), 4);
        assert!(field_of("notifications", "kind", &fields).values.is_empty(), "no kind chosen at first");
        assert_eq!(field_of("notifications", "to", &fields).type_, FieldType::TextSingle);
        assert!(command("notifications", Some(&submitted(&[("kind", "pickup")]))).unwrap_err().contains("SWITCH"));
        assert_eq!(
            command("start-chat", Some(&submitted(&[("group", "sales")]))),
            Ok(UserCommand::StartChat { group: "sales".into(), without: vec![], shared: false })
        );
        let mut without = submitted(&[("group", "sales"), ("shared", "1")]);
        without.fields.push(Field {
            values: vec!["2 @a:hs".into(), "b@x".into()],
            ..Field::new("without", FieldType::TextMulti)
        });
        assert_eq!(
            command("start-chat", Some(&without)),
            Ok(UserCommand::StartChat {
                group: "sales".into(),
                without: vec!["2".into(), "@a:hs".into(), "b@x".into()],
                shared: true
            })
        );
        assert_eq!(
            form_fields("start-chat").iter().find(|f| f.var.as_deref() == Some("without")).unwrap().type_,
            FieldType::TextMulti
        );
        assert_eq!(command("confirm", None), Ok(UserCommand::Confirm));
        let mut mine = submitted(&[("action", "add"), ("name", "team")]);
        mine.fields.push(Field { values: vec!["@a:hs".into()], ..Field::new("members", FieldType::TextMulti) });
        assert_eq!(
            command("groups-mine", Some(&mine)),
            Ok(UserCommand::Groups {
                scope: user::GroupsScope::Mine {
                    action: user::MyGroupsCommand::Add { name: "team".into(), members: vec!["@a:hs".into()] }
                }
            })
        );
        assert!(command("start-chat", Some(&submitted(&[]))).unwrap_err().contains("group"));
        assert_eq!(command("help", None), Ok(UserCommand::Help));
    }

    #[test]
    fn admin_forms_become_admin_commands() {
        use crate::commands::admin::{AdminCommand, BlockCommand, CallPolicy, GroupsCommand, MissedCallsCommand};
        let run = |node, form: &DataForm| match submission(node, Some(form)) {
            Ok(Submission::Admin { words, line, file }) => Ok((admin::parse_words(&words), line, file)),
            Ok(other) => panic!("not an admin command: {other:?}"),
            Err(e) => Err(e),
        };
        let line = |node, fields: &[(&str, &str)]| run(node, &submitted(fields));
        let (command, typed, _) = line("block", &[("action", "add"), ("number", "+49 30 123")]).unwrap();
        assert_eq!(
            command,
            Ok(AdminCommand::Block {
                action: BlockCommand::Add { number: vec!["+49".into(), "30".into(), "123".into()], extension: false }
            })
        );
        assert_eq!(typed, "block add +49 30 123");
        let (command, typed, _) =
            line("block", &[("action", "remove"), ("number", "299"), ("extension", "1")]).unwrap();
        assert_eq!(
            command,
            Ok(AdminCommand::Block { action: BlockCommand::Remove { number: vec!["299".into()], extension: true } })
        );
        assert_eq!(typed, "block remove --extension 299");
        let (command, _, _) = line("block", &[("action", "list"), ("number", "123")]).unwrap();
        assert_eq!(
            command,
            Ok(AdminCommand::Block { action: BlockCommand::List }),
            "fields of other actions are left out"
        );
        assert!(line("block", &[("action", "fly")]).unwrap_err().contains("add, remove, list"));
        let (command, _, _) = line("missed-calls-policy", &[("policy", "last")]).unwrap();
        assert_eq!(
            command,
            Ok(AdminCommand::MissedCalls { action: MissedCallsCommand::Policy { policy: Some(CallPolicy::Last) } })
        );
        let (command, _, _) = line("missed-calls-policy", &[("policy", "last --x")]).unwrap();
        assert!(command.unwrap_err().contains("Usage: missed-calls policy"), "no extra arguments");
        let mut members = submitted(&[("action", "add"), ("name", "ops")]);
        members
            .fields
            .push(Field { values: vec!["@a:hs".into(), "b@x".into()], ..Field::new("members", FieldType::TextMulti) });
        let (command, typed, _) = run("groups", &members).unwrap();
        assert_eq!(
            command,
            Ok(AdminCommand::Groups {
                action: GroupsCommand::Add { name: "ops".into(), members: vec!["@a:hs".into(), "b@x".into()] }
            })
        );
        assert_eq!(typed, "groups add ops @a:hs b@x");
        assert!(line("groups", &[("action", "add"), ("name", "ops")]).unwrap_err().contains("members"));
        let mut import = submitted(&[("name", "t.vcf")]);
        import.fields.push(Field {
            values: vec!["BEGIN:VCARD".into(), "END:VCARD".into()],
            ..Field::new("content", FieldType::TextMulti)
        });
        let (command, typed, file) = run("contacts-import", &import).unwrap();
        assert!(command.is_ok() && typed == "contacts import", "{typed}");
        assert_eq!(file, Some(("t.vcf".into(), "BEGIN:VCARD\nEND:VCARD".into())));
        assert!(line("contacts-import", &[("name", "t.vcf")]).unwrap_err().contains("content"));
        assert_eq!(
            submission("admin", Some(&submitted(&[("command", "status")]))),
            Ok(Submission::Line("status".into()))
        );
    }
}
