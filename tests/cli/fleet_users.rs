//! The accounts' store on PostgreSQL (issue 20) against users.db: API
//! keys, login throttling, second factors and single sign-on run the same
//! scenario on both backends and must answer alike; and the throttle's
//! count holds under replicas reserving at once.
//! Accounts, refresh-token families and budgets likewise; the budget's one
//! open reservation holds under replicas reserving at once.
use crate::common::pg::PgCluster;
use hermes_operator::error::Kind;
use hermes_operator::store::pg::{Pg, PgUsers};
use hermes_operator::store::users::{
    AttemptLimits, Flow, Gate, Grant, KeyApprovals, KeyRefused, KeyScope, Limit, NewFlow, NewKey,
    Role, SsoLogin, UserStore, MAX_ACTIVE_KEYS, MAX_KEYS_PER_HOUR, SSO_PASSWORD_HASH,
};
use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::{Arc, Barrier};

/// One backend of the store, and raw access to its database for what the
/// scenario needs besides the concern under test.
struct Backend {
    name: &'static str,
    store: UserStore,
    raw: Raw,
}

enum Raw {
    Sqlite(PathBuf),
    Pg(Box<RefCell<postgres::Client>>),
}

impl Backend {
    /// A new account; its id.
    fn add_user(&self, name: &str, role: Role) -> String {
        self.store.insert(name, role, "hash").unwrap().id
    }

    fn token_version(&self, id: &str) -> i64 {
        self.store.find_by_id(id).unwrap().unwrap().token_version
    }

    fn password_hash(&self, id: &str) -> String {
        self.store.password_hash(id).unwrap().unwrap()
    }

    fn user_count(&self) -> i64 {
        self.store.list().unwrap().len() as i64
    }

    /// A live refresh token of `user_id` in `family`.
    fn add_refresh(&self, hash: &[u8; 32], family: &str, user_id: &str) {
        let expires = chrono::Utc::now().timestamp() + 3600;
        self.store
            .insert_refresh(hash, family, user_id, 1, expires, false)
            .unwrap();
    }

    /// Why the refresh token was revoked (`None`: it was not).
    fn refresh_revoked(&self, hash: &[u8; 32]) -> Option<String> {
        let h: &[u8] = &hash[..];
        match &self.raw {
            Raw::Sqlite(path) => rusqlite::Connection::open(path)
                .unwrap()
                .query_row(
                    "SELECT revoked_reason FROM refresh_tokens WHERE token_hash = ?1",
                    [h],
                    |r| r.get(0),
                )
                .unwrap(),
            Raw::Pg(c) => c
                .borrow_mut()
                .query_one(
                    "SELECT revoked_reason FROM refresh_tokens WHERE token_hash = $1",
                    &[&h],
                )
                .unwrap()
                .get(0),
        }
    }
}

/// The same scenario on users.db and on a fresh PostgreSQL database.
fn both(f: impl Fn(&Backend)) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.db");
    f(&Backend {
        name: "sqlite",
        store: UserStore::open(&path).unwrap(),
        raw: Raw::Sqlite(path),
    });
    let pg = PgCluster::start();
    let url = pg.database("fleet");
    f(&Backend {
        name: "postgresql",
        store: UserStore::from_backend(PgUsers::new(Pg::connect(&url).unwrap())),
        raw: Raw::Pg(Box::new(RefCell::new(pg.superuser("fleet")))),
    });
}

fn new_key<'a>(
    id: &'a str,
    user_id: &'a str,
    hash: &'a [u8; 32],
    expires_at: Option<i64>,
) -> NewKey<'a> {
    NewKey {
        id,
        user_id,
        hash,
        prefix: "hop_abcd",
        label: "",
        scope: KeyScope::Chat,
        toolsets: None,
        approvals: KeyApprovals::Deny,
        rpm: None,
        expires_at,
    }
}

#[test]
fn api_keys_are_stored_capped_found_revoked_and_purged_alike() {
    both(|b| {
        let (s, at) = (&b.store, b.name);
        let alice = b.add_user("alice", Role::User);
        let bob = b.add_user("bob", Role::Admin);
        let now = chrono::Utc::now().timestamp();
        let hashes: Vec<[u8; 32]> = (0..40u8).map(|i| [i; 32]).collect();
        let ids: Vec<String> = (0..40).map(|i| format!("key_{i:02}")).collect();

        assert_eq!(
            s.key_insert(&new_key("key_x", "u_nobody", &hashes[39], None))
                .unwrap()
                .unwrap_err(),
            KeyRefused::NoAccount,
            "{at}"
        );
        // Every field as stored, the role the owner's at the time.
        let toolsets = vec!["web".to_string(), "terminal".to_string()];
        let first = s
            .key_insert(&NewKey {
                label: "ci",
                scope: KeyScope::Read,
                toolsets: Some(&toolsets),
                approvals: KeyApprovals::Wait,
                rpm: Some(60),
                ..new_key(&ids[0], &alice, &hashes[0], Some(now + 3600))
            })
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                first.id.as_str(),
                first.user_id.as_str(),
                first.username.as_str(),
                first.prefix.as_str(),
                first.label.as_str()
            ),
            ("key_00", alice.as_str(), "alice", "hop_abcd", "ci"),
            "{at}"
        );
        assert_eq!(
            (first.role, first.scope, first.approvals, first.rpm),
            (Role::User, KeyScope::Read, KeyApprovals::Wait, Some(60)),
            "{at}"
        );
        assert_eq!(first.toolsets.as_deref(), Some(&toolsets[..]), "{at}");
        assert_eq!(first.expires_at, Some(now + 3600), "{at}");
        assert!(
            first.created_at.ends_with('Z'),
            "{at}: {}",
            first.created_at
        );
        assert!(
            first.last_used_at.is_none() && first.revoked_at.is_none(),
            "{at}"
        );

        // By hash, with its owner.
        let (k, u) = s.key_by_hash(&hashes[0]).unwrap().expect("by hash");
        assert_eq!(
            (k.id.as_str(), u.id.as_str()),
            ("key_00", alice.as_str()),
            "{at}"
        );
        assert_eq!(
            (u.username.as_str(), u.role, u.disabled),
            ("alice", Role::User, false),
            "{at}"
        );
        assert!(s.key_by_hash(&[200; 32]).unwrap().is_none(), "{at}");

        // Touch, then revoke once.
        s.key_touch("key_00").unwrap();
        assert!(
            s.key_get("key_00").unwrap().unwrap().last_used_at.is_some(),
            "{at}"
        );
        assert!(s.key_revoke("key_00", "by hand").unwrap(), "{at}");
        assert!(
            !s.key_revoke("key_00", "again").unwrap(),
            "{at}: revoked once"
        );
        let k = s.key_get("key_00").unwrap().unwrap();
        assert_eq!(k.revoked_reason.as_deref(), Some("by hand"), "{at}");
        assert!(s.key_get("key_zz").unwrap().is_none(), "{at}");

        // MAX_ACTIVE_KEYS live keys, then a refusal naming the count.
        for i in 1..=MAX_ACTIVE_KEYS as usize {
            s.key_insert(&new_key(&ids[i], &alice, &hashes[i], None))
                .unwrap()
                .unwrap();
        }
        let n = MAX_ACTIVE_KEYS as usize + 1;
        assert_eq!(
            s.key_insert(&new_key(&ids[n], &alice, &hashes[n], None))
                .unwrap()
                .unwrap_err(),
            KeyRefused::TooManyActive(MAX_ACTIVE_KEYS),
            "{at}"
        );
        // Revoked keys still count towards the hourly cap.
        for id in &ids[1..=10] {
            assert!(s.key_revoke(id, "rotate").unwrap(), "{at}");
        }
        let made = 1 + MAX_ACTIVE_KEYS as usize;
        for i in made..MAX_KEYS_PER_HOUR as usize {
            s.key_insert(&new_key(&ids[i], &alice, &hashes[i], None))
                .unwrap()
                .unwrap();
        }
        let n = MAX_KEYS_PER_HOUR as usize;
        match s
            .key_insert(&new_key(&ids[n], &alice, &hashes[n], None))
            .unwrap()
        {
            Err(KeyRefused::TooFast { retry_after_secs }) => {
                assert!(
                    (3500..=3600).contains(&retry_after_secs),
                    "{at}: {retry_after_secs}"
                )
            }
            other => panic!("{at}: {other:?}"),
        }
        // Another account is not held up (an expired key is stored, not live).
        let bobs = s
            .key_insert(&new_key(
                &ids[39],
                &bob,
                &hashes[39],
                Some(now - 2 * 86_400),
            ))
            .unwrap()
            .unwrap();
        assert_eq!(bobs.role, Role::Admin, "{at}");

        // Lists: newest first, pages, a negative limit is all, a negative offset none.
        let all = s.key_list(Some(&alice), -1, 0).unwrap();
        assert_eq!(all.len(), MAX_KEYS_PER_HOUR as usize, "{at}");
        assert!(
            all.windows(2).all(|w| w[0].created_at > w[1].created_at
                || (w[0].created_at == w[1].created_at && w[0].id < w[1].id)),
            "{at}: newest first"
        );
        assert_eq!(all.last().unwrap().id, "key_00", "{at}: the oldest last");
        let page: Vec<String> = s
            .key_list(Some(&alice), 5, 5)
            .unwrap()
            .into_iter()
            .map(|k| k.id)
            .collect();
        let expect: Vec<String> = all[5..10].iter().map(|k| k.id.clone()).collect();
        assert_eq!(page, expect, "{at}");
        let head: Vec<String> = s
            .key_list(Some(&alice), 3, -4)
            .unwrap()
            .into_iter()
            .map(|k| k.id)
            .collect();
        let expect: Vec<String> = all[..3].iter().map(|k| k.id.clone()).collect();
        assert_eq!(head, expect, "{at}");
        assert_eq!(
            s.key_list(None, -1, 0).unwrap().len(),
            all.len() + 1,
            "{at}"
        );
        assert_eq!(s.key_list(Some(&bob), 10, 0).unwrap().len(), 1, "{at}");

        // Purge: the key expired two days ago now; the revoked ones once a
        // day has passed since (eleven: key_00 and ten rotated).
        assert_eq!(s.key_purge_dead(now).unwrap(), 1, "{at}");
        assert!(s.key_get(&ids[39]).unwrap().is_none(), "{at}");
        assert_eq!(s.key_purge_dead(now + 2 * 86_400).unwrap(), 11, "{at}");
        assert_eq!(
            s.key_list(Some(&alice), -1, 0).unwrap().len(),
            MAX_KEYS_PER_HOUR as usize - 11,
            "{at}"
        );
        assert_eq!(s.key_purge_dead(now + 2 * 86_400).unwrap(), 0, "{at}");
    });
}

const L: AttemptLimits = AttemptLimits {
    window_secs: 60.0,
    per_user_client: 2,
    per_client: 3,
    slow_after: 2,
};

fn go(g: Gate, at: &str) -> (i64, i64) {
    match g {
        Gate::Go {
            attempt,
            recent_for_user,
        } => (attempt, recent_for_user),
        other => panic!("{at}: expected Go, got {other:?}"),
    }
}

#[test]
fn login_attempts_and_code_checks_are_throttled_alike() {
    both(|b| {
        let (s, at) = (&b.store, b.name);
        // Per (username, address): pending attempts count too.
        let (a, _) = go(
            s.reserve_attempt("Alice", "10.0.0.1", 100.0, &L).unwrap(),
            at,
        );
        s.finish_attempt(a, false).unwrap();
        let (_, before) = go(
            s.reserve_attempt("alice", "10.0.0.1", 101.0, &L).unwrap(),
            at,
        );
        assert_eq!(before, 1, "{at}");
        assert_eq!(
            s.reserve_attempt("ALICE", "10.0.0.1", 102.0, &L).unwrap(),
            Gate::Throttled {
                limit: Limit::UserClient,
                retry_after_secs: 58,
                count: 1,
                report: true
            },
            "{at}"
        );
        // Elsewhere alice may try; a success clears that address only.
        let (ok, recent) = go(
            s.reserve_attempt("alice", "10.0.0.2", 103.0, &L).unwrap(),
            at,
        );
        assert_eq!(recent, 2, "{at}");
        s.finish_attempt(ok, true).unwrap();
        assert_eq!(s.recent_attempts("ALICE", 0.0).unwrap(), 2, "{at}");
        // A cancelled attempt is not counted either way.
        let (c, _) = go(
            s.reserve_attempt("carol", "10.0.0.3", 103.0, &L).unwrap(),
            at,
        );
        assert_eq!(s.recent_attempts("carol", 0.0).unwrap(), 1, "{at}");
        s.cancel_attempt(c).unwrap();
        assert_eq!(s.recent_attempts("carol", 0.0).unwrap(), 0, "{at}");
        // Per address, any username: the 4th from 10.0.0.1 is refused, and
        // of ten refusals the 1st and the 10th are reported.
        go(s.reserve_attempt("bob", "10.0.0.1", 104.0, &L).unwrap(), at);
        let refusals: Vec<(i64, bool)> = (0..10)
            .map(|i| {
                match s
                    .reserve_attempt(&format!("u{i}"), "10.0.0.1", 105.0, &L)
                    .unwrap()
                {
                    Gate::Throttled {
                        limit: Limit::Client,
                        retry_after_secs,
                        count,
                        report,
                    } => {
                        assert_eq!(retry_after_secs, 55, "{at}");
                        (count, report)
                    }
                    g => panic!("{at}: {g:?}"),
                }
            })
            .collect();
        assert_eq!(
            refusals.iter().map(|r| r.0).collect::<Vec<_>>(),
            (1..=10).collect::<Vec<_>>(),
            "{at}"
        );
        let reported: Vec<i64> = refusals.iter().filter(|r| r.1).map(|r| r.0).collect();
        assert_eq!(reported, [1, 10], "{at}");
        // The window passes: everything is forgotten.
        assert!(
            matches!(
                s.reserve_attempt("alice", "10.0.0.1", 200.0, &L).unwrap(),
                Gate::Go {
                    recent_for_user: 0,
                    ..
                }
            ),
            "{at}"
        );
        assert_eq!(s.clear_attempts("ALICE").unwrap(), 1, "{at}");
        assert_eq!(s.recent_attempts("alice", 0.0).unwrap(), 0, "{at}");

        // Code checks: capped per account whatever the address.
        let u = b.add_user("Dora", Role::User);
        for t in [100.0, 101.0] {
            let id = s.reserve_code_check(&u, t, 60.0, 3).unwrap().unwrap();
            s.finish_code_check(id, false).unwrap();
        }
        let pending = s.reserve_code_check(&u, 102.0, 60.0, 3).unwrap().unwrap();
        assert_eq!(
            s.reserve_code_check(&u, 103.0, 60.0, 3).unwrap(),
            Err(57),
            "{at}"
        );
        // A right code frees only its own check.
        s.finish_code_check(pending, true).unwrap();
        let id = s.reserve_code_check(&u, 104.0, 60.0, 3).unwrap().unwrap();
        s.finish_code_check(id, false).unwrap();
        assert_eq!(
            s.reserve_code_check(&u, 105.0, 60.0, 3).unwrap(),
            Err(55),
            "{at}"
        );
        let other = b.add_user("erin", Role::User);
        assert!(
            s.reserve_code_check(&other, 105.0, 60.0, 3)
                .unwrap()
                .is_ok(),
            "{at}"
        );
        for t in [165.0, 166.0, 167.0] {
            assert!(
                s.reserve_code_check(&u, t, 60.0, 3).unwrap().is_ok(),
                "{at}: {t}"
            );
        }
        assert!(
            s.reserve_code_check(&u, 168.0, 60.0, 3).unwrap().is_err(),
            "{at}"
        );
        // An unlock by username, any case, clears the account's checks.
        assert_eq!(s.clear_attempts("DORA").unwrap(), 3, "{at}");
        assert!(
            s.reserve_code_check(&u, 169.0, 60.0, 3).unwrap().is_ok(),
            "{at}"
        );
    });
}

#[test]
fn second_factors_are_enrolled_confirmed_and_used_once_alike() {
    both(|b| {
        let (s, at) = (&b.store, b.name);
        let u = b.add_user("alice", Role::User);
        let v0 = b.token_version(&u);
        let recovery: Vec<[u8; 32]> = (1..=10u8).map(|i| [i; 32]).collect();
        assert!(s.totp_get(&u).unwrap().is_none(), "{at}");
        assert!(s.totp_begin(&u, b"first", &recovery).unwrap(), "{at}");
        // A pending enrolment may be restarted (new secret, new codes).
        assert!(s.totp_begin(&u, b"secret", &recovery).unwrap(), "{at}");
        let t = s.totp_get(&u).unwrap().unwrap();
        assert_eq!(
            (t.secret.as_slice(), t.confirmed, t.last_step),
            (&b"secret"[..], false, 0),
            "{at}"
        );
        // Nothing is usable before the confirmation.
        assert!(!s.totp_use_step(&u, 100).unwrap(), "{at}");
        assert_eq!(
            s.totp_use_recovery(&u, &recovery[0]).unwrap(),
            (false, 10),
            "{at}"
        );
        // Confirming bumps the token version, once.
        assert!(s.totp_confirm(&u, 100).unwrap(), "{at}");
        assert_eq!(b.token_version(&u), v0 + 1, "{at}");
        assert!(!s.totp_confirm(&u, 101).unwrap(), "{at}: confirmed already");
        assert_eq!(b.token_version(&u), v0 + 1, "{at}");
        let t = s.totp_get(&u).unwrap().unwrap();
        assert_eq!((t.confirmed, t.last_step), (true, 100), "{at}");
        // A confirmed enrolment is not replaced.
        assert!(!s.totp_begin(&u, b"other", &recovery).unwrap(), "{at}");
        assert_eq!(s.totp_get(&u).unwrap().unwrap().secret, b"secret", "{at}");
        // Steps: each once, never an older one.
        assert!(
            !s.totp_use_step(&u, 100).unwrap(),
            "{at}: the confirming step"
        );
        assert!(s.totp_use_step(&u, 101).unwrap(), "{at}");
        assert!(!s.totp_use_step(&u, 101).unwrap(), "{at}: single use");
        assert!(!s.totp_use_step(&u, 99).unwrap(), "{at}: older");
        assert!(s.totp_use_step(&u, 105).unwrap(), "{at}");
        assert_eq!(s.totp_get(&u).unwrap().unwrap().last_step, 105, "{at}");
        // Recovery codes: each once.
        assert_eq!(
            s.totp_use_recovery(&u, &recovery[0]).unwrap(),
            (true, 9),
            "{at}"
        );
        assert_eq!(
            s.totp_use_recovery(&u, &recovery[0]).unwrap(),
            (false, 9),
            "{at}"
        );
        assert_eq!(
            s.totp_use_recovery(&u, &[99; 32]).unwrap(),
            (false, 9),
            "{at}"
        );
        assert_eq!(
            s.totp_use_recovery(&u, &recovery[9]).unwrap(),
            (true, 8),
            "{at}"
        );
        // Another account's enrolment is its own.
        let other = b.add_user("bob", Role::User);
        assert!(!s.totp_use_step(&other, 200).unwrap(), "{at}");
        assert_eq!(
            s.totp_use_recovery(&other, &recovery[1]).unwrap(),
            (false, 0),
            "{at}"
        );
        // Removal: once, codes with it; a new enrolment may start.
        assert!(s.totp_remove(&u).unwrap(), "{at}");
        assert!(!s.totp_remove(&u).unwrap(), "{at}");
        assert!(s.totp_get(&u).unwrap().is_none(), "{at}");
        assert_eq!(
            s.totp_use_recovery(&u, &recovery[1]).unwrap(),
            (false, 0),
            "{at}"
        );
        assert!(s.totp_begin(&u, b"again", &recovery[..2]).unwrap(), "{at}");
        assert_eq!(b.token_version(&u), v0 + 1, "{at}: begin bumps nothing");
    });
}

fn flow<'a>(state: u8, client: &'a str, cli: Option<(u16, &'a str)>) -> NewFlow<'a> {
    NewFlow {
        state_hash: [state; 32],
        binding_hash: [1; 32],
        grant_binding: [2; 32],
        nonce: "n",
        verifier: "v",
        client,
        cli,
    }
}

fn grant(user_id: &str, subject: &str) -> Grant {
    Grant {
        binding_hash: vec![3; 32],
        user_id: user_id.into(),
        issuer: "https://id".into(),
        subject: subject.into(),
        provider_access: Some("at".into()),
        provider_refresh: None,
        expired: false,
    }
}

#[test]
fn single_sign_on_flows_codes_and_identities_behave_alike() {
    both(|b| {
        let (s, at) = (&b.store, b.name);
        // Flows: capped per client in the window, each taken once.
        assert!(
            s.begin_sso_flow(&flow(7, "10.0.0.1", None), 100.0, 600.0, 600.0, 2)
                .unwrap(),
            "{at}"
        );
        assert!(
            s.begin_sso_flow(
                &flow(8, "10.0.0.1", Some((40123, "cli-state"))),
                101.0,
                600.0,
                600.0,
                2
            )
            .unwrap(),
            "{at}"
        );
        assert!(
            !s.begin_sso_flow(&flow(9, "10.0.0.1", None), 102.0, 600.0, 600.0, 2)
                .unwrap(),
            "{at}"
        );
        assert!(
            s.begin_sso_flow(&flow(9, "10.0.0.2", None), 102.0, 600.0, 600.0, 2)
                .unwrap(),
            "{at}"
        );
        let f: Flow = s.take_sso_flow(&[7; 32], 200.0).unwrap().expect("the flow");
        assert_eq!(
            (f.nonce.as_str(), f.verifier.as_str(), f.expired, f.cli),
            ("n", "v", false, None),
            "{at}"
        );
        assert_eq!(
            (f.binding_hash, f.grant_binding),
            (vec![1; 32], vec![2; 32]),
            "{at}"
        );
        assert!(
            s.take_sso_flow(&[7; 32], 200.0).unwrap().is_none(),
            "{at}: a state works once"
        );
        // Past its expiry a flow is still taken (once), marked expired.
        let f = s.take_sso_flow(&[8; 32], 800.0).unwrap().unwrap();
        assert!(f.expired, "{at}");
        assert_eq!(f.cli, Some((40123, "cli-state".to_string())), "{at}");
        // A new start clears expired flows first (and frees the client).
        assert!(
            s.begin_sso_flow(&flow(10, "10.0.0.1", None), 900.0, 600.0, 600.0, 2)
                .unwrap(),
            "{at}"
        );
        assert!(
            s.take_sso_flow(&[9; 32], 900.0).unwrap().is_none(),
            "{at}: expired and purged"
        );

        // An account made by single sign-on, linked in the same transaction.
        let u = s
            .insert_sso_user("alice", Role::User, "https://id", "sub-a")
            .unwrap();
        assert_eq!(
            (u.username.as_str(), u.role, u.disabled),
            ("alice", Role::User, false),
            "{at}"
        );
        assert_eq!(
            b.password_hash(&u.id),
            SSO_PASSWORD_HASH,
            "{at}: no password verifies"
        );
        assert_eq!(
            s.find_by_identity("https://id", "sub-a")
                .unwrap()
                .unwrap()
                .id,
            u.id,
            "{at}"
        );
        assert!(
            s.find_by_identity("https://other", "sub-a")
                .unwrap()
                .is_none(),
            "{at}"
        );
        let id = s.identity_of(&u.id).unwrap().unwrap();
        assert_eq!(
            (
                id.issuer.as_str(),
                id.subject.as_str(),
                id.linked_by.as_str()
            ),
            ("https://id", "sub-a", "auto_create"),
            "{at}"
        );
        assert!(id.last_login_at.is_none(), "{at}");
        // The same subject cannot be a second account, nor may a local
        // account's name be taken in any case; nothing is left behind.
        let users = b.user_count();
        let e = s
            .insert_sso_user("alice2", Role::User, "https://id", "sub-a")
            .unwrap_err();
        assert_eq!(e.kind, Kind::Conflict, "{at}: {e:?}");
        b.add_user("Carol", Role::Viewer);
        let e = s
            .insert_sso_user("carol", Role::User, "https://id", "sub-c")
            .unwrap_err();
        assert_eq!(e.kind, Kind::Conflict, "{at}: {e:?}");
        assert_eq!(
            e.message,
            "an account named \"carol\" already exists, or this provider user is linked already",
            "{at}"
        );
        assert_eq!(b.user_count(), users + 1, "{at}: only Carol");
        assert!(
            s.find_by_identity("https://id", "sub-c").unwrap().is_none(),
            "{at}"
        );

        // Links: one per subject, one per account.
        let bob = b.add_user("bob", Role::User);
        let e = s
            .link_identity(&u.id, "https://id", "sub-b", "admin")
            .unwrap_err();
        assert_eq!(e.kind, Kind::Conflict, "{at}");
        assert_eq!(
            e.message,
            "that provider subject or that account is linked already (`user unlink` first)",
            "{at}"
        );
        let e = s
            .link_identity(&bob, "https://id", "sub-a", "admin")
            .unwrap_err();
        assert_eq!(e.kind, Kind::Conflict, "{at}");
        assert!(s.identity_of(&bob).unwrap().is_none(), "{at}");
        s.link_identity(&bob, "https://id", "sub-b", "admin")
            .unwrap();
        assert_eq!(
            s.identity_of(&bob).unwrap().unwrap().linked_by,
            "admin",
            "{at}"
        );
        assert_eq!(
            s.find_by_identity("https://id", "sub-b")
                .unwrap()
                .unwrap()
                .id,
            bob,
            "{at}"
        );

        // Codes: each redeemed once; an expired one says so.
        s.insert_sso_grant(&[5; 32], &grant(&u.id, "sub-a"), 1000.0)
            .unwrap();
        s.insert_sso_grant(&[6; 32], &grant(&bob, "sub-b"), 1000.0)
            .unwrap();
        let g = s.take_sso_grant(&[5; 32], 999.0).unwrap().unwrap();
        assert!(!g.expired, "{at}");
        assert_eq!(
            (
                g.user_id.as_str(),
                g.subject.as_str(),
                g.binding_hash.as_slice()
            ),
            (u.id.as_str(), "sub-a", &[3u8; 32][..]),
            "{at}"
        );
        assert_eq!(
            (g.provider_access.as_deref(), g.provider_refresh.as_deref()),
            (Some("at"), None),
            "{at}"
        );
        assert!(
            s.take_sso_grant(&[5; 32], 999.0).unwrap().is_none(),
            "{at}: a code works once"
        );
        assert!(
            s.take_sso_grant(&[6; 32], 1001.0).unwrap().unwrap().expired,
            "{at}"
        );

        // SSO logins, their refresh tokens, re-checks and purging.
        b.add_refresh(&[20; 32], "fam-a", &u.id);
        b.add_refresh(&[21; 32], "fam-b", &bob);
        let login = |family: &str, user: &str, subject: &str| SsoLogin {
            family_id: family.into(),
            user_id: user.into(),
            issuer: "https://id".into(),
            subject: subject.into(),
            provider_access: Some("pa".into()),
            provider_refresh: Some("pr".into()),
        };
        s.insert_sso_login(&login("fam-a", &u.id, "sub-a")).unwrap();
        s.insert_sso_login(&login("fam-b", &bob, "sub-b")).unwrap();
        s.insert_sso_login(&login("fam-gone", &bob, "sub-b"))
            .unwrap();
        assert!(
            s.identity_of(&u.id)
                .unwrap()
                .unwrap()
                .last_login_at
                .is_some(),
            "{at}"
        );
        assert!(
            s.is_sso_family("fam-a").unwrap() && !s.is_sso_family("fam-x").unwrap(),
            "{at}"
        );
        let l = s.sso_login_of_refresh(&[20; 32]).unwrap().unwrap();
        assert_eq!(
            (
                l.family_id.as_str(),
                l.user_id.as_str(),
                l.provider_refresh.as_deref()
            ),
            ("fam-a", u.id.as_str(), Some("pr")),
            "{at}"
        );
        assert!(s.sso_login_of_refresh(&[22; 32]).unwrap().is_none(), "{at}");
        s.update_sso_login("fam-a", Some("pa2"), None).unwrap();
        let l = s.sso_login_of_refresh(&[20; 32]).unwrap().unwrap();
        assert_eq!(
            (l.provider_access.as_deref(), l.provider_refresh.as_deref()),
            (Some("pa2"), None),
            "{at}"
        );
        // fam-gone has no token left; the flow begun at 900 has expired by 2000.
        assert_eq!(s.purge_sso(2000.0).unwrap(), 2, "{at}");
        assert!(
            !s.is_sso_family("fam-gone").unwrap() && s.is_sso_family("fam-b").unwrap(),
            "{at}"
        );

        // Unlinking ends the account's SSO logins and revokes their tokens.
        assert_eq!(s.unlink_identity(&u.id, "unlinked").unwrap(), 1, "{at}");
        assert_eq!(s.unlink_identity(&u.id, "unlinked").unwrap(), 0, "{at}");
        assert_eq!(
            b.refresh_revoked(&[20; 32]).as_deref(),
            Some("unlinked"),
            "{at}"
        );
        assert_eq!(b.refresh_revoked(&[21; 32]), None, "{at}: bob's stays");
        assert!(!s.is_sso_family("fam-a").unwrap(), "{at}");
        assert!(
            s.find_by_identity("https://id", "sub-a").unwrap().is_none(),
            "{at}"
        );
        // Free again: the subject may be linked to another account.
        s.link_identity(&u.id, "https://id", "sub-a2", "admin")
            .unwrap();
        assert_eq!(
            s.identity_of(&u.id).unwrap().unwrap().subject,
            "sub-a2",
            "{at}"
        );
    });
}

/// Replicas on their own connections reserving the same attempt at once:
/// the store's lock serialises them, so exactly the limit get to check a
/// password and every other is refused with its own count.
#[test]
fn parallel_reservations_on_postgresql_never_pass_the_limit() {
    let pg = PgCluster::start();
    let url = Arc::new(pg.database("fleet"));
    let limits = AttemptLimits {
        window_secs: 600.0,
        per_user_client: 3,
        per_client: 100,
        slow_after: 100,
    };
    let n = 8;
    let barrier = Arc::new(Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (url, barrier) = (url.clone(), barrier.clone());
            std::thread::spawn(move || {
                let store = PgUsers::new(Pg::connect(&url).unwrap());
                let store = UserStore::from_backend(store);
                barrier.wait();
                store
                    .reserve_attempt("Alice", "10.9.9.9", 1000.0, &limits)
                    .unwrap()
            })
        })
        .collect();
    let gates: Vec<Gate> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let mut attempts: Vec<i64> = gates
        .iter()
        .filter_map(|g| match g {
            Gate::Go { attempt, .. } => Some(*attempt),
            _ => None,
        })
        .collect();
    attempts.sort();
    attempts.dedup();
    assert_eq!(attempts.len(), limits.per_user_client as usize, "{gates:?}");
    let mut counts: Vec<i64> = gates
        .iter()
        .filter_map(|g| match g {
            Gate::Throttled {
                limit: Limit::UserClient,
                count,
                ..
            } => Some(*count),
            _ => None,
        })
        .collect();
    counts.sort();
    assert_eq!(counts, [1, 2, 3, 4, 5], "{gates:?}");
    // What was stored agrees: three pending attempts, one refusal row.
    let mut su = pg.superuser("fleet");
    let pending: i64 = su
        .query_one(
            "SELECT count(*) FROM login_attempts WHERE username = 'alice' AND state = 'pending'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(pending, 3);
    let refused: i64 = su
        .query_one("SELECT count FROM login_throttled", &[])
        .unwrap()
        .get(0);
    assert_eq!(refused, 5);
}

#[test]
fn accounts_names_roles_and_the_last_admin_behave_alike() {
    both(|b| {
        let s = &b.store;
        let root = b.add_user("Root", Role::Admin);
        let alice = b.add_user("alice", Role::User);
        // Names are unique whatever their case, and found so.
        let dup = s.insert("ALICE", Role::User, "hash").unwrap_err();
        assert_eq!(dup.kind, Kind::Conflict, "{}: {}", b.name, dup.message);
        assert_eq!(s.get("root").unwrap().id, root, "{}", b.name);
        assert!(s.find("nobody").unwrap().is_none());
        let names: Vec<String> = s.list().unwrap().into_iter().map(|u| u.username).collect();
        assert_eq!(names, ["alice", "Root"], "{}", b.name);
        // The only enabled admin is neither demoted, disabled nor deleted.
        for e in [
            s.set_role(&root, Role::User).unwrap_err(),
            s.set_disabled(&root, true).unwrap_err(),
            s.delete(&root).unwrap_err(),
            s.set_role_and_disabled(&root, None, Some(true))
                .unwrap_err(),
        ] {
            assert_eq!(e.kind, Kind::Conflict, "{}: {}", b.name, e.message);
            assert!(e.message.contains("only enabled admin"), "{}", e.message);
        }
        // A role change bumps the token version and revokes keys; enabling
        // does not.
        let v = b.token_version(&alice);
        s.set_role(&alice, Role::Admin).unwrap();
        assert_eq!(b.token_version(&alice), v + 1, "{}", b.name);
        s.set_disabled(&root, true).unwrap();
        assert!(s.find_by_id(&root).unwrap().unwrap().disabled);
        s.set_disabled(&root, false).unwrap();
        assert_eq!(b.token_version(&root), 2, "{}", b.name);
        // A password reset makes the next login change it, and says which
        // keys it revoked.
        let hash = [7u8; 32];
        let k = s
            .key_insert(&new_key("k_reset", &alice, &hash, None))
            .unwrap()
            .unwrap();
        let revoked = s.set_password(&alice, "new-hash", true).unwrap();
        assert_eq!(revoked, [(k.id.clone(), k.prefix.clone())], "{}", b.name);
        assert_eq!(b.password_hash(&alice), "new-hash");
        assert!(s.find_by_id(&alice).unwrap().unwrap().must_change_password);
        s.record_login(&alice).unwrap();
        assert!(s
            .find_by_id(&alice)
            .unwrap()
            .unwrap()
            .last_login_at
            .is_some());
        // Deleting takes the account and its keys.
        s.delete(&alice).unwrap();
        assert!(s.key_get(&k.id).unwrap().is_none(), "{}", b.name);
        assert_eq!(b.user_count(), 1);
        let gone = s.delete(&alice).unwrap_err();
        assert_eq!(gone.kind, Kind::NotFound, "{}", b.name);
    });
}

#[test]
fn refresh_families_rotate_once_and_die_whole_alike() {
    use hermes_operator::store::users::RefreshUse;
    both(|b| {
        let s = &b.store;
        let alice = b.add_user("alice", Role::User);
        let now = chrono::Utc::now().timestamp();
        let since = "2000-01-01T00:00:00Z";
        b.add_refresh(&[1; 32], "fam1", &alice);
        let used = s
            .rotate_refresh(&[1; 32], &[2; 32], now + 3600, now, (10, since))
            .unwrap();
        assert!(
            matches!(used, RefreshUse::Rotated { .. }),
            "{}: {used:?}",
            b.name
        );
        let (user, revoked) = s
            .find_for_token(&alice, "jti1", Some("fam1"))
            .unwrap()
            .unwrap();
        assert_eq!((user.id.as_str(), revoked), (alice.as_str(), false));
        // The used token again: the whole family is revoked, and tokens of
        // it read as revoked.
        let again = s
            .rotate_refresh(&[1; 32], &[3; 32], now + 3600, now, (10, since))
            .unwrap();
        assert!(
            matches!(again, RefreshUse::Reused { revoked: 2, .. }),
            "{}: {again:?}",
            b.name
        );
        assert_eq!(b.refresh_revoked(&[2; 32]).as_deref(), Some("reuse"));
        let current = s
            .rotate_refresh(&[2; 32], &[4; 32], now + 3600, now, (10, since))
            .unwrap();
        assert!(matches!(current, RefreshUse::Revoked { .. }), "{current:?}");
        assert!(
            s.find_for_token(&alice, "jti1", Some("fam1"))
                .unwrap()
                .unwrap()
                .1
        );
        // An access token revoked by id; unknown tokens; a changed user.
        s.revoke_access("jti9", &alice, now + 60).unwrap();
        assert!(s.find_for_token(&alice, "jti9", None).unwrap().unwrap().1);
        assert_eq!(
            s.revoked_access().unwrap(),
            [("jti9".to_string(), now + 60)]
        );
        let unknown = s
            .rotate_refresh(&[9; 32], &[8; 32], now + 3600, now, (10, since))
            .unwrap();
        assert_eq!(unknown, RefreshUse::Unknown);
        b.add_refresh(&[5; 32], "fam2", &alice);
        s.set_disabled(&alice, true).unwrap();
        let changed = s
            .rotate_refresh(&[5; 32], &[6; 32], now + 3600, now, (10, since))
            .unwrap();
        assert!(
            matches!(changed, RefreshUse::UserChanged { .. }),
            "{}: {changed:?}",
            b.name
        );
        assert_eq!(s.revoke_family(&alice, "fam2", "logout").unwrap(), 0);
        assert_eq!(s.purge_tokens(now + 7200, 5).unwrap().1, 1, "{}", b.name);
    });
}

/// Ten replicas reserve the same user's budget at once: one open
/// reservation at a time, and the limit holds (as users.db's write lock
/// makes it on one host).
#[test]
fn budget_reservations_hold_across_replicas_on_postgresql() {
    use hermes_operator::store::users::Reservation;
    let pg = PgCluster::start();
    let url = pg.database("fleet");
    let day = "2026-12-06";
    let (limit, amount) = (0.05, 0.01);
    let barrier = Arc::new(Barrier::new(10));
    let settle = UserStore::from_backend(PgUsers::new(Pg::connect(&url).unwrap()));
    let mut made = 0;
    for round in 0..8 {
        let handles: Vec<_> = (0..10)
            .map(|i| {
                let (url, barrier) = (url.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let s = UserStore::from_backend(PgUsers::new(Pg::connect(&url).unwrap()));
                    barrier.wait();
                    s.reserve_budget("u_1", day, &format!("s{round}{i}"), amount, limit)
                        .unwrap()
                })
            })
            .collect();
        let results: Vec<Reservation> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let n = results
            .iter()
            .filter(|r| matches!(r, Reservation::Made(_)))
            .count();
        assert!(n <= 1, "round {round}: {n} open at once: {results:?}");
        made += n;
        // The turn ends, costing a little more than it reserved.
        for r in &results {
            if let Reservation::Made(id) = r {
                settle.settle_budget(id, amount * 1.5).unwrap();
            }
        }
    }
    let s = settle;
    let spent = s.spent("u_1", day).unwrap();
    assert!(made >= 3, "{made}");
    assert!(
        spent <= limit + amount * 0.5 + 1e-9,
        "spent {spent} past {limit} ({made} turns)"
    );
    assert!(matches!(
        s.reserve_budget("u_1", day, "last", amount, limit).unwrap(),
        Reservation::Spent(_)
    ));
}

/// A connection dropped on a thread that runs asynchronous tasks (a chat
/// turn's, a command's `block_on`) closes without blocking there.
#[test]
fn connections_close_anywhere() {
    let pg = PgCluster::start();
    let url = pg.database("fleet");
    let conn = Pg::connect(&url).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move { drop(conn) });
    let store = UserStore::from_backend(PgUsers::new(Pg::connect(&url).unwrap()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let h = rt.handle().clone();
    let listed = std::thread::spawn(move || {
        h.block_on(async move {
            let n = store.list().unwrap().len();
            drop(store);
            n
        })
    })
    .join()
    .unwrap();
    assert_eq!(listed, 0);
}
