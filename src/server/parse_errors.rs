//! hyper answers a request it cannot parse — a URI or headers beyond its own
//! limits (set in `server/listen.rs`), a malformed request line or header —
//! by itself, before the router sees anything, with an empty body. Every
//! other error this server sends has the JSON body `{"error":{"code",
//! "message"}}` (`server/errors.rs`), and clients (and the issue that asked
//! for it) expect that shape from every answer.
//!
//! hyper offers no hook for those automatic answers, so the connection's I/O
//! is wrapped: a write that is exactly such an answer — a 400, 414 or 431
//! status line, nothing but `connection`/`content-length: 0`/`date` headers,
//! and the blank line — is replaced by the same status with a JSON body.
//! No handler here sends a bodiless 400/414/431, and a body chunk cannot be a
//! complete HTTP head of that form, so nothing else is touched.
//!
//! This depends on the exact bytes hyper writes, so it is pinned to the
//! hyper it was checked with ([`CHECKED_WITH_HYPER`]): a unit test fails
//! when Cargo.lock moves to another hyper, until someone re-runs
//! `hardening::oversized_uris_and_headers_get_the_json_error_body`
//! (tests/serve/hardening.rs, which sends the requests hyper refuses) and
//! updates the constant.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The hyper release whose automatic error answers [`replacement`] knows.
pub const CHECKED_WITH_HYPER: &str = "1.12.0";

/// The connection's stream with hyper's automatic error answers rewritten.
pub struct JsonParseErrors<T> {
    inner: T,
    /// A replacement being written: its bytes, how many are out, and the
    /// length of hyper's buffer to report once all are.
    pending: Option<(Vec<u8>, usize, usize)>,
}

impl<T> JsonParseErrors<T> {
    pub fn new(inner: T) -> Self {
        JsonParseErrors {
            inner,
            pending: None,
        }
    }
}

/// The JSON answer for hyper's automatic `head`, or None when `head` is
/// anything else.
fn replacement(head: &[u8]) -> Option<Vec<u8>> {
    if !head.starts_with(b"HTTP/1.1 4") || head.len() > 512 || !head.ends_with(b"\r\n\r\n") {
        return None;
    }
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text[..text.len() - 4].split("\r\n");
    let status_line = lines.next()?;
    let (status, message) = match status_line {
        "HTTP/1.1 400 Bad Request" => (400, "the request is not valid HTTP/1.1".to_string()),
        "HTTP/1.1 414 URI Too Long" => (
            414,
            format!(
                "the request URI is longer than {} KiB",
                super::MAX_URI / 1024
            ),
        ),
        "HTTP/1.1 431 Request Header Fields Too Large" => (
            431,
            format!(
                "at most {} request headers and {} KiB of them",
                super::MAX_HEADERS,
                super::MAX_HEADER_BYTES / 1024
            ),
        ),
        _ => return None,
    };
    let mut date = None;
    let mut bodiless = false;
    for line in lines {
        let (name, value) = line.split_once(": ")?;
        match name.to_ascii_lowercase().as_str() {
            "content-length" if value == "0" => bodiless = true,
            "connection" => {}
            "date" => date = Some(value),
            _ => return None,
        }
    }
    if !bodiless {
        return None;
    }
    let code = super::errors::code_of_status(axum::http::StatusCode::from_u16(status).ok()?);
    let body = serde_json::json!({"error": {"code": code, "message": message}}).to_string();
    let mut out = format!(
        "{status_line}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\ncache-control: no-store\r\nx-content-type-options: nosniff\r\n",
        body.len()
    );
    if let Some(d) = date {
        out.push_str(&format!("date: {d}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&body);
    Some(out.into_bytes())
}

impl<T: AsyncWrite + Unpin> JsonParseErrors<T> {
    /// Write the pending replacement out; then report hyper's buffer as written.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let (bytes, off, claimed) = self.pending.as_mut().expect("a pending replacement");
        while *off < bytes.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*off..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *off += n;
        }
        let claimed = *claimed;
        self.pending = None;
        Poll::Ready(Ok(claimed))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for JsonParseErrors<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for JsonParseErrors<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.pending.is_none() {
            if let Some(r) = replacement(buf) {
                this.pending = Some((r, 0, buf.len()));
            }
        }
        if this.pending.is_some() {
            return this.poll_pending(cx);
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // hyper's automatic answer is a head on its own: only a write whose
        // first non-empty buffer is one can be it.
        if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
            if this.pending.is_some() || replacement(first).is_some() {
                return Pin::new(this).poll_write(cx, first);
            }
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pending.is_some() {
            ready!(this.poll_pending(cx))?;
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pending.is_some() {
            ready!(this.poll_pending(cx))?;
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::replacement;

    /// See the module's documentation: a new hyper needs a new check.
    #[test]
    fn pinned_to_the_hyper_it_was_checked_with() {
        let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock"))
            .expect("Cargo.lock is committed");
        let hyper: Vec<&str> = lock
            .split("[[package]]")
            .filter(|p| p.contains("\nname = \"hyper\"\n"))
            .filter_map(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
            .map(|v| v.trim_matches('"'))
            .collect();
        assert_eq!(
            hyper,
            [super::CHECKED_WITH_HYPER],
            "hyper changed: re-run tests/serve/hardening.rs oversized_uris_and_headers_get_the_json_error_body, then update CHECKED_WITH_HYPER"
        );
    }

    #[test]
    fn only_hypers_bodiless_parse_error_answers_are_replaced() {
        let hyper_431 = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Wed, 02 Dec 2026 01:00:00 GMT\r\n\r\n";
        let r = String::from_utf8(replacement(hyper_431).unwrap()).unwrap();
        let (head, body) = r.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(head.contains("content-type: application/json"));
        assert!(head.contains("date: Wed, 02 Dec 2026 01:00:00 GMT"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], "headers_too_large");
        let v414 = replacement(b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\n").unwrap();
        assert!(String::from_utf8(v414).unwrap().contains("uri_too_long"));
        // Anything else passes through: a body, other statuses, a head with
        // a body or other headers, a partial head.
        for other in [
            &b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 12\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n",
            b"{\"error\":{}}",
        ] {
            assert!(replacement(other).is_none(), "{}", String::from_utf8_lossy(other));
        }
    }
}
