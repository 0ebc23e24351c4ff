//! The operator's own overhead per chat turn: the same one-line turn against
//! the same Hermes API server (and fake model), alternately
//!   A) through the library's `chat::run_turn` (session row, budget,
//!      events, history, reconciliation), and
//!   B) straight to Hermes: `POST /v1/runs` + reading its event stream.
//! Prints medians of both and the median of the paired differences (A - B).
//!
//!   cargo run --release --example turn_overhead -- HERMES_HOME USERNAME RUNS
//!
//! HERMES_HOME must hold `.env` with API_SERVER_KEY and the operator config
//! pointing at the running API server (benches/chat_bench.py sets this up).

use hermes_operator::app::App;
use hermes_operator::hermes::api::{HermesClient, RunRequest};
use hermes_operator::home::Home;
use hermes_operator::ops::chat::{self, ApprovePolicy, Channel, PolicyApprover, TurnRequest};
use hermes_operator::store::events::Actor;
use std::time::Instant;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // A turn runs on a thread of its own (chat::OwnThread): this one.
    chat::OwnThread::block_on_runtime(&rt, measure);
}

async fn measure(own: chat::OwnThread) {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: turn_overhead HERMES_HOME USERNAME RUNS");
        std::process::exit(2);
    }
    let app = App::load(Home::at(&args[1]), Actor::new("bench"), |w| {
        eprintln!("warning: {w}")
    })
    .expect("load app");
    // As `serve` does (server/state.rs): the operator's event log stays
    // open, so a turn's own connection is never the last one to close (which
    // would checkpoint and delete the WAL every turn).
    let _events_open = app.events().expect("events.db");
    let user = args[2].clone();
    let runs: usize = args[3].parse().expect("RUNS");
    let client = HermesClient::from_config(&app.home, &app.cfg.config).expect("client");
    let approver = PolicyApprover {
        policy: ApprovePolicy::Deny,
        decided_by: "bench".into(),
    };
    let mut op_ms = Vec::new();
    let mut direct_ms = Vec::new();
    let mut diffs = Vec::new();
    let mut own_ms = Vec::new();
    for i in 0..runs + 2 {
        // The two alternate which goes first, so neither always runs in the
        // wake of the other (Hermes finishes writing a run after its last event).
        let (a, b, own) = if i % 2 == 0 {
            let (a, own) = through_operator(own, &app, &client, &approver, &user, i).await;
            (a, straight_to_hermes(&client, i).await, own)
        } else {
            let b = straight_to_hermes(&client, i).await;
            let (a, own) = through_operator(own, &app, &client, &approver, &user, i).await;
            (a, b, own)
        };
        if i >= 2 {
            // The first turns warm Hermes up.
            own_ms.push(own);
            op_ms.push(a);
            direct_ms.push(b);
            diffs.push(a - b);
        }
    }
    println!(
        "{{\"runs\":{runs},\"operator_median_ms\":{:.3},\"direct_median_ms\":{:.3},\"overhead_median_ms\":{:.3},\"own_time_median_ms\":{:.3}}}",
        median(&mut op_ms),
        median(&mut direct_ms),
        median(&mut diffs),
        median(&mut own_ms)
    );
}

/// A: one turn through the operator's `chat::run_turn`; (wall ms, own ms).
async fn through_operator(
    own: chat::OwnThread,
    app: &App,
    client: &HermesClient,
    approver: &PolicyApprover,
    user: &str,
    i: usize,
) -> (f64, f64) {
    let req = TurnRequest {
        username: user.to_string(),
        session_id: None,
        message: format!("hello {i}"),
        model: None,
        channel: Channel::Cli,
        toolsets: None,
        stream: true,
        key_id: None,
        token_version: None,
    };
    let t0 = Instant::now();
    let o = chat::run_turn(own, app, client, &req, approver, &mut |_| {})
        .await
        .expect("operator turn");
    (t0.elapsed().as_secs_f64() * 1e3, o.operator_ms)
}

/// B: the same request straight to Hermes (a fresh session id, as A starts one).
async fn straight_to_hermes(client: &HermesClient, i: usize) -> f64 {
    let sid = format!("bench-direct-{}-{i}", std::process::id());
    let t0 = Instant::now();
    let run_id = client
        .start_run(
            &RunRequest {
                input: &format!("hello {i}"),
                session_id: &sid,
                instructions: "bench",
                conversation_history: &[],
                model: None,
            },
            &format!("{sid}-key"),
        )
        .await
        .expect("direct run")
        .run_id;
    let mut ev = client.events(&run_id).await.expect("events");
    while let Some(e) = ev.next().await.expect("event") {
        if e.event.starts_with("run.") {
            break;
        }
    }
    t0.elapsed().as_secs_f64() * 1e3
}
