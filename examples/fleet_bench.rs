//! The fleet's audit log, measured side by side with events.db (issue 20;
//! run by benches/fleet_bench.py, which starts a private PostgreSQL):
//! appends per second in durable batches — one writer on events.db, and
//! WRITERS writers on PostgreSQL spread over HOSTS hosts — then `audit
//! verify` events per second on each. One JSON object on stdout.
//!
//!   cargo run --release --example fleet_bench -- URL EVENTS_DB COUNT BATCH WRITERS HOSTS

use hermes_operator::ops::audit::fleet::verify_fleet;
use hermes_operator::ops::audit::integrity::verify;
use hermes_operator::store::events::{Actor, EventKind, EventStore, NewEvent};
use hermes_operator::store::pg::{Pg, PgEventLog};
use std::sync::Arc;
use std::time::Instant;

fn events(actor: &Actor, from: usize, n: usize, tag: &str) -> Vec<NewEvent> {
    (from..from + n)
        .map(|i| {
            NewEvent::new(
                EventKind::ToolCall,
                actor,
                serde_json::json!({"tool": "terminal", "arguments": {"command": "echo hello"}, "i": i, "tag": tag}),
            )
            .session(format!("op_{:012x}", i % 97))
            .user("u_0123456789abcdef")
        })
        .collect()
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 7 {
        eprintln!("usage: fleet_bench URL EVENTS_DB COUNT BATCH WRITERS HOSTS");
        std::process::exit(2);
    }
    let num = |i: usize| -> usize { a[i].parse().expect("a number") };
    let (url, db, count, batch, writers, hosts) = (&a[1], &a[2], num(3), num(4), num(5), num(6));
    let actor = Actor::new("bench:fleet");

    // events.db: one writer, as on one host.
    let store = EventStore::open(std::path::Path::new(db)).expect("events.db");
    let t = Instant::now();
    let mut done = 0;
    while done < count {
        let n = batch.min(count - done);
        store
            .append_batch(&events(&actor, done, n, "sqlite"))
            .expect("append");
        done += n;
    }
    let sqlite_append = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let r = verify(&store, &[], &[]).expect("verify");
    assert!(r.ok && r.events as usize == count, "{r:?}");
    let sqlite_verify = t.elapsed().as_secs_f64();

    // PostgreSQL: WRITERS connections over HOSTS chains, at once.
    let per = count / writers;
    let t = Instant::now();
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let url = url.clone();
            std::thread::spawn(move || {
                let pg = Arc::new(Pg::connect(&url).expect("connect"));
                let log = PgEventLog::new(pg, &format!("host-{}", w % hosts)).expect("host");
                let actor = Actor::new(format!("bench:w{w}"));
                let mut done = 0;
                while done < per {
                    let n = batch.min(per - done);
                    log.append_batch(&events(&actor, done, n, "pg"))
                        .expect("append");
                    done += n;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer");
    }
    let pg_append = t.elapsed().as_secs_f64();
    let pg = Arc::new(Pg::connect(url).expect("connect"));
    let t = Instant::now();
    let reports = verify_fleet(&pg, None, &[], &[]).expect("verify");
    let pg_verify = t.elapsed().as_secs_f64();
    let verified: u64 = reports.iter().map(|r| r.report.events).sum();
    assert!(reports.iter().all(|r| r.report.ok), "{reports:?}");
    assert_eq!(verified as usize, per * writers);
    println!(
        "{}",
        serde_json::json!({
            "count": count, "batch": batch, "writers": writers, "hosts": hosts,
            "sqlite_appends_per_s": (count as f64 / sqlite_append).round(),
            "pg_appends_per_s": ((per * writers) as f64 / pg_append).round(),
            "sqlite_verify_events_per_s": (count as f64 / sqlite_verify).round(),
            "pg_verify_events_per_s": (verified as f64 / pg_verify).round(),
        })
    );
}
