//! Times the link recogniser on its adversarial 64 KiB texts (`links::worst_case`): run with
//! `cargo run --release --example links_worst_case`; the numbers go to bench/results.md.

use std::time::Instant;

use ucbridge::links::{LinkRules, find, to_html, worst_case};

fn main() {
    let rules = LinkRules { extension_digits: Some(2..=6), ..LinkRules::default() };
    // The numbering plan database and the regexes are built on first use, once per process.
    let _ = find("call 030 1234567 or see http://a.example <b>", &rules);
    println!("| shape | bytes | links | ms (best of 5) |\n| --- | ---: | ---: | ---: |");
    let mut worst = 0.0f64;
    for (name, text) in worst_case::texts() {
        let mut best = f64::MAX;
        let mut links = 0;
        for _ in 0..5 {
            let started = Instant::now();
            links = find(&text, &rules).len();
            let _ = to_html(&text, &rules);
            best = best.min(started.elapsed().as_secs_f64() * 1000.0);
        }
        worst = worst.max(best);
        println!("| `{}` | {} | {links} | {best:.2} |", name.replace('|', "\\|"), text.len());
    }
    println!("\nworst shape: {worst:.2} ms");
}
