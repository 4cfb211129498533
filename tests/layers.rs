//! The layers of `src/` (ARCHITECTURE.md, "Layers"): a top-level folder may use the folders
//! below it and those beside it in its layer (as long as they form no cycle), never one above.
//! Read from the source: every `crate::<folder>` path outside comments and string literals
//! (`use crate::x`, `use crate::{x, y}`, `crate::x::f()`, `$crate::x`); `super::` paths are
//! not followed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom to top. `config` is the file format: it composes the libraries' sections (so it sits
/// above them) and is handed to the adapters, the bridge and the start-up.
const LAYERS: &[&[&str]] = &[
    &["core"],
    &["store"],
    // The libraries.
    &["contacts", "links", "commands", "calls", "sms", "chatbot"],
    &["config"],
    // The adapters.
    &["matrix", "xmpp", "http"],
    &["bridge"],
    &["app"],
];

/// One `crate::<to>` reference.
struct Edge {
    from: String,
    to: String,
    file: PathBuf,
    line: usize,
}

fn layer_of(folder: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&folder))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source with comments and string and char literals blanked out (newlines kept, so line
/// numbers stay right).
fn code_only(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident_char(chars.get(i.wrapping_sub(1))) {
            // A raw string: r"…", r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let closing: String = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
            let rest: String = chars[j + 1..].iter().collect();
            let len = rest.find(&closing).map_or(rest.chars().count(), |end| rest[..end].chars().count());
            let end = (j + 1 + len + closing.len()).min(chars.len());
            out.extend(chars[i..end].iter().map(|c| blank(*c)));
            i = j + 1 + len + closing.len();
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                let step = if chars[i] == '\\' { 2 } else { 1 };
                out.extend(chars[i..(i + step).min(chars.len())].iter().map(|c| blank(*c)));
                i += step;
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' && next == Some('\\') {
            // An escaped char literal: '\n', '\'', '\u{..}'.
            out.push(' ');
            i += 2;
            while i < chars.len() && chars[i] != '\'' {
                out.push(' ');
                i += 1;
            }
            out.push_str("  ");
            i += 1;
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            out.push_str("   ");
            i += 3;
        } else {
            // Code, or a lifetime's quote.
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_char(c: Option<&char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || *c == '_')
}

/// The first path segments after each `crate::` (or `$crate::`) in `code`, with their lines.
fn crate_refs(code: &str) -> Vec<(String, usize)> {
    let mut refs = Vec::new();
    let line_of = |at: usize| code[..at].matches('\n').count() + 1;
    for (at, _) in code.match_indices("crate::") {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `my_crate::`
        }
        let after = at + "crate::".len();
        let rest = code[after..].trim_start();
        let rest_at = code.len() - rest.len();
        if rest.starts_with('{') {
            // `crate::{a::X, b, c::{Y, Z}}`: the first segment of each item of the group.
            let (mut depth, mut item_starts) = (0, true);
            for (i, c) in code[rest_at + 1..].char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_starts = true,
                    c if c.is_whitespace() => {}
                    c if item_starts && (c.is_alphanumeric() || c == '_') => {
                        let at = rest_at + 1 + i;
                        refs.push((ident_at(code, at), line_of(at)));
                        item_starts = false;
                    }
                    _ => item_starts = false,
                }
            }
        } else {
            refs.push((ident_at(code, rest_at), line_of(at)));
        }
    }
    refs
}

fn ident_at(code: &str, at: usize) -> String {
    code[at..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
}

fn edges() -> Vec<Edge> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut edges = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&src).expect("under src/").to_owned();
        let top = relative.iter().next().expect("a path").to_string_lossy().trim_end_matches(".rs").to_owned();
        // `lib.rs` declares the folders; `main.rs` is the binary, a crate of its own.
        if top == "lib" || top == "main" {
            continue;
        }
        let source = std::fs::read_to_string(&file).expect("read a source file");
        for (to, line) in crate_refs(&code_only(&source)) {
            if to != top && !to.is_empty() {
                edges.push(Edge { from: top.clone(), to, file: Path::new("src").join(&relative), line });
            }
        }
    }
    edges
}

#[test]
fn every_folder_is_in_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&src).expect("read src/") {
        let name = entry.expect("an entry").file_name().to_string_lossy().trim_end_matches(".rs").to_owned();
        if name != "lib" && name != "main" && layer_of(&name).is_none() {
            missing.push(name);
        }
    }
    assert!(missing.is_empty(), "put these top-level folders into LAYERS in tests/layers.rs: {missing:?}");
}

#[test]
fn no_folder_uses_one_above_it() {
    let mut upward = Vec::new();
    for e in edges() {
        let (Some(from), Some(to)) = (layer_of(&e.from), layer_of(&e.to)) else {
            continue; // not a folder (`crate::Something` at the root) or one the other test reports
        };
        if to > from {
            upward.push(format!("{}:{}: {} uses {} (a layer above it)", e.file.display(), e.line, e.from, e.to));
        }
    }
    assert!(upward.is_empty(), "references that go up the layers:\n{}", upward.join("\n"));
}

#[test]
fn the_folders_of_a_layer_form_no_cycle() {
    let edges = edges();
    let mut graph: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for e in &edges {
        if layer_of(&e.from).is_some() && layer_of(&e.from) == layer_of(&e.to) {
            graph.entry(&e.from).or_default().insert(&e.to);
        }
    }
    // Depth-first search; a folder met again while still on the path closes a cycle.
    fn visit<'a>(
        node: &'a str,
        graph: &BTreeMap<&'a str, BTreeSet<&'a str>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<&'a str>> {
        if let Some(at) = path.iter().position(|n| *n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node);
            return Some(cycle);
        }
        if !done.insert(node) {
            return None;
        }
        path.push(node);
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, &graph, &mut Vec::new(), &mut done) {
            let places: Vec<String> = cycle
                .windows(2)
                .filter_map(|w| edges.iter().find(|e| e.from == w[0] && e.to == w[1]))
                .map(|e| format!("{}:{}: {} uses {}", e.file.display(), e.line, e.from, e.to))
                .collect();
            panic!("a cycle between folders of one layer: {}\n{}", cycle.join(" → "), places.join("\n"));
        }
    }
}

#[test]
fn the_reader_finds_every_form_of_reference() {
    let code = code_only(
        "use crate::core::ids::RoomId;\nuse crate::{store::Store, links::{self, LinkRules}};\n\
         // crate::bridge in a comment\nlet s = \"crate::bridge\"; let r = r#\"crate::app\"#;\n\
         fn f<'a>(x: &'a str) -> char { crate::sms::f(); '\\'' }\n$crate::calls::event::X\n",
    );
    let refs = crate_refs(&code);
    let found: Vec<(&str, usize)> = refs.iter().map(|(n, l)| (n.as_str(), *l)).collect();
    assert_eq!(found, [("core", 1), ("store", 2), ("links", 2), ("sms", 5), ("calls", 6)]);
}

/// SQLite takes one writer at a time, and the store queues its writers for that turn
/// (`Store::writer`, `Store::begin`). A statement run on the pool itself skips the queue and
/// waits in SQLite's busy handler instead, so in `src/store` only reads (`fetch_*`) go to the
/// pool directly; the health ping is the one `execute` allowed there.
#[test]
fn store_writes_take_the_write_turn() {
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store"), &mut files);
    let mut bypass = Vec::new();
    for file in files {
        let source = std::fs::read_to_string(&file).expect("read a store file");
        for (n, (code, raw)) in code_only(&source).lines().zip(source.lines()).enumerate() {
            if code.contains("execute(&self.pool)") && !raw.contains("ctx(\"ping\")") {
                bypass.push(format!("{}:{}", file.display(), n + 1));
            }
        }
    }
    assert!(
        bypass.is_empty(),
        "writes that skip the write turn (use `&mut *self.writer().await?`):\n{}",
        bypass.join("\n")
    );
}
