//! Defence in depth: a tool call of an operator session that names the
//! control plane's own files is blocked, whatever the tool.
//!
//! The boundary itself is the operating system's: with a dedicated operator
//! account (`install --operator-user`, docs/design.md §12) the agent's
//! process cannot open those files at all. This guard is the second wall,
//! for hosts that run both as one user and against mistakes in the first:
//! every string in a call's arguments (a file tool's `path`, a terminal
//! command, a script passed to `python -c`, a patch) is cut into path-like
//! words, and each word is resolved the way a shell or a file tool would:
//! quotes and backslashes dropped, `$VAR`/`${VAR}` and `~` expanded,
//! `{a,b}` expanded, relative words taken against each working directory
//! the call may run in (its `workdir`, `terminal.cwd`, Hermes' cwd, and
//! the directory a `cd` in the same command moves to), `.`/`..` folded,
//! symlinks followed, and glob patterns matched against the protected files.
//!
//! What it cannot see: a path computed at run time (`base64 -d`, string
//! concatenation in a script, a file that holds the name). That is why the
//! account boundary, not this list, is the promise (README, "Security").

use crate::home::Home;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

/// The places an operator session's tools must never name.
pub struct Protected {
    /// Directories whose whole contents are the operator's (and, kept
    /// beside them, their canonical forms when they differ).
    roots: Vec<PathBuf>,
    /// Single files of Hermes' that govern the agent or hold its secrets:
    /// `.env` (API_SERVER_KEY), `config.yaml` (where the hook is installed),
    /// the hook allowlist and state.db (where operator rows live).
    files: Vec<PathBuf>,
    /// Directories that contain the operator's: naming one as a whole
    /// (`tar ~/.hermes`, `grep -r x .` there) reaches the operator's files.
    ancestors: Vec<PathBuf>,
    /// Names known to live in the roots, for globs when the roots cannot be
    /// listed (the hook of a separated install cannot read them); made on
    /// the first glob, since most calls have none.
    known: std::cell::OnceCell<Vec<PathBuf>>,
}

/// File names the operator keeps in its directories.
const KNOWN_NAMES: &[&str] = &[
    "users.db",
    "users.db-wal",
    "users.db-shm",
    "events.db",
    "events.db-wal",
    "events.db-shm",
    "config.yaml",
    ".env",
    "audit_signing.key",
    "audit_signing.pub",
    "checkpoints.log",
    "hook_sessions",
    "logs",
    "start.sh",
    "auto_update.sh",
    "hook.sock",
];

impl Protected {
    pub fn of(home: &Home) -> Protected {
        let root = &home.root;
        let mut roots = vec![
            home.profile_dir(),
            home.plugin_dir(),
            home.scripts_dir(),
            home.hook_socket_dir(),
        ];
        if let Ok(rd) = std::fs::read_dir(home.backups_dir()) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with("operator_") {
                    roots.push(e.path());
                }
            }
        }
        let mut files = vec![
            home.hermes_env(),
            home.hermes_config(),
            root.join("shell-hooks-allowlist.json"),
            home.state_db(),
            root.join("state.db-wal"),
            root.join("state.db-shm"),
            root.join("state.db-journal"),
        ];
        let mut ancestors = vec![
            root.clone(),
            root.join("profiles"),
            root.join("plugins"),
            root.join("scripts"),
            home.backups_dir(),
        ];
        for v in [&mut roots, &mut files, &mut ancestors] {
            let canon: Vec<PathBuf> = v
                .iter()
                .map(|p| resolve(p))
                .filter(|c| !v.contains(c))
                .collect();
            v.extend(canon);
        }
        Protected {
            roots,
            files,
            ancestors,
            known: std::cell::OnceCell::new(),
        }
    }

    fn known(&self) -> &[PathBuf] {
        self.known.get_or_init(|| {
            let mut known = Vec::new();
            for r in &self.roots {
                known.extend(KNOWN_NAMES.iter().map(|n| r.join(n)));
                known.extend(list(r, 3, 2000));
            }
            known
        })
    }

    /// Whether an absolute, folded path is (in) a protected place.
    fn covers(&self, p: &Path) -> bool {
        self.roots.iter().any(|r| p.starts_with(r))
            || self.files.iter().any(|f| p == f)
            || self.ancestors.iter().any(|a| p == a)
    }

    fn covers_either(&self, p: &Path) -> bool {
        self.covers(p) || self.covers(&resolve(p))
    }

    /// Whether a glob pattern (absolute, folded) can match a protected place.
    fn glob_covers(&self, pattern: &str) -> bool {
        let Ok(pat) = glob::Pattern::new(pattern) else {
            // Not a pattern glob understands: judged as a plain path.
            return self.covers_either(Path::new(pattern));
        };
        // `*` may match a leading dot: shells differ (dotglob), so assume it does.
        let opts = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: false,
        };
        self.roots
            .iter()
            .chain(&self.files)
            .chain(&self.ancestors)
            .chain(self.known())
            .any(|p| pat.matches_path_with(p, opts))
    }
}

/// The contents of `dir` down to `depth`, at most `cap` entries.
fn list(dir: &Path, depth: u32, cap: usize) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![(dir.to_path_buf(), 0)];
    while let Some((d, level)) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            if out.len() >= cap {
                return out;
            }
            let p = e.path();
            if level + 1 < depth && e.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push((p.clone(), level + 1));
            }
            out.push(p);
        }
    }
    out
}

/// `.` and `..` folded and repeated separators dropped, without touching
/// the file system (`..` above `/` stays at `/`, as the kernel does).
pub fn fold(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// Symlinks followed: the longest existing prefix canonicalised, the rest
/// appended (a path that does not exist yet may still be created there).
pub fn resolve(p: &Path) -> PathBuf {
    let folded = fold(p);
    let mut existing = folded.clone();
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = std::fs::canonicalize(&existing) {
            let mut out = c;
            for r in rest.iter().rev() {
                out.push(r);
            }
            return fold(&out);
        }
        match (
            existing.file_name().map(|n| n.to_os_string()),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => return folded,
        }
    }
}

/// What a call's words are resolved with.
pub struct Context<'a> {
    /// The agent's environment for `$VAR` (Hermes' own, which the hook inherits).
    pub env: &'a HashMap<String, String>,
    /// Directories a relative word may be taken against.
    pub cwds: Vec<PathBuf>,
}

/// The first word in `input` that names a protected place, as written.
pub fn first_protected(protected: &Protected, ctx: &Context<'_>, input: &Value) -> Option<String> {
    let mut strings = Vec::new();
    collect_strings(input, &mut strings, 0);
    strings
        .into_iter()
        .find_map(|s| protected_word(protected, ctx, s))
}

fn collect_strings<'v>(v: &'v Value, out: &mut Vec<&'v str>, depth: u32) {
    if depth > 32 {
        return;
    }
    match v {
        Value::String(s) => out.push(s),
        Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out, depth + 1)),
        Value::Object(o) => o.values().for_each(|x| collect_strings(x, out, depth + 1)),
        _ => {}
    }
}

/// Characters that end a path-like word in a shell command, a script or prose.
fn breaks(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            ';' | '|' | '&' | '(' | ')' | '<' | '>' | '`' | '=' | '\0'
        )
}

fn protected_word(protected: &Protected, ctx: &Context<'_>, s: &str) -> Option<String> {
    let text = expand_env(&unquote(s), ctx.env);
    let mut cwds = ctx.cwds.clone();
    let mut after_cd = false;
    for raw in text.split(breaks).filter(|w| !w.is_empty()) {
        let mut hit = None;
        let mut moved_to = None;
        for word in expand_braces(raw)
            .iter()
            .flat_map(|w| w.split([',', ':']))
            .filter(|w| !w.is_empty())
        {
            let word = expand_tilde(word, ctx.env);
            if names_operator_dir(&word) {
                hit = Some(raw);
            }
            let glob = word.contains(['*', '?', '[']);
            let candidates: Vec<PathBuf> = if word.starts_with('/') {
                vec![fold(Path::new(&word))]
            } else {
                cwds.iter().map(|c| fold(&c.join(&word))).collect()
            };
            for p in &candidates {
                let covered = if glob {
                    protected.glob_covers(&glob_with_real_prefix(p))
                } else {
                    protected.covers_either(p)
                };
                if covered {
                    hit = Some(raw);
                }
            }
            if after_cd && moved_to.is_none() {
                moved_to = Some(candidates);
            }
        }
        if hit.is_some() {
            return hit.map(str::to_string);
        }
        // `cd DIR && cat x`: later relative words are taken against DIR as well.
        if let Some(dirs) = moved_to {
            cwds.extend(dirs);
        }
        after_cd = matches!(raw, "cd" | "pushd");
    }
    None
}

/// `…/profiles/operator`, `…/plugins/operator`, `…/scripts/operator` or
/// `…/backups/operator_…` anywhere in a word, whatever it is relative to:
/// the operator's directories by their names alone.
fn names_operator_dir(word: &str) -> bool {
    let parts: Vec<&str> = word
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    parts.windows(2).any(|w| {
        (matches!(w[0], "profiles" | "plugins" | "scripts") && w[1] == "operator")
            || (w[0] == "backups" && w[1].starts_with("operator_"))
    })
}

/// A pattern whose literal leading directories have their symlinks followed.
fn glob_with_real_prefix(p: &Path) -> String {
    let mut prefix = PathBuf::from("/");
    let mut rest = Vec::new();
    let mut in_glob = false;
    for c in p.components() {
        if let Component::Normal(n) = c {
            let s = n.to_string_lossy();
            if in_glob || s.contains(['*', '?', '[']) {
                in_glob = true;
                rest.push(s.into_owned());
            } else {
                prefix.push(n);
            }
        }
    }
    let mut out = resolve(&prefix).to_string_lossy().into_owned();
    for r in rest {
        if !out.ends_with('/') {
            out.push('/');
        }
        out.push_str(&r);
    }
    out
}

/// Backslash escapes and quote characters dropped: `"$HERMES_HOME"/plug\ins`
/// and `'$HERMES_HOME/plu''gins'` name the same file as
/// `$HERMES_HOME/plugins`; a quoted path inside a script (`open('/x')`) is
/// still a word of its own, cut at the parentheses around it.
fn unquote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        match c {
            '\\' => match it.next() {
                Some('\n') | None => {}
                Some(n) => out.push(n),
            },
            '\'' | '"' => {}
            c => out.push(c),
        }
    }
    out
}

/// `$NAME` and `${NAME}` (also `${NAME:-default}`) replaced by the value in
/// `env`; an unset name expands to nothing, as in a shell.
fn expand_env(s: &str, env: &HashMap<String, String>) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let name_char = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() {
            if b[i + 1] == b'{' {
                if let Some(end) = s[i + 2..].find('}') {
                    let inner = &s[i + 2..i + 2 + end];
                    let (name, default) = match inner.split_once(":-").or(inner.split_once('-')) {
                        Some((n, d)) => (n, Some(d)),
                        None => (inner, None),
                    };
                    match env.get(name).filter(|v| !v.is_empty()) {
                        Some(v) => out.push_str(v),
                        None => out.push_str(default.unwrap_or("")),
                    }
                    i += 3 + end;
                    continue;
                }
            } else if name_char(b[i + 1]) {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && name_char(b[j]) {
                    j += 1;
                }
                if let Some(v) = env.get(&s[start..j]) {
                    out.push_str(v);
                }
                i = j;
                continue;
            }
        }
        let ch = s[i..].chars().next().unwrap_or('\0');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// `~` and `~/…` as the agent's `$HOME`; `~user/…` as that user's home.
fn expand_tilde(word: &str, env: &HashMap<String, String>) -> String {
    let Some(rest) = word.strip_prefix('~') else {
        return word.to_string();
    };
    let (user, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let home = if user.is_empty() {
        env.get("HOME").cloned()
    } else {
        home_of(user)
    };
    match home {
        Some(h) => format!("{h}{tail}"),
        None => word.to_string(),
    }
}

fn home_of(user: &str) -> Option<String> {
    let c = std::ffi::CString::new(user).ok()?;
    // SAFETY: getpwnam returns a pointer into static storage or NULL; the
    // directory is copied out at once (the hook is single-threaded here).
    unsafe {
        let pw = libc::getpwnam(c.as_ptr());
        if pw.is_null() || (*pw).pw_dir.is_null() {
            return None;
        }
        std::ffi::CStr::from_ptr((*pw).pw_dir)
            .to_str()
            .ok()
            .map(str::to_string)
    }
}

/// Shell brace expansion (`a{b,c}d` → `abd acd`), nested, at most 256 words.
fn expand_braces(word: &str) -> Vec<String> {
    let mut out = Vec::new();
    expand_into(word, &mut out, 0);
    out
}

fn expand_into(word: &str, out: &mut Vec<String>, depth: u32) {
    if out.len() >= 256 {
        return;
    }
    let Some((open, close)) = brace_pair(word).filter(|_| depth < 8) else {
        out.push(word.to_string());
        return;
    };
    let inner = &word[open + 1..close];
    let mut parts = Vec::new();
    let (mut level, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => level += 1,
            '}' => level -= 1,
            ',' if level == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    if parts.len() < 2 {
        // `{x}` is not an expansion; look no further inside this word.
        out.push(word.to_string());
        return;
    }
    for p in parts {
        expand_into(
            &format!("{}{p}{}", &word[..open], &word[close + 1..]),
            out,
            depth + 1,
        );
    }
}

/// The first `{` and its matching `}`.
fn brace_pair(s: &str) -> Option<(usize, usize)> {
    let open = s.find('{')?;
    let mut level = 0;
    for (i, c) in s[open..].char_indices() {
        match c {
            '{' => level += 1,
            '}' => {
                level -= 1;
                if level == 0 {
                    return Some((open, open + i));
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Lab {
        _dir: tempfile::TempDir,
        home: Home,
        env: HashMap<String, String>,
        user_home: PathBuf,
    }

    fn lab() -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let user_home = dir.path().join("u");
        let root = user_home.join(".hermes");
        let home = Home::at(&root);
        for d in [
            home.profile_dir(),
            home.plugin_dir(),
            root.join("skills/x"),
            root.join("backups/operator_20261201T000000Z"),
            dir.path().join("work"),
        ] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(home.users_db(), b"").unwrap();
        std::fs::write(home.signing_key(), b"k").unwrap();
        std::fs::write(root.join("notes.txt"), b"").unwrap();
        let mut env = HashMap::new();
        env.insert("HOME".into(), user_home.display().to_string());
        env.insert("HERMES_HOME".into(), root.display().to_string());
        Lab {
            _dir: dir,
            home,
            env,
            user_home,
        }
    }

    fn check(l: &Lab, cwd: &Path, input: Value) -> Option<String> {
        let p = Protected::of(&l.home);
        let ctx = Context {
            env: &l.env,
            cwds: vec![cwd.to_path_buf()],
        };
        first_protected(&p, &ctx, &input)
    }

    #[test]
    fn every_spelling_of_an_operator_file_is_caught() {
        let l = lab();
        let root = l.home.root.display().to_string();
        let work = l.user_home.parent().unwrap().join("work");
        let link = l.user_home.parent().unwrap().join("innocent");
        std::os::unix::fs::symlink(l.home.plugin_dir(), &link).unwrap();
        let filelink = work.join("notes");
        std::os::unix::fs::symlink(l.home.signing_key(), &filelink).unwrap();
        let commands = [
            format!("sqlite3 {root}/plugins/operator/users.db \"UPDATE users SET role='admin'\""),
            "sqlite3 $HERMES_HOME/plugins/operator/users.db .dump".to_string(),
            "sqlite3 \"${HERMES_HOME}/plugins/operator/users.db\" .dump".to_string(),
            "cat ~/.hermes/profiles/operator/audit_signing.key".to_string(),
            "cat ~/.hermes//profiles/./operator/audit_signing.key".to_string(),
            "cat $HOME/.hermes/skills/../profiles/operator/audit_signing.key".to_string(),
            "cat ~/.hermes/prof\\iles/oper\"\"ator/audit_signing.key".to_string(),
            "cat ~/.hermes/profiles/*/audit_signing.key".to_string(),
            "cat ~/.hermes/*/op*/*.key".to_string(),
            "cat ~/.her?es/profiles/operator/audit_signing.k[e]y".to_string(),
            "cat ~/.hermes/{skills,profiles}/operator/audit_signing.key".to_string(),
            format!("cat {}/users.db", link.display()),
            format!("cat {}/*.db", link.display()),
            format!("cat {}", filelink.display()),
            "cd ~/.hermes/plugins && sqlite3 operator/users.db .dump".to_string(),
            "cd ~/.hermes/profiles; cd operator; cat audit_signing.key".to_string(),
            format!("python3 -c \"import sqlite3; sqlite3.connect('{root}/plugins/operator/users.db')\""),
            "sqlite3 --init=$HERMES_HOME/plugins/operator/users.db".to_string(),
            format!("cp -r {root}/backups/operator_20261201T000000Z /tmp/x"),
            "tar czf /tmp/all.tgz ~/.hermes".to_string(),
            "tar czf /tmp/all.tgz $HERMES_HOME/".to_string(),
            "ls ~/.hermes/plugins".to_string(),
            "grep -r key .hermes/profiles/operator".to_string(),
            "cat $HERMES_HOME/.env".to_string(),
            "sed -i /operator/d ~/.hermes/config.yaml".to_string(),
            "sqlite3 ~/.hermes/state.db \"UPDATE sessions SET source='cli'\"".to_string(),
            "cat file://$HERMES_HOME/profiles/operator/.env".to_string(),
            "echo $(cat ~root/x) > ~/.hermes/plugins/operator/x".to_string(),
        ];
        for c in &commands {
            assert!(
                check(&l, &work, json!({"command": c})).is_some(),
                "not caught: {c}"
            );
        }
        // Relative to the agent's working directory.
        let skills = l.home.root.join("skills/x");
        for c in [
            "cat ../../plugins/operator/users.db",
            "cat ../../profiles/operator/audit_signing.key",
            "ls ../..",
        ] {
            assert!(
                check(&l, &skills, json!({"command": c})).is_some(),
                "not caught: {c}"
            );
        }
        assert!(check(
            &l,
            &l.home.profile_dir(),
            json!({"path": "audit_signing.key"})
        )
        .is_some());
        assert!(check(&l, &l.home.root, json!({"path": "."})).is_some());
        // File tools: any argument, nested too.
        for input in [
            json!({"path": format!("{root}/profiles/operator/audit_signing.key")}),
            json!({"path": "~/.hermes/plugins/operator/users.db", "offset": 1}),
            json!({"pattern": "x", "path": "$HERMES_HOME/profiles"}),
            json!({"path": "/tmp/x.txt", "content": format!("see {root}/plugins/operator/events.db")}),
            json!({"edits": [{"path": "~/.hermes/profiles/operator/config.yaml"}]}),
        ] {
            assert!(
                check(&l, &work, input.clone()).is_some(),
                "not caught: {input}"
            );
        }
    }

    #[test]
    fn ordinary_calls_pass() {
        let l = lab();
        let work = l.user_home.parent().unwrap().join("work");
        for c in [
            "ls -la",
            "ls /",
            "cd .. && ls",
            "cat ~/.hermes/notes.txt",
            "ls ~/.hermes/skills",
            "python3 -c 'print(1+1)'",
            "echo $HOME",
            "grep -r operator src/",
            "find . -name '*.rs'",
            "echo {a,b}",
            "cat ~/operator/users.db",
        ] {
            assert_eq!(check(&l, &work, json!({"command": c})), None, "{c}");
        }
        assert_eq!(
            check(
                &l,
                &work,
                json!({"path": "notes.md", "content": "plugins and operators"})
            ),
            None
        );
    }

    #[test]
    fn helpers() {
        assert_eq!(fold(Path::new("/a/./b//../c/")), PathBuf::from("/a/c"));
        assert_eq!(fold(Path::new("/../../x")), PathBuf::from("/x"));
        assert_eq!(expand_braces("a{b,c{d,e}}f"), ["abf", "acdf", "acef"]);
        assert_eq!(expand_braces("${X}"), ["${X}"]);
        let env: HashMap<String, String> = [("A".into(), "1".into())].into();
        assert_eq!(expand_env("$A/${A}/${B:-z}/$B/x", &env), "1/1/z//x");
        assert_eq!(unquote(r#"a\ b"c"'d'"#), "a bcd");
    }
}
