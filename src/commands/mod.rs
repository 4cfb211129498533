//! Commands people send to the bridge: Matrix users in their direct chat with the bridge bot,
//! XMPP users as messages to the component. One clap command tree: the doc comments are the
//! help text, and the parser is unit-tested.

pub mod admin;
pub mod user;

/// Parse a command line with a clap tree; `Err` carries the text to answer (the help for an
/// empty line, else the mistake). A leading `!ucb` is accepted, as in rooms where a prefix is needed.
pub(crate) fn parse_line<P: clap::Parser>(text: &str, help: fn() -> String) -> Result<P, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let words = match words.first() {
        Some(&"!ucb") => &words[1..],
        _ => &words[..],
    };
    if words.is_empty() {
        return Err(help());
    }
    P::try_parse_from(words)
        .map_err(|e| format!("{}\nSend `help` for the list of commands.", e.render().to_string().trim_end()))
}

/// A command tree's help text under a title.
pub(crate) fn render_help<P: clap::CommandFactory>(title: &str) -> String {
    format!("{title}:\n{}", P::command().render_help())
}
