//! The dashboard: static files under `src/server/dashboard/`, embedded in
//! the binary. To add one: put it in that folder and add one row here
//! (URL path without the leading slash, content type, bytes). `/` serves
//! `index.html`.

use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};

/// (path, content type, bytes)
pub const FILES: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("dashboard/index.html"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("dashboard/style.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("dashboard/favicon.svg"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("dashboard/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_bytes!("dashboard/api.js"),
    ),
    (
        "dom.js",
        "text/javascript; charset=utf-8",
        include_bytes!("dashboard/dom.js"),
    ),
    (
        "chat.js",
        "text/javascript; charset=utf-8",
        include_bytes!("dashboard/chat.js"),
    ),
    (
        "sessions.js",
        "text/javascript; charset=utf-8",
        include_bytes!("dashboard/sessions.js"),
    ),
    (
        "audit.js",
        "text/javascript; charset=utf-8",
        include_bytes!("dashboard/audit.js"),
    ),
    (
        "users.js",
        "text/javascript; charset=utf-8",
        include_bytes!("dashboard/users.js"),
    ),
    (
        "account.js",
        "text/javascript; charset=utf-8",
        include_bytes!("dashboard/account.js"),
    ),
    (
        "keys.js",
        "text/javascript; charset=utf-8",
        include_bytes!("dashboard/keys.js"),
    ),
    (
        "events.js",
        "text/javascript; charset=utf-8",
        include_bytes!("dashboard/events.js"),
    ),
    (
        "markdown.js",
        "text/javascript; charset=utf-8",
        include_bytes!("dashboard/markdown.js"),
    ),
    (
        "approvals.js",
        "text/javascript; charset=utf-8",
        include_bytes!("dashboard/approvals.js"),
    ),
    (
        "usage.js",
        "text/javascript; charset=utf-8",
        include_bytes!("dashboard/usage.js"),
    ),
];

/// The embedded file for a request path (`/` = `index.html`).
pub fn lookup(path: &str) -> Option<(&'static str, &'static [u8])> {
    let p = path.strip_prefix('/')?;
    let p = if p.is_empty() { "index.html" } else { p };
    FILES
        .iter()
        .find(|(name, _, _)| *name == p)
        .map(|(_, ct, bytes)| (*ct, *bytes))
}

pub fn serve(method: &Method, path: &str) -> Option<Response> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let (ct, bytes) = lookup(path)?;
    Some(
        (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, ct),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            bytes,
        )
            .into_response(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn index_is_served_at_root() {
        assert!(super::lookup("/").is_some());
        assert!(super::lookup("/index.html").is_some());
        assert!(super::lookup("/../Cargo.toml").is_none());
    }
}
