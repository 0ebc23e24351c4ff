//! The frame around every request, in one middleware: request id (an
//! incoming sane `x-request-id` is kept, else one is generated), client
//! address (proxy headers only from trusted proxies), security headers, JSON
//! bodies for every error (404/405/413/408 from the router and layers too),
//! and one access-log line on stderr — method, path WITHOUT the query
//! string, status, time, client, user, request id; never a token, a password
//! or a query string. A response sent before the request body was read whole
//! (413, or a 401/403 ahead of the body) carries `Connection: close`: the
//! connection is not reusable, and a client that pooled it would see its next
//! request fail.

use super::errors::{code_of_status, error_body, ErrorDetail};
use super::state::ServerState;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::Body as _;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

/// The client address a request is attributed to (audit events, throttling).
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub IpAddr);

/// The request id (also sent back as `x-request-id`).
#[derive(Clone, Debug)]
pub struct RequestId(pub Arc<str>);

/// Filled by the auth extractor so the access log can name the user.
#[derive(Clone, Default)]
pub struct LogUser(pub Arc<OnceLock<String>>);

static REQ_COUNTER: AtomicU64 = AtomicU64::new(0);

fn process_tag() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| crate::crypto::random_hex(4))
}

fn sane_request_id(v: &HeaderValue) -> Option<&str> {
    let s = v.to_str().ok()?;
    (!s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':')))
    .then_some(s)
}

/// The client: the TCP peer, unless the peer is a trusted proxy; then
/// `X-Real-IP`, else the right-most `X-Forwarded-For` entry that is not
/// itself a trusted proxy.
pub fn client_ip(st: &ServerState, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    let peer = peer.to_canonical();
    if !st.is_trusted_proxy(peer) {
        return peer;
    }
    if let Some(ip) = headers
        .get("x-real-ip")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<IpAddr>().ok())
    {
        return ip.to_canonical();
    }
    if let Some(xff) = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .next_back()
    {
        for part in xff.rsplit(',') {
            match part.trim().parse::<IpAddr>() {
                Ok(ip) if st.is_trusted_proxy(ip) => continue,
                Ok(ip) => return ip.to_canonical(),
                Err(_) => break,
            }
        }
    }
    peer
}

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

#[expect(
    clippy::too_many_lines,
    reason = "every request's frame in one place: request id, client address, limits on the URI, headers and body, the read deadline, JSON bodies for the router's own errors, security headers and the access-log line all wrap the same call"
)]
pub async fn frame(
    State(st): State<Arc<ServerState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request<Body>,
    next: Next,
) -> Response {
    let started = Instant::now();
    let rid: Arc<str> = match req.headers().get("x-request-id").and_then(sane_request_id) {
        Some(s) => Arc::from(s),
        None => Arc::from(format!(
            "{}-{}",
            process_tag(),
            REQ_COUNTER.fetch_add(1, Ordering::Relaxed)
        )),
    };
    let client = client_ip(&st, peer.ip(), req.headers());
    let method = req.method().clone();
    // The path only: query strings can carry secrets (?password=).
    let path = crate::output::clip(&crate::output::sanitize(req.uri().path()), 200);
    let user = LogUser::default();
    req.extensions_mut().insert(ClientIp(client));
    req.extensions_mut().insert(RequestId(rid.clone()));
    req.extensions_mut().insert(user.clone());
    // No body at all (GET, Content-Length: 0) counts as read.
    let body = Arc::new(BodyState {
        read: AtomicBool::new(req.body().is_end_stream()),
        timed_out: AtomicBool::new(false),
    });
    let deadline = tokio::time::Instant::now() + st.read_timeout;
    let req = req.map(|b| {
        Body::new(Tracked {
            inner: b,
            state: body.clone(),
            deadline,
            sleep: None,
        })
    });

    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    let too_big = if req.uri().to_string().len() > super::MAX_URI {
        Some((
            axum::http::StatusCode::URI_TOO_LONG,
            format!(
                "the request URI is longer than {} KiB",
                super::MAX_URI / 1024
            ),
        ))
    } else if req.headers().len() > super::MAX_HEADERS || header_bytes > super::MAX_HEADER_BYTES {
        Some((
            axum::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!(
                "at most {} request headers and {} KiB of them",
                super::MAX_HEADERS,
                super::MAX_HEADER_BYTES / 1024
            ),
        ))
    } else {
        None
    };
    let mut resp = match too_big {
        Some((status, msg)) => super::errors::ApiError::new(status, msg).into_response(),
        None => next.run(req).await,
    };
    if body.timed_out.load(Ordering::Acquire) {
        // Whatever the extractor made of the failed read: the client was too slow.
        resp = super::errors::ApiError::new(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {} s",
                st.read_timeout.as_secs()
            ),
        )
        .into_response();
    }
    if !body.read.load(Ordering::Acquire) {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }

    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    // (text/html: a page a browser was sent to, e.g. a refused single sign-on.)
    if status.as_u16() >= 400 && !is_json {
        // Errors from the router (404/405), limits (413) and timeouts (408):
        // same JSON shape as ours.
        let msg = match status.as_u16() {
            404 => "no such route".to_string(),
            405 => format!("method {method} is not allowed on this route"),
            408 => "the request took too long".to_string(),
            413 => format!(
                "the request body is larger than {} KiB",
                super::BODY_LIMIT / 1024
            ),
            _ => status
                .canonical_reason()
                .unwrap_or("error")
                .to_ascii_lowercase(),
        };
        let (mut parts, _) = resp.into_parts();
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp = Response::from_parts(parts, Body::from(error_body(code_of_status(status), &msg)));
    }
    let h = resp.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let Ok(v) = HeaderValue::from_str(&rid) {
        h.insert("x-request-id", v);
    }

    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let who = user.0.get().map(String::as_str).unwrap_or("-");
    let detail = resp
        .extensions()
        .get::<ErrorDetail>()
        .map(|d| format!(" error={:?}", d.0))
        .unwrap_or_default();
    st.log.line(format!(
        "{} {client} {who} \"{method} {path}\" {} {ms:.1}ms rid={rid}{detail}",
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ"),
        status.as_u16(),
    ));
    resp
}

/// What became of a request's body.
struct BodyState {
    /// Read to the end.
    read: AtomicBool,
    /// Not read to the end by the deadline.
    timed_out: AtomicBool,
}

/// A request body that records when it has been read to the end, and fails
/// once the read deadline passes: a client dribbling bytes would otherwise
/// hold a connection (and, for chat, a handler with no other timeout)
/// forever. Request headers have their own deadline in [`super::listen`].
struct Tracked {
    inner: Body,
    state: Arc<BodyState>,
    deadline: tokio::time::Instant,
    /// Made on the first wait: most bodies arrive with their headers.
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl http_body::Body for Tracked {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let p = Pin::new(&mut self.inner).poll_frame(cx);
        match p {
            Poll::Ready(None) => self.state.read.store(true, Ordering::Release),
            Poll::Ready(Some(_)) if self.inner.is_end_stream() => {
                self.state.read.store(true, Ordering::Release)
            }
            Poll::Pending => {
                let deadline = self.deadline;
                let sleep = self
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if sleep.as_mut().poll(cx).is_ready() {
                    self.state.timed_out.store(true, Ordering::Release);
                    return Poll::Ready(Some(Err(axum::Error::new("request body timeout"))));
                }
            }
            Poll::Ready(Some(_)) => {}
        }
        p
    }

    fn is_end_stream(&self) -> bool {
        let end = self.inner.is_end_stream();
        if end {
            self.state.read.store(true, Ordering::Release);
        }
        end
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
