//! The committed completions and man pages match the clap definitions.
//! If this fails: `cargo run --example gen_docs` and review the diff.

use std::collections::BTreeSet;

#[test]
fn completions_and_man_pages_are_current() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let rendered = hermes_operator::cli::docs::render();
    let mut stale = Vec::new();
    for (rel, bytes) in &rendered {
        match std::fs::read(root.join(rel)) {
            Ok(b) if &b == bytes => {}
            _ => stale.push(rel.clone()),
        }
    }
    let expected: BTreeSet<String> = rendered.iter().map(|(r, _)| r.clone()).collect();
    for dir in ["completions", "man"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap().flatten() {
            let rel = format!("{dir}/{}", e.file_name().to_string_lossy());
            if !expected.contains(&rel) {
                stale.push(format!("{rel} (no longer generated)"));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale generated docs: {stale:?}\nrun `cargo run --example gen_docs` and commit the result"
    );
    // The exit code table is in the top-level man page.
    let top = rendered
        .iter()
        .find(|(r, _)| r == "man/hermes-operator.1")
        .unwrap();
    assert!(String::from_utf8_lossy(&top.1).contains("integrity failure"));
}

/// README's "Exit codes" table has a row for every code `Kind::exit_code`
/// gives (and the man page, generated from it, has them all by construction).
#[test]
fn readme_lists_every_exit_code() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let section = readme
        .split("## Exit codes")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("README has an Exit codes section");
    for (code, _) in hermes_operator::cli::docs::exit_codes() {
        assert!(
            section.contains(&format!("\n| {code} | ")),
            "README's Exit codes table lacks {code}"
        );
    }
}
