//! The unified diff of Hermes' config.yaml shown by `hook install
//! --dry-run` (and in `--json` as `config_diff`), by the `similar` crate.
//!
//! GNU `diff -u` format with 2 lines of context: `--- NAME` / `+++ NAME`,
//! then one `@@ -a,b +c,d @@` hunk per group of changes (a range of one
//! line is written `-a`, an empty one starts at the line before it), and
//! `\ No newline at end of file` where a file's last line has none. The
//! hand-written diff it replaces made one hunk from the first change to
//! the last, dropped the CR of CRLF lines (a line ending change showed as
//! nothing) and could not show a missing final newline.

use std::time::Duration;

/// `a` → `b` as a unified diff headed with `name`; empty when equal.
pub fn unified_diff(name: &str, a: &str, b: &str) -> String {
    similar::TextDiff::configure()
        // Myers' diff is quick on config files; on a pathological input it
        // settles for a correct but longer diff rather than taking time.
        .timeout(Duration::from_secs(1))
        .diff_lines(a, b)
        .unified_diff()
        .context_radius(2)
        .header(name, name)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::unified_diff;

    #[test]
    fn one_hunk_with_context() {
        assert_eq!(
            unified_diff("f", "a\nb\nc\nd\ne\n", "a\nb\nc\nX\nd\ne\n"),
            "--- f\n+++ f\n@@ -2,4 +2,5 @@\n b\n c\n+X\n d\n e\n"
        );
        assert_eq!(unified_diff("f", "a\nb\n", "a\nb\n"), "");
        assert_eq!(unified_diff("f", "", ""), "");
    }

    /// Appending to a file (what `hook install` does to config.yaml) and
    /// creating one.
    #[test]
    fn appended_and_new() {
        assert_eq!(
            unified_diff("config.yaml", "x: 1\n", "x: 1\nhooks:\n  a: b\n"),
            "--- config.yaml\n+++ config.yaml\n@@ -1 +1,3 @@\n x: 1\n+hooks:\n+  a: b\n"
        );
        assert_eq!(
            unified_diff("c", "", "hooks:\n"),
            "--- c\n+++ c\n@@ -0,0 +1 @@\n+hooks:\n"
        );
    }

    /// Changes far apart are separate hunks (the old diff printed every
    /// line between them as context).
    #[test]
    fn separate_hunks() {
        let a: String = (1..=20).map(|i| format!("{i}\n")).collect();
        let b: String = (1..=20)
            .map(|i| match i {
                2 => "two\n".to_string(),
                19 => "nineteen\n".to_string(),
                i => format!("{i}\n"),
            })
            .collect();
        let d = unified_diff("f", &a, &b);
        assert_eq!(
            d,
            "--- f\n+++ f\n@@ -1,4 +1,4 @@\n 1\n-2\n+two\n 3\n 4\n\
             @@ -17,4 +17,4 @@\n 17\n 18\n-19\n+nineteen\n 20\n"
        );
    }

    /// Line endings and a missing final newline show (the old diff read
    /// both with `str::lines` and saw no change).
    #[test]
    fn line_endings_show() {
        let d = unified_diff("f", "a\nb\n", "a\r\nb\n");
        assert_eq!(d, "--- f\n+++ f\n@@ -1,2 +1,2 @@\n-a\n+a\r\n b\n");
        let d = unified_diff("f", "a\nb", "a\nb\n");
        assert_eq!(
            d,
            "--- f\n+++ f\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n"
        );
    }
}
