//! The accept loop: HTTP/1.1 connections from a TCP listener into the
//! router, with the limits a public server needs and `axum::serve` does not
//! offer — a deadline for each request's headers (slow-header clients and
//! idle keep-alive connections are closed; bodies get theirs in
//! [`super::extract::ApiJson`]), a cap on open connections and one per
//! client address — and a graceful shutdown that lets in-flight requests
//! finish.

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt;

/// At most this many connections are served at once; further clients wait
/// in the kernel's accept queue.
pub const MAX_CONNECTIONS: usize = 1024;

/// Per client address: how many connections it may hold (`max`), and the
/// addresses exempt from that (trusted proxies, which carry everyone).
#[derive(Debug, Clone)]
pub struct PerIp {
    pub max: usize,
    pub exempt: Vec<IpAddr>,
}

/// Open connections per client address. Without this cap one address could
/// hold every one of the [`MAX_CONNECTIONS`] slots with idle connections
/// (each lives until the header deadline) and everyone else would wait in
/// the kernel's queue: 1,100 half-open connections from one address made
/// `/healthz` take 22 s.
#[derive(Default)]
struct OpenPerIp(Mutex<HashMap<IpAddr, usize>>);

/// One counted connection; uncounted when dropped (the connection ended).
struct IpSlot {
    open: Arc<OpenPerIp>,
    ip: IpAddr,
}

impl OpenPerIp {
    /// Count one more connection of `ip`; `None` at `max`.
    fn claim(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<IpSlot> {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            open: self.clone(),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut m = self.open.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                // Entries only for addresses with open connections: the map
                // stays as small as the connections are few.
                m.remove(&self.ip);
            }
        }
    }
}

/// Serve `app` on `listener` until `signal` completes; then stop accepting
/// and wait for the open connections to finish their requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    read_timeout: Duration,
    per_ip: PerIp,
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
    let open = Arc::new(OpenPerIp::default());
    let exempt: Vec<IpAddr> = per_ip.exempt.iter().map(|ip| ip.to_canonical()).collect();
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
        // The address the listener sees (not X-Forwarded-For: a header
        // arrives only after the connection has taken its slot).
        let ip = peer.ip().to_canonical();
        let ip_slot = if exempt.contains(&ip) {
            None
        } else {
            match open.claim(ip, per_ip.max) {
                Some(s) => Some(s),
                None => {
                    // Over its cap: closed at once, its global slot freed
                    // for others (a reset, not a lingering close).
                    let _ = tcp.set_zero_linger();
                    drop(tcp);
                    continue;
                }
            }
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
            drop(ip_slot);
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
    tracing::error!("hermes-operator serve: accept failed: {e}; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
