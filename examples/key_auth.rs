//! Benchmark helper for benches/openai_bench.py: the cost of authenticating
//! a personal API key as `serve` does it (`ops::keys::authenticate`: one
//! SHA-256 and one indexed read on an open read-only users.db connection),
//! with 1,000 keys stored. Prints JSON: the median over 21 batches of the
//! mean time per call, in µs.
//!
//!     cargo run --release --example key_auth

use hermes_operator::app::App;
use hermes_operator::home::Home;
use hermes_operator::ops::{accounts, keys};
use hermes_operator::store::events::Actor;
use hermes_operator::store::users::{Role, UserStore};
use std::time::Instant;

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = App::load(Home::at(dir.path()), Actor::new("bench"), |_| {}).expect("app");
    accounts::add_user(&app, "alice", Role::User, "a long bench password").expect("user");
    let mut last = String::new();
    for _ in 0..1000 {
        last = keys::create(&app, "alice", &Default::default())
            .expect("key")
            .key;
    }
    let store = UserStore::open_readonly(&app.home.users_db()).expect("users.db");
    let per_batch = 2000;
    let mut means = Vec::new();
    for i in 0..22 {
        let t = Instant::now();
        for _ in 0..per_batch {
            let r = keys::authenticate(&store, std::hint::black_box(&last)).expect("read");
            assert!(r.is_ok());
        }
        if i > 0 {
            means.push(t.elapsed().as_secs_f64() * 1e6 / per_batch as f64);
        }
    }
    // A wrong key costs the same lookup (and is refused).
    let wrong = format!("hop_{}", "x".repeat(43));
    assert!(keys::authenticate(&store, &wrong).unwrap().is_err());
    means.sort_by(f64::total_cmp);
    println!(
        "{{\"keys\": 1000, \"batches\": {}, \"key_auth_median_us\": {:.2}}}",
        means.len(),
        means[means.len() / 2]
    );
}
