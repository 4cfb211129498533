//! Commands people send to the bridge: Matrix users in their direct chat with the bridge bot,
//! XMPP users as messages to the component. One clap command tree: the doc comments are the
//! help text, and the parser is unit-tested.

pub mod admin;
pub mod user;

/// Who may run a command; each command tree declares it beside its commands (`access()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone who can reach the bot or the component.
    Anyone,
    /// People listed under `admins:` in the config.
    Admin,
}

impl Access {
    /// `Err` is the refusal to answer: never silence.
    pub fn check(self, is_admin: bool) -> Result<(), String> {
        match self {
            Access::Anyone => Ok(()),
            Access::Admin if is_admin => Ok(()),
            Access::Admin => Err("Only the bridge's admins can run this command.".into()),
        }
    }
}

/// A command offered as an XMPP ad-hoc command (XEP-0050), named by its path in the tree: the
/// node is the path joined with `-`, the form has a field per argument, and a command with
/// subcommands is one node whose `action` field picks the subcommand.
pub struct Adhoc {
    pub path: &'static [&'static str],
    /// It takes a file besides its arguments (in the form: its name and content).
    pub file: bool,
}

impl Adhoc {
    const fn new(path: &'static [&'static str]) -> Adhoc {
        Adhoc { path, file: false }
    }
}

/// The word a command may start with when the config names no other (`admins.command_prefix`).
pub const DEFAULT_PREFIX: &str = "!ucb";

/// Parse a command line with a clap tree; `Err` carries the text to answer (the help for an
/// empty line, else the mistake with the usage). A leading `prefix` is accepted, as in rooms
/// where one is needed. (The parsers here answer with text, not a typed error: what they say
/// is clap's rendering, shown as it is; it stays text until the command trees are declared once
/// and the forms generated from them.)
pub(crate) fn parse_line<P: clap::Parser>(text: &str, prefix: &str, help: fn() -> String) -> Result<P, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let words = match words.first() {
        Some(first) if *first == prefix => &words[1..],
        _ => &words[..],
    };
    if words.is_empty() {
        return Err(help());
    }
    parse_words(words, help)
}

/// Parse a command given as its words (an argument vector without a program name), e.g. built
/// from an XMPP form; `Err` is the mistake with the usage.
pub(crate) fn parse_words<P: clap::Parser, S: AsRef<str>>(words: &[S], help: fn() -> String) -> Result<P, String> {
    let words: Vec<&str> = words.iter().map(AsRef::as_ref).collect();
    P::try_parse_from(&words).map_err(|e| with_usage::<P>(&e, &words, help))
}

/// A parse error with the usage of the (sub)command it concerns: the deepest command the words
/// name (all commands for an unknown one). clap's own short usage line gives way to it.
fn with_usage<P: clap::CommandFactory>(error: &clap::Error, words: &[&str], help: fn() -> String) -> String {
    let rendered = error.render().to_string();
    let mistake: Vec<&str> = rendered.lines().take_while(|l| !l.starts_with("Usage:")).collect();
    let mistake = mistake.join("\n").trim_end().to_owned();
    let mut command = P::command();
    let mut path = vec![];
    for word in words {
        let Some(sub) = command.find_subcommand(word).cloned() else { break };
        path.push(sub.get_name().to_owned());
        command = sub;
    }
    match render_command_help::<P>(&path) {
        Ok(usage) if !path.is_empty() => format!("{mistake}\n{usage}\nSend `help` for the list of commands."),
        _ => format!("{mistake}\n{}", help()),
    }
}

/// A command tree's help text under a title.
pub(crate) fn render_help<P: clap::CommandFactory>(title: &str) -> String {
    format!("{title}:\n{}", P::command().render_help())
}

/// The help of one command of a tree (`help rooms`, `help missed-calls options`); `Err` if the
/// tree has no such command.
pub(crate) fn render_command_help<P: clap::CommandFactory>(path: &[String]) -> Result<String, String> {
    let mut command = P::command();
    let mut names = vec![];
    for word in path {
        let Some(sub) = command.find_subcommand(word).cloned() else {
            return Err(format!("There is no command '{}'. Send `help` for the list.", path.join(" ")));
        };
        names.push(sub.get_name().to_owned());
        command = sub;
    }
    let usage = command
        .render_usage()
        .to_string()
        .replace("Usage: ", &format!("Usage: {} ", names[..names.len().saturating_sub(1)].join(" ")));
    let about = command.get_about().map(|a| a.to_string()).unwrap_or_default();
    let mut text = format!("{}: {about}\n{}", names.join(" "), usage.split_whitespace().collect::<Vec<_>>().join(" "));
    let subs: Vec<String> = command
        .get_subcommands()
        .filter(|c| c.get_name() != "help")
        .map(|c| format!("- {}: {}", c.get_name(), c.get_about().map(|a| a.to_string()).unwrap_or_default()))
        .collect();
    if !subs.is_empty() {
        text.push('\n');
        text.push_str(&subs.join("\n"));
    }
    let args: Vec<String> = command
        .get_arguments()
        .filter(|a| a.get_help().is_some() && a.get_id() != "help")
        .map(|a| {
            let name = match a.get_long() {
                Some(l) => format!("--{l}"),
                None => a.get_id().to_string().to_uppercase(),
            };
            format!("- {name}: {}", a.get_help().map(|h| h.to_string()).unwrap_or_default())
        })
        .collect();
    if !args.is_empty() {
        text.push('\n');
        text.push_str(&args.join("\n"));
    }
    Ok(text)
}
