//! The accept loop: HTTP/1.1 connections from a TCP listener into the
//! router, with the limits a public server needs and `axum::serve` does not
//! offer — a deadline for each request's headers (slow-header clients and
//! idle keep-alive connections are closed; bodies get theirs in
//! [`super::extract::ApiJson`]), a cap on open connections — and
//! a graceful shutdown that lets in-flight requests finish.

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

/// At most this many connections are served at once; further clients wait
/// in the kernel's accept queue.
pub const MAX_CONNECTIONS: usize = 1024;

/// Serve `app` on `listener` until `signal` completes; then stop accepting
/// and wait for the open connections to finish their requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    read_timeout: Duration,
    signal: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    // The router's own, lower limits (`MAX_URI`, `MAX_HEADERS`,
    // `MAX_HEADER_BYTES` in server/mod.rs) answer first; beyond these hyper
    // answers 431/414 itself, and `JsonParseErrors` gives that answer the
    // JSON error body too.
    http.timer(TokioTimer::new())
        .header_read_timeout(read_timeout)
        .max_headers(4 * super::MAX_HEADERS)
        .max_buf_size(512 * 1024);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut signal = std::pin::pin!(signal);
    loop {
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => s.expect("the semaphore is never closed"),
            _ = &mut signal => break,
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
            _ = &mut signal => break,
        };
        let _ = tcp.set_nodelay(true);
        // What `into_make_service_with_connect_info` would do: the peer
        // address for the `ConnectInfo` extractor.
        let svc = app
            .clone()
            .map_request(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req.map(axum::body::Body::new)
            });
        let conn = http.serve_connection(
            TokioIo::new(super::parse_errors::JsonParseErrors::new(tcp)),
            TowerToHyperService::new(svc),
        );
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // Errors here are the client's (reset, header timeout): nothing to do.
            let _ = conn.await;
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Per-connection failures (the client went away) are ignored; anything else
/// (out of file descriptors) is reported and retried after a pause instead
/// of spinning.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    eprintln!("hermes-operator serve: accept failed: {e}; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
