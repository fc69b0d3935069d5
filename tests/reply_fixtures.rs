//! Reply stripping on the project's own fixtures (`tests/fixtures/replies/`), written for issue
//! 13 after a held-out set of real replies showed misses on quote headers in German and Swedish,
//! forwards embedded in replies, delimiter lines and pasted Outlook headers.
//!
//! Each fixture is `<category>/<name>.txt` (the plain-text body as the daemon gets it) and
//! `<name>.expected.txt` (the new content). The categories are the shapes: `attribution` ("On …
//! wrote:" and translations, one line and wrapped), `forward` (forward markers with an answer
//! above them, and forward-only mails), `original` ("-----Original Message-----" and
//! translations), `delimiter` (underscore, dash and equals lines above a header), `outlook`
//! (pasted header blocks, bold or with blank lines) and `kept` (ordinary mail that only looks
//! like a header and must be kept whole). Names start with the language code.
//!
//! The comparison is exact after trimming the whole text. The test prints the exact-match score
//! per category and fails unless every fixture matches.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may stop at the first surprise

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use intake311::inbound::reply::new_content;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/replies")
}

#[test]
fn reply_fixtures_all_match() -> Result<(), String> {
    let root = fixtures_dir();
    let mut categories: Vec<PathBuf> = std::fs::read_dir(&root)
        .map_err(|e| format!("{}: {e}", root.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    categories.sort();
    let mut scores: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut misses: Vec<String> = Vec::new();
    let mut languages: BTreeMap<String, usize> = BTreeMap::new();
    for dir in &categories {
        let category = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut inputs: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with(".txt") && !p.to_string_lossy().ends_with(".expected.txt"))
            .collect();
        inputs.sort();
        for input in inputs {
            let name = input.file_stem().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let expected_path = dir.join(format!("{name}.expected.txt"));
            let body = std::fs::read_to_string(&input).map_err(|e| format!("{}: {e}", input.display()))?;
            let expected =
                std::fs::read_to_string(&expected_path).map_err(|e| format!("{}: {e}", expected_path.display()))?;
            let got = new_content(&body);
            let entry = scores.entry(category.clone()).or_default();
            entry.1 += 1;
            *languages.entry(name.split('_').next().unwrap_or("").to_string()).or_default() += 1;
            if got.trim() == expected.trim() {
                entry.0 += 1;
            } else {
                misses.push(format!("{category}/{name}:\n  expected: {:?}\n  got:      {:?}", expected.trim(), got));
            }
        }
    }
    println!("\n==== reply fixtures (exact match) ====");
    let (mut pass, mut total) = (0, 0);
    for (category, (p, t)) in &scores {
        println!("{category}: {p}/{t}");
        pass += p;
        total += t;
    }
    println!("all: {pass}/{total}");
    let langs: Vec<String> = languages.iter().map(|(l, n)| format!("{l} {n}")).collect();
    println!("fixtures per language: {}", langs.join(", "));
    for m in &misses {
        println!("MISS {m}");
    }
    if total < 64 {
        return Err(format!("only {total} fixtures found under {}", root.display()));
    }
    if misses.is_empty() { Ok(()) } else { Err(format!("{} of {total} reply fixtures do not match", misses.len())) }
}
