//! The man page sections clap cannot derive (issue 22): EXAMPLES (per
//! command, written here), FILES and ENVIRONMENT (the same for every page:
//! every command reads the same home), SEE ALSO (the pages above and below
//! in the command tree). Kept apart from `docs.rs`, which renders them.

/// `(command line, what it does)` for a leaf page, by page name. A group
/// page (`hermes-operator-user`, …) shows the first example of each of its
/// commands instead.
pub fn examples(page: &str) -> &'static [(&'static str, &'static str)] {
    match page.strip_prefix("hermes-operator-").unwrap_or(page) {
        "audit-checkpoint" => &[("hermes-operator audit checkpoint >> /mnt/offhost/checkpoints.log", "Sign the log's head; keep the line somewhere the agent cannot write.")],
        "audit-daily" => &[("hermes-operator audit daily --date 2026-09-19 --tz Europe/Berlin", "What happened that day in Berlin time.")],
        "audit-export" => &[("hermes-operator audit export --since 2026-09-01 --until 2026-10-01 --format csv > september.csv", "A month of events for a spreadsheet.")],
        "audit-prune" => &[("hermes-operator audit prune --older-than 90d --yes", "Remove events older than 90 days (cron-safe).")],
        "audit-replay" => &[("hermes-operator audit replay op_0123456789ab", "A session's events in order, each with its integrity check.")],
        "audit-tail" => &[
            ("hermes-operator audit tail -n 50 --follow", "The last 50 events, then new ones as they come."),
            ("hermes-operator audit tail --fleet --follow", "Every host's events in the fleet's database (store.url), as they come."),
        ],
        "audit-usage" => &[("hermes-operator audit usage --since 2026-09-01 --until 2026-10-01 --tz Europe/Berlin --by model", "September's spend and tokens per Berlin day, by model.")],
        "audit-user" => &[("hermes-operator audit user alice | grep tool_call", "An account, its recent sessions and events; piped, every cell is whole.")],
        "audit-verify" => &[("hermes-operator audit verify --checkpoints /mnt/offhost/checkpoints.log", "Check the hash chain and signatures, and that no checkpointed event is gone.")],
        "chat" => &[
            ("hermes-operator chat --as alice", "An interactive chat; /help lists the commands, /quit ends it."),
            ("hermes-operator chat --as alice --approve-policy deny \"How full is /var?\"", "One message; dangerous commands are denied."),
        ],
        "completions" => &[("hermes-operator completions bash > ~/.local/share/bash-completion/completions/hermes-operator", "Install bash completion for this user.")],
        "demo" => &[("hermes-operator demo --bind 127.0.0.1:8643", "The dashboard on a throwaway home full of sample data.")],
        "doctor" => &[("hermes-operator doctor --json | jq '.checks[] | select(.status != \"pass\")'", "Every check that warns or fails.")],
        "hook-install" => &[("hermes-operator hook install --dry-run", "Show the diff of Hermes' config.yaml, change nothing.")],
        "hook-status" => &[("hermes-operator hook status", "Whether the hook is installed and Hermes will run it.")],
        "hook-uninstall" => &[("hermes-operator hook uninstall --yes", "Remove the operator's hook entries from Hermes' config.yaml.")],
        "login" => &[("hermes-operator login --sso --server https://ops.example.com --output ~/.config/hermes-operator/tokens.json", "Log in through the browser; keep the tokens in a new 0600 file.")],
        "install" => &[("printf '%s\\n' \"$PW\" | hermes-operator install --admin alice --password-stdin --yes", "First setup without prompts (re-runnable).")],
        "serve" => &[("hermes-operator serve --bind 127.0.0.1:8643 --grace-period 30", "The HTTP API and dashboard; GET /healthz for uptime checks.")],
        "session-cost" => &[("hermes-operator session cost op_0123456789ab", "Tokens and cost of one session.")],
        "session-end" => &[("hermes-operator session end op_0123456789ab --reason \"done\"", "End a session.")],
        "session-export" => &[("hermes-operator session export op_0123456789ab --format md > session.md", "A session as Markdown.")],
        "session-list" => &[
            ("hermes-operator session list --user alice --since 7d", "Alice's sessions of the last week."),
            ("hermes-operator --json session list --limit 500 | jq -r '.[].session.id'", "Session ids for a script."),
        ],
        "session-new" => &[("hermes-operator session new --as alice", "A new, empty operator session for alice.")],
        "session-search" => &[("hermes-operator session search backup --user alice", "Messages that mention backup.")],
        "session-show" => &[("hermes-operator session show op_0123456789ab", "One session's fields and messages.")],
        "session-title" => &[("hermes-operator session title op_0123456789ab \"Nightly backup\"", "Rename a session.")],
        "store-migrate" => &[("hermes-operator store migrate --to postgres://operator@db.internal:5432/fleet --host web-1", "Move this host's event log into the fleet's database, the password in OPERATOR_STORE_PASSWORD (run again to move what came since).")],
        "store-checkpoint" => &[("hermes-operator store checkpoint --url postgres://operator@db.internal:5432/fleet >> /mnt/offhost/fleet-checkpoints.log", "Sign every host's head; keep the line where the database's users cannot write.")],
        "store-verify" => &[("hermes-operator store verify --url postgres://operator@db.internal:5432/fleet --checkpoints /mnt/offhost/fleet-checkpoints.log", "Verify every host's chain there and against the checkpoints; exit 3 names the first bad one.")],
        "update" => &[
            ("hermes-operator update --check", "Installed and newest Hermes; changes nothing."),
            ("hermes-operator update --yes", "What cron runs: back up, update, verify, restart."),
        ],
        "update-restore" => &[("hermes-operator update restore --dry-run", "Check the newest backup and show what would change.")],
        "update-schedule" => &[("hermes-operator update schedule \"0 3 * * 0\"", "Update every Sunday at 03:00.")],
        "update-unschedule" => &[("hermes-operator update unschedule", "Remove the crontab line.")],
        "user-add" => &[("hermes-operator user add bob --role user", "Add an account (asks for the password).")],
        "user-delete" => &[("hermes-operator user delete bob --yes", "Delete an account (never the last admin).")],
        "user-disable" => &[("hermes-operator user disable bob", "Disable an account; its tokens are revoked.")],
        "user-enable" => &[("hermes-operator user enable bob", "Allow logins again.")],
        "user-key-create" => &[("hermes-operator user key create bob --label ci --expires 90d --scope read", "A read-only personal API key, shown once.")],
        "user-key-list" => &[("hermes-operator user key list bob", "Bob's keys: id, label, prefix, scope, use, expiry.")],
        "user-key-revoke" => &[("hermes-operator user key revoke key_0123456789ab", "Revoke a key at once.")],
        "user-list" => &[("hermes-operator user list", "Every account with its role and state.")],
        "user-passwd" => &[("hermes-operator user passwd bob --must-change", "Reset bob's password; he chooses a new one at his next login.")],
        "user-role" => &[("hermes-operator user role bob auditor", "Change a role (ends bob's tokens).")],
        "user-show" => &[("hermes-operator user show bob", "One account.")],
        "user-link" => &[("hermes-operator user link alice --subject 248289761001", "Alice's provider account may log in as alice from now on.")],
        "user-unlink" => &[("hermes-operator user unlink alice", "End alice's single sign-on link and her SSO logins.")],
        "user-token" => &[("hermes-operator user token bob --ttl 60", "An access token for a script, valid for an hour.")],
        "user-totp-confirm" => &[("hermes-operator user totp confirm bob 123456", "Turn the second factor on with a code from the app.")],
        "user-totp-disable" => &[("hermes-operator user totp disable bob", "Turn bob's second factor off.")],
        "user-totp-enable" => &[("hermes-operator user totp enable bob", "Start enrolling an authenticator: its URI and recovery codes, once.")],
        "user-unlock" => &[("hermes-operator user unlock bob", "Clear the throttling of bob's logins.")],
        _ => &[],
    }
}

/// FILES, relative to HERMES_HOME: what every command may read or write.
pub const FILES: [(&str, &str); 10] = [
    (
        "profiles/operator/config.yaml",
        "the operator's configuration",
    ),
    ("profiles/operator/.env", "OPERATOR_JWT_SECRET (0600)"),
    (
        "profiles/operator/audit_signing.key, audit_signing.pub",
        "the key that signs the event log's checkpoints",
    ),
    (
        "plugins/operator/users.db",
        "accounts, tokens, API keys, second factors, budgets",
    ),
    ("plugins/operator/events.db", "the hash-chained event log"),
    (
        "state.db",
        "Hermes' sessions and messages (operator rows are written, the rest only read)",
    ),
    (
        ".env",
        "Hermes' environment: the API server key the operator uses too",
    ),
    (
        "config.yaml",
        "Hermes' configuration (the hook entries of `hook install`)",
    ),
    (
        "backups/operator_<UTC time>/",
        "what `update` backs up and `update restore` restores",
    ),
    ("scripts/operator/", "generated scripts (auto_update.sh)"),
];

/// ENVIRONMENT: the variables the binary reads.
pub const ENVIRONMENT: [(&str, &str); 8] = [
    ("HERMES_HOME", "Hermes' home directory when --hermes-home is not given (else ~/.hermes)"),
    ("API_SERVER_KEY", "Hermes' API server key when Hermes' .env does not set it (the name is hermes.api_key_env)"),
    ("OPERATOR_JWT_SECRET", "the secret access tokens are signed with, when profiles/operator/.env does not set it (the name is operator.jwt_secret_env)"),
        ("NO_COLOR", "when set and not empty, no colours or styling"),
    ("COLUMNS", "the terminal's width when it cannot be asked (tables are fitted to it)"),
    ("XDG_CONFIG_HOME", "where the systemd user unit goes (else ~/.config)"),
    ("OPERATOR_STORE_PASSWORD", "the fleet database's password for store migrate/verify (else profiles/operator/.env); never in the URL on the command line"),
    ("HERMES_OPERATOR_SYSTEMD_DIR", "where install --operator-user writes the system unit and doctor looks for it (else /etc/systemd/system)"),
];
