//! Append synthetic events to an events.db through the library's one append
//! path. Used by the concurrency test (several of these at once) and by the
//! benchmarks (appends per second in durable batches).
//!
//!   cargo run --release --example append_events -- DB COUNT [BATCH] [TAG]

use hermes_operator::store::events::EventKind;
use hermes_operator::store::events::{Actor, EventStore, NewEvent};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: append_events DB COUNT [BATCH] [TAG]");
        std::process::exit(2);
    }
    let db = std::path::PathBuf::from(&args[1]);
    let count: usize = args[2].parse().expect("COUNT is a number");
    let batch: usize = args
        .get(3)
        .map(|b| b.parse().expect("BATCH is a number"))
        .unwrap_or(1)
        .max(1);
    let tag = args
        .get(4)
        .cloned()
        .unwrap_or_else(|| format!("p{}", std::process::id()));
    let store = EventStore::open(&db).unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1)
    });
    let actor = Actor::new(format!("bench:{tag}"));
    let started = Instant::now();
    let mut done = 0;
    while done < count {
        let n = batch.min(count - done);
        let evs: Vec<NewEvent> = (0..n)
            .map(|i| {
                NewEvent::new(
                    EventKind::ToolCall,
                    &actor,
                    serde_json::json!({"tool": "terminal", "arguments": {"command": "echo hello"}, "i": done + i, "tag": tag}),
                )
                .session(format!("op_{:012x}", (done + i) % 97))
                .user("u_0123456789abcdef")
            })
            .collect();
        if let Err(e) = store.append_batch(&evs) {
            eprintln!("error after {done} events: {e}");
            std::process::exit(1);
        }
        done += n;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{{\"appended\":{count},\"batch\":{batch},\"seconds\":{secs:.6},\"per_second\":{:.0}}}",
        count as f64 / secs
    );
}
