//! Adversarial texts for the link recogniser (issue #11, H4): each shape repeated to 64 KiB, the
//! largest message body. A quadratic trimmer once took minutes on some of them. The unit tests
//! check what comes out; `examples/links_worst_case.rs` times them for bench/results.md.

/// The size of each text.
pub const SIZE: usize = 64 * 1024;

/// (name, text) for every shape.
pub fn texts() -> Vec<(&'static str, String)> {
    let fill = |head: &str, unit: &str| {
        let mut s = head.to_owned();
        while s.len() + unit.len() <= SIZE {
            s.push_str(unit);
        }
        s
    };
    vec![
        ("url + )", fill("http://a", ")")),
        ("url + ]", fill("http://a", "]")),
        ("url + (", fill("http://a", "(")),
        ("url + ().", fill("http://a", "().")),
        ("(", fill("", "(")),
        (")", fill("", ")")),
        ("www.", fill("", "www.")),
        ("www.a ", fill("", "www.a ")),
        ("url ", fill("", "http://a.b) ")),
        ("digits", fill("", "0")),
        ("phone numbers", fill("", "030 1234567 ")),
        ("digit groups", fill("", "1 ")),
        ("<", fill("", "<")),
        ("< + text", fill("<", "a")),
        ("<a", fill("", "<a")),
        ("<url>", fill("", "<http://a b>")),
        ("\\", fill("", "\\")),
        ("unc", fill("", "\\\\a\\b ")),
        ("unc + )", fill("\\\\a\\b", ")")),
        ("e-mail", fill("", "a@b.cd ")),
        ("e-mail labels", fill("a@", "a.")),
        ("e-mail locals", fill("", "a.")[..SIZE - 8].to_owned() + "@b.cd"),
        ("mixed", fill("", "<http://a(b)> x@y.zz 0301234567 www.q.de \\\\s\\t ")),
    ]
}
