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

/// Issue 22: every man page has EXAMPLES (at least one, each a
/// `hermes-operator` command line), FILES, ENVIRONMENT and SEE ALSO (naming
/// pages that exist), after the sections clap derives.
#[test]
fn every_man_page_has_examples_files_environment_and_see_also() {
    let rendered = hermes_operator::cli::docs::render();
    let pages: BTreeSet<String> = rendered
        .iter()
        .filter_map(|(r, _)| {
            r.strip_prefix("man/")?
                .strip_suffix(".1")
                .map(str::to_string)
        })
        .collect();
    assert!(pages.len() > 40, "{pages:?}");
    for (rel, bytes) in rendered.iter().filter(|(r, _)| r.starts_with("man/")) {
        let page = String::from_utf8_lossy(bytes);
        let at = |section: &str| {
            page.find(&format!(".SH {section}\n"))
                .unwrap_or_else(|| panic!("{rel} has no {section}"))
        };
        let (synopsis, examples, files, env, see) = (
            at("SYNOPSIS"),
            at("EXAMPLES"),
            at("FILES"),
            at("ENVIRONMENT"),
            at("\"SEE ALSO\""),
        );
        assert!(
            synopsis < env && env < files && files < examples && examples < see,
            "{rel}: order"
        );
        let example_text = &page[examples..see];
        assert!(
            example_text.contains(".TP\n\\fBhermes\\-operator ")
                || example_text.contains(".TP\n\\fBprintf "),
            "{rel}: no example command: {example_text}"
        );
        for var in ["HERMES_HOME", "NO_COLOR", "API_SERVER_KEY"] {
            assert!(page[env..files].contains(var), "{rel}: {var}");
        }
        for file in ["users.db", "events.db", "state.db", "config.yaml"] {
            assert!(page[files..examples].contains(file), "{rel}: {file}");
        }
        // SEE ALSO names pages that exist (the top page: its commands).
        let see_also = &page[see..];
        let named: Vec<&str> = see_also
            .split("\\fB")
            .skip(1)
            .filter_map(|s| s.split("\\fR(1)").next())
            .collect();
        assert!(!named.is_empty(), "{rel}: SEE ALSO names no page");
        for n in named {
            assert!(
                pages.contains(&n.replace("\\-", "-")),
                "{rel}: SEE ALSO {n}"
            );
        }
    }
}
