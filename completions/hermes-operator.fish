# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_hermes_operator_global_optspecs
    string join \n hermes-home= json store= h/help V/version
end

function __fish_hermes_operator_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_hermes_operator_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_hermes_operator_using_subcommand
    set -l cmd (__fish_hermes_operator_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c hermes-operator -n "__fish_hermes_operator_needs_command" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_needs_command" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_needs_command" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_needs_command" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_needs_command" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_needs_command" -f -a "user" -d 'Manage operator accounts (users.db)'
complete -c hermes-operator -n "__fish_hermes_operator_needs_command" -f -a "session" -d 'Read and manage operator sessions in Hermes\' state.db'
complete -c hermes-operator -n "__fish_hermes_operator_needs_command" -f -a "audit" -d 'The tamper-evident event log: verify, replay, reports, export'
complete -c hermes-operator -n "__fish_hermes_operator_needs_command" -f -a "store" -d 'The fleet\'s PostgreSQL: move this host\'s event log there, verify every host\'s chain'
complete -c hermes-operator -n "__fish_hermes_operator_needs_command" -f -a "chat" -d 'Chat through the real Hermes agent as an operator user'
complete -c hermes-operator -n "__fish_hermes_operator_needs_command" -f -a "hook" -d 'Hermes shell hooks: bare `hook` handles one event from stdin (Hermes runs it); install / uninstall / status manage it in Hermes\' config'
complete -c hermes-operator -n "__fish_hermes_operator_needs_command" -f -a "update" -d 'Back up, run `hermes update --yes`, verify, restart (cron: `update --yes`); schedule it'
complete -c hermes-operator -n "__fish_hermes_operator_needs_command" -f -a "install" -d 'Set up this server: directories, secrets, config, first admin, scripts, systemd unit (idempotent)'
complete -c hermes-operator -n "__fish_hermes_operator_needs_command" -f -a "doctor" -d 'Check the installation: paths, permissions, secrets, state.db, Hermes API, hook, port, updates, audit chain'
complete -c hermes-operator -n "__fish_hermes_operator_needs_command" -f -a "serve" -d 'The embedded HTTP mode: JSON API, SSE chat, the dashboard'
complete -c hermes-operator -n "__fish_hermes_operator_needs_command" -f -a "completions" -d 'Print the shell completion script (bash, zsh or fish) on stdout'
complete -c hermes-operator -n "__fish_hermes_operator_needs_command" -f -a "demo" -d 'Try it: the dashboard on a throwaway home full of sample data (deleted on exit)'
complete -c hermes-operator -n "__fish_hermes_operator_needs_command" -f -a "login" -d 'Log in to a remote `serve` with single sign-on (browser + loopback); prints the tokens'
complete -c hermes-operator -n "__fish_hermes_operator_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and not __fish_seen_subcommand_from add list show passwd role disable enable delete token unlock totp key link unlink help" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and not __fish_seen_subcommand_from add list show passwd role disable enable delete token unlock totp key link unlink help" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and not __fish_seen_subcommand_from add list show passwd role disable enable delete token unlock totp key link unlink help" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and not __fish_seen_subcommand_from add list show passwd role disable enable delete token unlock totp key link unlink help" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and not __fish_seen_subcommand_from add list show passwd role disable enable delete token unlock totp key link unlink help" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and not __fish_seen_subcommand_from add list show passwd role disable enable delete token unlock totp key link unlink help" -f -a "add" -d 'Create an account (password from a hidden prompt, or --password-stdin)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and not __fish_seen_subcommand_from add list show passwd role disable enable delete token unlock totp key link unlink help" -f -a "list" -d 'List accounts'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and not __fish_seen_subcommand_from add list show passwd role disable enable delete token unlock totp key link unlink help" -f -a "show" -d 'Show one account (its `id` is what operator sessions carry as user_id)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and not __fish_seen_subcommand_from add list show passwd role disable enable delete token unlock totp key link unlink help" -f -a "passwd" -d 'Change a password (revokes the user\'s tokens)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and not __fish_seen_subcommand_from add list show passwd role disable enable delete token unlock totp key link unlink help" -f -a "role" -d 'Change a role (revokes the user\'s tokens)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and not __fish_seen_subcommand_from add list show passwd role disable enable delete token unlock totp key link unlink help" -f -a "disable" -d 'Disable an account (revokes its tokens)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and not __fish_seen_subcommand_from add list show passwd role disable enable delete token unlock totp key link unlink help" -f -a "enable" -d 'Enable a disabled account'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and not __fish_seen_subcommand_from add list show passwd role disable enable delete token unlock totp key link unlink help" -f -a "delete" -d 'Delete an account (asks first; --yes for scripts)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and not __fish_seen_subcommand_from add list show passwd role disable enable delete token unlock totp key link unlink help" -f -a "token" -d 'Print an access token (JWT) for scripts; needs the JWT secret'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and not __fish_seen_subcommand_from add list show passwd role disable enable delete token unlock totp key link unlink help" -f -a "unlock" -d 'Clear the throttling of logins for a username (failed attempts from every address)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and not __fish_seen_subcommand_from add list show passwd role disable enable delete token unlock totp key link unlink help" -f -a "totp" -d 'Two-factor login (TOTP) for an account'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and not __fish_seen_subcommand_from add list show passwd role disable enable delete token unlock totp key link unlink help" -f -a "key" -d 'Personal API keys (OpenAI-compatible clients, scripts)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and not __fish_seen_subcommand_from add list show passwd role disable enable delete token unlock totp key link unlink help" -f -a "link" -d 'Let a single sign-on user (the provider\'s subject) log in as this existing account'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and not __fish_seen_subcommand_from add list show passwd role disable enable delete token unlock totp key link unlink help" -f -a "unlink" -d 'End an account\'s single sign-on link (its SSO logins end too)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and not __fish_seen_subcommand_from add list show passwd role disable enable delete token unlock totp key link unlink help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from add" -l role -d 'Role of the new account' -r -f -a "admin\t''
auditor\t''
user\t''
viewer\t''"
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from add" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from add" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from add" -l password-stdin -d 'Read the password from the first line of stdin instead of prompting'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from add" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from add" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from list" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from list" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from list" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from show" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from show" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from show" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from show" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from passwd" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from passwd" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from passwd" -l password-stdin -d 'Read the new password from the first line of stdin instead of prompting'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from passwd" -l must-change -d 'A reset: the user must choose a new password at their next login'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from passwd" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from passwd" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from passwd" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from role" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from role" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from role" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from role" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from role" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from disable" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from disable" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from disable" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from disable" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from disable" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from enable" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from enable" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from enable" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from enable" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from enable" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from delete" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from delete" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from delete" -s y -l yes -d 'Do not ask for confirmation'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from delete" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from delete" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from delete" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from token" -l ttl -d 'Lifetime in minutes (default 120, at most 43200 = 30 days)' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from token" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from token" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from token" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from token" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from token" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from unlock" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from unlock" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from unlock" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from unlock" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from unlock" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from totp" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from totp" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from totp" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from totp" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from totp" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from totp" -f -a "enable" -d 'Start enrolling an authenticator: prints the otpauth URI (and a QR code on a terminal) and 10 one-time recovery codes, once. Logins need a code only after `user totp confirm`'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from totp" -f -a "confirm" -d 'Confirm the enrolment with the authenticator\'s current 6-digit code'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from totp" -f -a "disable" -d 'Remove two-factor login (and its recovery codes) from an account'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from totp" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from key" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from key" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from key" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from key" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from key" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from key" -f -a "create" -d 'Make a key for an account; it is printed once and stored only as a hash'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from key" -f -a "list" -d 'List keys (of one account, or all): id, label, prefix, scope, use, expiry'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from key" -f -a "revoke" -d 'Revoke a key at once'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from key" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from link" -l subject -d 'The provider\'s `sub` (subject) of that user' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from link" -l issuer -d 'The provider\'s issuer URL (default: auth.oidc.issuer)' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from link" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from link" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from link" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from link" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from link" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from unlink" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from unlink" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from unlink" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from unlink" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from unlink" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "add" -d 'Create an account (password from a hidden prompt, or --password-stdin)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "list" -d 'List accounts'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show one account (its `id` is what operator sessions carry as user_id)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "passwd" -d 'Change a password (revokes the user\'s tokens)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "role" -d 'Change a role (revokes the user\'s tokens)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "disable" -d 'Disable an account (revokes its tokens)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "enable" -d 'Enable a disabled account'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "delete" -d 'Delete an account (asks first; --yes for scripts)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "token" -d 'Print an access token (JWT) for scripts; needs the JWT secret'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "unlock" -d 'Clear the throttling of logins for a username (failed attempts from every address)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "totp" -d 'Two-factor login (TOTP) for an account'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "key" -d 'Personal API keys (OpenAI-compatible clients, scripts)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "link" -d 'Let a single sign-on user (the provider\'s subject) log in as this existing account'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "unlink" -d 'End an account\'s single sign-on link (its SSO logins end too)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and not __fish_seen_subcommand_from list show search cost export title end new help" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and not __fish_seen_subcommand_from list show search cost export title end new help" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and not __fish_seen_subcommand_from list show search cost export title end new help" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and not __fish_seen_subcommand_from list show search cost export title end new help" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and not __fish_seen_subcommand_from list show search cost export title end new help" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and not __fish_seen_subcommand_from list show search cost export title end new help" -f -a "list" -d 'List sessions, newest first (operator sessions unless --all-sources)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and not __fish_seen_subcommand_from list show search cost export title end new help" -f -a "show" -d 'Show one session and its messages'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and not __fish_seen_subcommand_from list show search cost export title end new help" -f -a "search" -d 'Full-text search in messages (Hermes\' FTS5 index; CJK via trigram)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and not __fish_seen_subcommand_from list show search cost export title end new help" -f -a "cost" -d 'Token usage and cost of one session, per model'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and not __fish_seen_subcommand_from list show search cost export title end new help" -f -a "export" -d 'Export one session as JSON or a Markdown transcript (stdout)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and not __fish_seen_subcommand_from list show search cost export title end new help" -f -a "title" -d 'Set an operator session\'s title (empty text clears it)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and not __fish_seen_subcommand_from list show search cost export title end new help" -f -a "end" -d 'End an operator session'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and not __fish_seen_subcommand_from list show search cost export title end new help" -f -a "new" -d 'Create a new, empty operator session for a user'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and not __fish_seen_subcommand_from list show search cost export title end new help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from list" -l user -d 'Only sessions of this operator user (username)' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from list" -l since -d 'Only sessions started since: YYYY-MM-DD, RFC 3339, or a duration like 7d, 12h' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from list" -l limit -d 'At most this many sessions' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from list" -l offset -d 'Skip this many sessions (paging)' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from list" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from list" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from list" -l all-sources -d 'Include Hermes\' own sessions (every source), not only operator sessions'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from list" -l all-hosts -d 'Every host\'s operator sessions, from the fleet\'s database (store.url), with a host column'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from list" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from show" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from show" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from show" -l all-sources -d 'Allow Hermes\' own (non-operator) sessions'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from show" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from show" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from search" -l user -d 'Only sessions of this operator user (username)' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from search" -l limit -d 'At most this many hits' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from search" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from search" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from search" -l all-sources -d 'Search Hermes\' own sessions too (every source)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from search" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from search" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from search" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from cost" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from cost" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from cost" -l all-sources -d 'Allow Hermes\' own (non-operator) sessions'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from cost" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from cost" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from cost" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from export" -l format -d 'json: {session, messages}; md: a readable Markdown transcript [default: json]' -r -f -a "json\t''
md\t''"
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from export" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from export" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from export" -l all-sources -d 'Allow Hermes\' own (non-operator) sessions'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from export" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from export" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from export" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from title" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from title" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from title" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from title" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from title" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from end" -l reason -d 'Why (stored as Hermes\' end_reason)' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from end" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from end" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from end" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from end" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from end" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from new" -l as -d 'The operator user who owns the session (role admin or user)' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from new" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from new" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from new" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from new" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from new" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from help" -f -a "list" -d 'List sessions, newest first (operator sessions unless --all-sources)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show one session and its messages'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from help" -f -a "search" -d 'Full-text search in messages (Hermes\' FTS5 index; CJK via trigram)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from help" -f -a "cost" -d 'Token usage and cost of one session, per model'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from help" -f -a "export" -d 'Export one session as JSON or a Markdown transcript (stdout)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from help" -f -a "title" -d 'Set an operator session\'s title (empty text clears it)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from help" -f -a "end" -d 'End an operator session'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from help" -f -a "new" -d 'Create a new, empty operator session for a user'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand session; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and not __fish_seen_subcommand_from verify checkpoint replay daily user usage export tail prune help" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and not __fish_seen_subcommand_from verify checkpoint replay daily user usage export tail prune help" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and not __fish_seen_subcommand_from verify checkpoint replay daily user usage export tail prune help" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and not __fish_seen_subcommand_from verify checkpoint replay daily user usage export tail prune help" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and not __fish_seen_subcommand_from verify checkpoint replay daily user usage export tail prune help" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and not __fish_seen_subcommand_from verify checkpoint replay daily user usage export tail prune help" -f -a "verify" -d 'Check the whole hash chain (and signed checkpoints); names the first bad event'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and not __fish_seen_subcommand_from verify checkpoint replay daily user usage export tail prune help" -f -a "checkpoint" -d 'Sign the current head of the log; prints one line to keep off-host'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and not __fish_seen_subcommand_from verify checkpoint replay daily user usage export tail prune help" -f -a "replay" -d 'A session\'s events in order, as a timeline with integrity status'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and not __fish_seen_subcommand_from verify checkpoint replay daily user usage export tail prune help" -f -a "daily" -d 'Daily usage: sessions, messages, tokens, cost — by user and by model'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and not __fish_seen_subcommand_from verify checkpoint replay daily user usage export tail prune help" -f -a "user" -d 'One user\'s account, sessions, usage and recent events'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and not __fish_seen_subcommand_from verify checkpoint replay daily user usage export tail prune help" -f -a "usage" -d 'Spend and tokens per local day (or hour) in a time zone, by user, key or model'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and not __fish_seen_subcommand_from verify checkpoint replay daily user usage export tail prune help" -f -a "export" -d 'Export events in a time range as NDJSON or CSV'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and not __fish_seen_subcommand_from verify checkpoint replay daily user usage export tail prune help" -f -a "tail" -d 'The newest events; --follow keeps printing new ones'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and not __fish_seen_subcommand_from verify checkpoint replay daily user usage export tail prune help" -f -a "prune" -d 'Delete old events, leaving a signed anchor so the chain still verifies'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and not __fish_seen_subcommand_from verify checkpoint replay daily user usage export tail prune help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from verify" -l checkpoints -d 'A file of checkpoint lines kept off-host (from `audit checkpoint`); detects a truncated tail or a rebuilt log. The local copy is always checked too' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from verify" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from verify" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from verify" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from verify" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from verify" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from checkpoint" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from checkpoint" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from checkpoint" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from checkpoint" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from checkpoint" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from replay" -l host -d 'With --fleet: only this host\'s events' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from replay" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from replay" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from replay" -l fleet -d 'Read the fleet\'s database (store.url): the session on whichever host holds it'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from replay" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from replay" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from replay" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from daily" -l date -d 'The day to report (YYYY-MM-DD) [default: today in --tz]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from daily" -l tz -d 'Time zone the day is taken in (IANA name, e.g. Asia/Shanghai)' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from daily" -l host -d 'With --fleet: only this host\'s' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from daily" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from daily" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from daily" -l fleet -d 'Read the fleet\'s database (store.url): every host\'s sessions and events'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from daily" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from daily" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from daily" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from user" -l host -d 'With --fleet: only this host\'s' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from user" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from user" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from user" -l fleet -d 'Read the fleet\'s database (store.url): the user\'s sessions and events on every host'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from user" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from user" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from user" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from usage" -l since -d 'First local day (YYYY-MM-DD) [default: 7 days before --until]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from usage" -l until -d 'First local day NOT included (YYYY-MM-DD) [default: tomorrow in --tz]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from usage" -l tz -d 'Time zone of the days (IANA name, e.g. Europe/Berlin, or an offset like +05:30)' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from usage" -l by -d 'Group by user, personal API key or model' -r -f -a "user\t''
key\t''
model\t''"
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from usage" -l user -d 'Only this user\'s usage' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from usage" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from usage" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from usage" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from usage" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from usage" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from export" -l since -d 'Start (inclusive): YYYY-MM-DD or an RFC 3339 time' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from export" -l until -d 'End (exclusive): YYYY-MM-DD or an RFC 3339 time' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from export" -l format -r -f -a "ndjson\t''
csv\t''"
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from export" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from export" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from export" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from export" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from export" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from tail" -s n -l lines -d 'How many of the newest events to show first' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from tail" -l interval-ms -d 'Poll interval for --follow, in milliseconds' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from tail" -l host -d 'With --fleet: only this host\'s events' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from tail" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from tail" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from tail" -s f -l follow -d 'Keep running and print new events as they are appended'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from tail" -l fleet -d 'Every host\'s log in the fleet\'s database (store.url), with a host column'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from tail" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from tail" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from tail" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from prune" -l older-than -d 'Remove events older than this: e.g. 90d, 12w, 36h [default: audit.log_retention_days]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from prune" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from prune" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from prune" -s y -l yes -d 'Do not ask for confirmation'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from prune" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from prune" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from prune" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "verify" -d 'Check the whole hash chain (and signed checkpoints); names the first bad event'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "checkpoint" -d 'Sign the current head of the log; prints one line to keep off-host'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "replay" -d 'A session\'s events in order, as a timeline with integrity status'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "daily" -d 'Daily usage: sessions, messages, tokens, cost — by user and by model'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "user" -d 'One user\'s account, sessions, usage and recent events'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "usage" -d 'Spend and tokens per local day (or hour) in a time zone, by user, key or model'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "export" -d 'Export events in a time range as NDJSON or CSV'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "tail" -d 'The newest events; --follow keeps printing new ones'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "prune" -d 'Delete old events, leaving a signed anchor so the chain still verifies'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand audit; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand store; and not __fish_seen_subcommand_from migrate verify checkpoint help" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand store; and not __fish_seen_subcommand_from migrate verify checkpoint help" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand store; and not __fish_seen_subcommand_from migrate verify checkpoint help" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand store; and not __fish_seen_subcommand_from migrate verify checkpoint help" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand store; and not __fish_seen_subcommand_from migrate verify checkpoint help" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand store; and not __fish_seen_subcommand_from migrate verify checkpoint help" -f -a "migrate" -d 'Move this host\'s event log into PostgreSQL as it is (no event re-hashed); run again to move what came since'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand store; and not __fish_seen_subcommand_from migrate verify checkpoint help" -f -a "verify" -d 'Verify every host\'s chain in PostgreSQL (or one, --host), against fleet checkpoints'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand store; and not __fish_seen_subcommand_from migrate verify checkpoint help" -f -a "checkpoint" -d 'Sign every host\'s head with this host\'s audit key; prints one line to keep off the database'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand store; and not __fish_seen_subcommand_from migrate verify checkpoint help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand store; and __fish_seen_subcommand_from migrate" -l to -d 'The fleet\'s database: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand store; and __fish_seen_subcommand_from migrate" -l host -d 'This host\'s name in the fleet [default: the system\'s host name]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand store; and __fish_seen_subcommand_from migrate" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand store; and __fish_seen_subcommand_from migrate" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand store; and __fish_seen_subcommand_from migrate" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand store; and __fish_seen_subcommand_from migrate" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand store; and __fish_seen_subcommand_from migrate" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand store; and __fish_seen_subcommand_from verify" -l url -d 'The fleet\'s database: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand store; and __fish_seen_subcommand_from verify" -l host -d 'Only this host\'s chain' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand store; and __fish_seen_subcommand_from verify" -l checkpoints -d 'A file of fleet checkpoint lines kept off the database (from `store checkpoint`): finds a rewrite or truncation that also moved the recorded heads, and deleted hosts' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand store; and __fish_seen_subcommand_from verify" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand store; and __fish_seen_subcommand_from verify" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand store; and __fish_seen_subcommand_from verify" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand store; and __fish_seen_subcommand_from verify" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand store; and __fish_seen_subcommand_from verify" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand store; and __fish_seen_subcommand_from checkpoint" -l url -d 'The fleet\'s database: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand store; and __fish_seen_subcommand_from checkpoint" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand store; and __fish_seen_subcommand_from checkpoint" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand store; and __fish_seen_subcommand_from checkpoint" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand store; and __fish_seen_subcommand_from checkpoint" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand store; and __fish_seen_subcommand_from checkpoint" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand store; and __fish_seen_subcommand_from help" -f -a "migrate" -d 'Move this host\'s event log into PostgreSQL as it is (no event re-hashed); run again to move what came since'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand store; and __fish_seen_subcommand_from help" -f -a "verify" -d 'Verify every host\'s chain in PostgreSQL (or one, --host), against fleet checkpoints'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand store; and __fish_seen_subcommand_from help" -f -a "checkpoint" -d 'Sign every host\'s head with this host\'s audit key; prints one line to keep off the database'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand store; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand chat" -l as -d 'The operator user this turn runs as (role admin or user)' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand chat" -l session -d 'Continue this operator session (default: start a new one)' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand chat" -l model -d 'A model alias Hermes offers (see its /v1/models)' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand chat" -l approve-policy -d 'How approval requests are answered; `prompt` asks on the terminal and denies when there is none' -r -f -a "prompt\t'Ask on the terminal; deny when there is none'
deny\t'Deny every request'
once\t'Approve each request once'
session\t'Approve the command pattern for the rest of the session'"
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand chat" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand chat" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand chat" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand chat" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand chat" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand hook; and not __fish_seen_subcommand_from install uninstall status help" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand hook; and not __fish_seen_subcommand_from install uninstall status help" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand hook; and not __fish_seen_subcommand_from install uninstall status help" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand hook; and not __fish_seen_subcommand_from install uninstall status help" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand hook; and not __fish_seen_subcommand_from install uninstall status help" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand hook; and not __fish_seen_subcommand_from install uninstall status help" -f -a "install" -d 'Add the hook entries to Hermes\' config.yaml and allowlist (backup first; asks; --yes for scripts)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand hook; and not __fish_seen_subcommand_from install uninstall status help" -f -a "uninstall" -d 'Remove every hermes-operator hook entry from Hermes\' config.yaml and allowlist'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand hook; and not __fish_seen_subcommand_from install uninstall status help" -f -a "status" -d 'Installed, partial or missing, per event: allowlisted, program present'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand hook; and not __fish_seen_subcommand_from install uninstall status help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand hook; and __fish_seen_subcommand_from install" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand hook; and __fish_seen_subcommand_from install" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand hook; and __fish_seen_subcommand_from install" -s y -l yes -d 'Do not ask for confirmation'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand hook; and __fish_seen_subcommand_from install" -l dry-run -d 'Print the change (a diff of config.yaml) and change nothing'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand hook; and __fish_seen_subcommand_from install" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand hook; and __fish_seen_subcommand_from install" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand hook; and __fish_seen_subcommand_from install" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand hook; and __fish_seen_subcommand_from uninstall" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand hook; and __fish_seen_subcommand_from uninstall" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand hook; and __fish_seen_subcommand_from uninstall" -s y -l yes -d 'Do not ask for confirmation'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand hook; and __fish_seen_subcommand_from uninstall" -l dry-run -d 'Print the change (a diff of config.yaml) and change nothing'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand hook; and __fish_seen_subcommand_from uninstall" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand hook; and __fish_seen_subcommand_from uninstall" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand hook; and __fish_seen_subcommand_from uninstall" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand hook; and __fish_seen_subcommand_from status" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand hook; and __fish_seen_subcommand_from status" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand hook; and __fish_seen_subcommand_from status" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand hook; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand hook; and __fish_seen_subcommand_from status" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand hook; and __fish_seen_subcommand_from help" -f -a "install" -d 'Add the hook entries to Hermes\' config.yaml and allowlist (backup first; asks; --yes for scripts)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand hook; and __fish_seen_subcommand_from help" -f -a "uninstall" -d 'Remove every hermes-operator hook entry from Hermes\' config.yaml and allowlist'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand hook; and __fish_seen_subcommand_from help" -f -a "status" -d 'Installed, partial or missing, per event: allowlisted, program present'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand hook; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand update; and not __fish_seen_subcommand_from schedule unschedule restore help" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand update; and not __fish_seen_subcommand_from schedule unschedule restore help" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand update; and not __fish_seen_subcommand_from schedule unschedule restore help" -l check -d 'Only report the installed Hermes and whether the package index has a newer one; change nothing'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand update; and not __fish_seen_subcommand_from schedule unschedule restore help" -s y -l yes -d 'Run without asking (required when not on a terminal, e.g. cron)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand update; and not __fish_seen_subcommand_from schedule unschedule restore help" -l dry-run -d 'Show the steps this run would take, with real paths; change nothing'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand update; and not __fish_seen_subcommand_from schedule unschedule restore help" -l no-restart -d 'Do not restart the operator service or run the health check afterwards'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand update; and not __fish_seen_subcommand_from schedule unschedule restore help" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand update; and not __fish_seen_subcommand_from schedule unschedule restore help" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand update; and not __fish_seen_subcommand_from schedule unschedule restore help" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand update; and not __fish_seen_subcommand_from schedule unschedule restore help" -f -a "schedule" -d 'Run `update --yes` on a cron schedule (user crontab; default "0 3 * * 0", Sundays 03:00)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand update; and not __fish_seen_subcommand_from schedule unschedule restore help" -f -a "unschedule" -d 'Remove the scheduled update of this HERMES_HOME from the user crontab'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand update; and not __fish_seen_subcommand_from schedule unschedule restore help" -f -a "restore" -d 'Put the operator\'s data (users.db, events.db, config, secrets, audit key) back from a backup that `update` made; the current state is backed up first'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand update; and not __fish_seen_subcommand_from schedule unschedule restore help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand update; and __fish_seen_subcommand_from schedule" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand update; and __fish_seen_subcommand_from schedule" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand update; and __fish_seen_subcommand_from schedule" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand update; and __fish_seen_subcommand_from schedule" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand update; and __fish_seen_subcommand_from schedule" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand update; and __fish_seen_subcommand_from unschedule" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand update; and __fish_seen_subcommand_from unschedule" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand update; and __fish_seen_subcommand_from unschedule" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand update; and __fish_seen_subcommand_from unschedule" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand update; and __fish_seen_subcommand_from unschedule" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand update; and __fish_seen_subcommand_from restore" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand update; and __fish_seen_subcommand_from restore" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand update; and __fish_seen_subcommand_from restore" -s y -l yes -d 'Restore without asking (required when not on a terminal)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand update; and __fish_seen_subcommand_from restore" -l dry-run -d 'Check the backup and show what would be restored; change nothing'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand update; and __fish_seen_subcommand_from restore" -l no-restart -d 'Do not restart the operator service or run the health check afterwards'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand update; and __fish_seen_subcommand_from restore" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand update; and __fish_seen_subcommand_from restore" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand update; and __fish_seen_subcommand_from restore" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand update; and __fish_seen_subcommand_from help" -f -a "schedule" -d 'Run `update --yes` on a cron schedule (user crontab; default "0 3 * * 0", Sundays 03:00)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand update; and __fish_seen_subcommand_from help" -f -a "unschedule" -d 'Remove the scheduled update of this HERMES_HOME from the user crontab'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand update; and __fish_seen_subcommand_from help" -f -a "restore" -d 'Put the operator\'s data (users.db, events.db, config, secrets, audit key) back from a backup that `update` made; the current state is backed up first'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand update; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand install" -l admin -d 'Create this first admin account when no admin exists (else asks on a terminal)' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand install" -l operator-user -d 'Keep the operator\'s files under this system account (created if missing), out of reach of the account Hermes and its agent run as; the unit becomes a system unit running as it. Needs root' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand install" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand install" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand install" -l password-stdin -d 'Read the admin\'s password from the first line of stdin instead of prompting'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand install" -l force -d 'Replace files someone changed (each is backed up to <file>.bak-<UTC ts> first)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand install" -s y -l yes -d 'Do not ask; without --admin no admin is created'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand install" -l no-systemd -d 'Do not write the systemd user unit (a trial on a temporary home)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand install" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand install" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand install" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand doctor" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand doctor" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand doctor" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand doctor" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand doctor" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand serve" -l bind -d 'Address to listen on [default: operator.host:operator.port from config]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand serve" -l grace-period -d 'After SIGTERM/SIGINT, seconds to let requests and chat turns finish before running turns are stopped' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand serve" -l read-timeout -d 'Seconds a client may take to send a request (its headers, then its JSON body); idle keep-alive connections are closed after as long' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand serve" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand serve" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand serve" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand serve" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand serve" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand completions" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand completions" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand completions" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand completions" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand completions" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand demo" -l bind -d 'Address to listen on' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand demo" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand demo" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand demo" -l keep -d 'Keep the demo home after exit (its path is printed)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand demo" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand demo" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand demo" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand login" -l server -d 'The server\'s URL, e.g. https://ops.example.com/ (https, or http on loopback)' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand login" -l output -d 'Write the tokens (JSON) to this new file (mode 0600) instead of standard output' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand login" -l timeout -d 'Give up after this many seconds without a finished login' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand login" -l hermes-home -d 'Hermes\' home directory [default: $HERMES_HOME, else ~/.hermes]' -r -F
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand login" -l store -d 'The fleet\'s database for this command: postgres://USER@HOST:PORT/DB (the password in OPERATOR_STORE_PASSWORD) [default: store.url]' -r
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand login" -l sso -d 'Log in with the server\'s single sign-on (required: the only way this command logs in)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand login" -l no-browser -d 'Print the login URL only; do not try to open a browser'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand login" -l json -d 'Print machine-readable JSON on stdout (NDJSON for streams); errors as JSON on stderr'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand login" -s h -l help -d 'Print help'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand login" -s V -l version -d 'Print version'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and not __fish_seen_subcommand_from user session audit store chat hook update install doctor serve completions demo login help" -f -a "user" -d 'Manage operator accounts (users.db)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and not __fish_seen_subcommand_from user session audit store chat hook update install doctor serve completions demo login help" -f -a "session" -d 'Read and manage operator sessions in Hermes\' state.db'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and not __fish_seen_subcommand_from user session audit store chat hook update install doctor serve completions demo login help" -f -a "audit" -d 'The tamper-evident event log: verify, replay, reports, export'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and not __fish_seen_subcommand_from user session audit store chat hook update install doctor serve completions demo login help" -f -a "store" -d 'The fleet\'s PostgreSQL: move this host\'s event log there, verify every host\'s chain'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and not __fish_seen_subcommand_from user session audit store chat hook update install doctor serve completions demo login help" -f -a "chat" -d 'Chat through the real Hermes agent as an operator user'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and not __fish_seen_subcommand_from user session audit store chat hook update install doctor serve completions demo login help" -f -a "hook" -d 'Hermes shell hooks: bare `hook` handles one event from stdin (Hermes runs it); install / uninstall / status manage it in Hermes\' config'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and not __fish_seen_subcommand_from user session audit store chat hook update install doctor serve completions demo login help" -f -a "update" -d 'Back up, run `hermes update --yes`, verify, restart (cron: `update --yes`); schedule it'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and not __fish_seen_subcommand_from user session audit store chat hook update install doctor serve completions demo login help" -f -a "install" -d 'Set up this server: directories, secrets, config, first admin, scripts, systemd unit (idempotent)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and not __fish_seen_subcommand_from user session audit store chat hook update install doctor serve completions demo login help" -f -a "doctor" -d 'Check the installation: paths, permissions, secrets, state.db, Hermes API, hook, port, updates, audit chain'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and not __fish_seen_subcommand_from user session audit store chat hook update install doctor serve completions demo login help" -f -a "serve" -d 'The embedded HTTP mode: JSON API, SSE chat, the dashboard'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and not __fish_seen_subcommand_from user session audit store chat hook update install doctor serve completions demo login help" -f -a "completions" -d 'Print the shell completion script (bash, zsh or fish) on stdout'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and not __fish_seen_subcommand_from user session audit store chat hook update install doctor serve completions demo login help" -f -a "demo" -d 'Try it: the dashboard on a throwaway home full of sample data (deleted on exit)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and not __fish_seen_subcommand_from user session audit store chat hook update install doctor serve completions demo login help" -f -a "login" -d 'Log in to a remote `serve` with single sign-on (browser + loopback); prints the tokens'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and not __fish_seen_subcommand_from user session audit store chat hook update install doctor serve completions demo login help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "add" -d 'Create an account (password from a hidden prompt, or --password-stdin)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "list" -d 'List accounts'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "show" -d 'Show one account (its `id` is what operator sessions carry as user_id)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "passwd" -d 'Change a password (revokes the user\'s tokens)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "role" -d 'Change a role (revokes the user\'s tokens)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "disable" -d 'Disable an account (revokes its tokens)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "enable" -d 'Enable a disabled account'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "delete" -d 'Delete an account (asks first; --yes for scripts)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "token" -d 'Print an access token (JWT) for scripts; needs the JWT secret'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "unlock" -d 'Clear the throttling of logins for a username (failed attempts from every address)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "totp" -d 'Two-factor login (TOTP) for an account'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "key" -d 'Personal API keys (OpenAI-compatible clients, scripts)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "link" -d 'Let a single sign-on user (the provider\'s subject) log in as this existing account'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "unlink" -d 'End an account\'s single sign-on link (its SSO logins end too)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from session" -f -a "list" -d 'List sessions, newest first (operator sessions unless --all-sources)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from session" -f -a "show" -d 'Show one session and its messages'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from session" -f -a "search" -d 'Full-text search in messages (Hermes\' FTS5 index; CJK via trigram)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from session" -f -a "cost" -d 'Token usage and cost of one session, per model'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from session" -f -a "export" -d 'Export one session as JSON or a Markdown transcript (stdout)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from session" -f -a "title" -d 'Set an operator session\'s title (empty text clears it)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from session" -f -a "end" -d 'End an operator session'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from session" -f -a "new" -d 'Create a new, empty operator session for a user'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from audit" -f -a "verify" -d 'Check the whole hash chain (and signed checkpoints); names the first bad event'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from audit" -f -a "checkpoint" -d 'Sign the current head of the log; prints one line to keep off-host'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from audit" -f -a "replay" -d 'A session\'s events in order, as a timeline with integrity status'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from audit" -f -a "daily" -d 'Daily usage: sessions, messages, tokens, cost — by user and by model'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from audit" -f -a "user" -d 'One user\'s account, sessions, usage and recent events'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from audit" -f -a "usage" -d 'Spend and tokens per local day (or hour) in a time zone, by user, key or model'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from audit" -f -a "export" -d 'Export events in a time range as NDJSON or CSV'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from audit" -f -a "tail" -d 'The newest events; --follow keeps printing new ones'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from audit" -f -a "prune" -d 'Delete old events, leaving a signed anchor so the chain still verifies'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from store" -f -a "migrate" -d 'Move this host\'s event log into PostgreSQL as it is (no event re-hashed); run again to move what came since'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from store" -f -a "verify" -d 'Verify every host\'s chain in PostgreSQL (or one, --host), against fleet checkpoints'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from store" -f -a "checkpoint" -d 'Sign every host\'s head with this host\'s audit key; prints one line to keep off the database'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from hook" -f -a "install" -d 'Add the hook entries to Hermes\' config.yaml and allowlist (backup first; asks; --yes for scripts)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from hook" -f -a "uninstall" -d 'Remove every hermes-operator hook entry from Hermes\' config.yaml and allowlist'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from hook" -f -a "status" -d 'Installed, partial or missing, per event: allowlisted, program present'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from update" -f -a "schedule" -d 'Run `update --yes` on a cron schedule (user crontab; default "0 3 * * 0", Sundays 03:00)'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from update" -f -a "unschedule" -d 'Remove the scheduled update of this HERMES_HOME from the user crontab'
complete -c hermes-operator -n "__fish_hermes_operator_using_subcommand help; and __fish_seen_subcommand_from update" -f -a "restore" -d 'Put the operator\'s data (users.db, events.db, config, secrets, audit key) back from a backup that `update` made; the current state is backed up first'
