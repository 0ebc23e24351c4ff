//! JSON errors for the HTTP mode. [`status_of`] is the ONE place where an
//! error [`Kind`] becomes an HTTP status; everything else (authentication
//! failures, throttling, limits, fallbacks) is built here too, so every error
//! body is `{"error":{"code","message"}}`.

use crate::error::{Error, Kind};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Kind → HTTP status (the exit-code table's twin for HTTP).
pub fn status_of(kind: Kind) -> StatusCode {
    match kind {
        Kind::Usage => StatusCode::BAD_REQUEST,
        Kind::Permission => StatusCode::FORBIDDEN,
        Kind::NotFound => StatusCode::NOT_FOUND,
        Kind::Conflict => StatusCode::CONFLICT,
        // The log does not verify, or a checkpoint contradicts it: the state
        // of the resource conflicts with what it should be.
        Kind::Integrity => StatusCode::CONFLICT,
        Kind::Busy => StatusCode::SERVICE_UNAVAILABLE,
        Kind::Unavailable => StatusCode::BAD_GATEWAY,
        Kind::Unhealthy => StatusCode::SERVICE_UNAVAILABLE,
        Kind::Config
        | Kind::Corrupt
        | Kind::Internal
        | Kind::UpdateFailed
        | Kind::PortInUse
        | Kind::ClosedPipe
        | Kind::Interrupted => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The machine-readable code for statuses that do not come from a [`Kind`].
pub fn code_of_status(s: StatusCode) -> &'static str {
    match s.as_u16() {
        400 => "usage",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "timeout",
        409 => "conflict",
        414 => "uri_too_long",
        431 => "headers_too_large",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        429 => "too_many_requests",
        502 => "unavailable",
        503 => "busy",
        _ if s.is_server_error() => "internal",
        _ => "error",
    }
}

/// Details of a failure that the client does not see, for the access log.
#[derive(Clone, Debug)]
pub struct ErrorDetail(pub String);

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Logged with the request id, never sent.
    pub detail: Option<String>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code_of_status(status),
            message: message.into(),
            detail: None,
            headers: Vec::new(),
        }
    }

    /// 503 `hermes_unconfigured`: no Hermes API key to talk to Hermes with.
    pub fn hermes_unconfigured(detail: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "hermes_unconfigured",
            message: "Hermes is not configured for this server: it has no Hermes API key; an administrator must set it (hermes.api_key_env in Hermes' .env)".into(),
            detail: Some(detail.into()),
            headers: Vec::new(),
        }
    }

    /// 401 with its own code (`totp_required`, …).
    pub fn unauthorized_as(code: &'static str, message: impl Into<String>) -> Self {
        let mut e = Self::unauthorized(message);
        e.code = code;
        e
    }

    /// 401: no, bad, expired or revoked credentials.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, message);
        e.headers.push((
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"hermes-operator\""),
        ));
        e
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// A finer machine code than the status's (e.g. `password_change_required`).
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 429 with `Retry-After` (whole seconds, at least 1).
    pub fn throttled(message: impl Into<String>, retry_after_secs: u64) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, message);
        e.headers.push((
            header::RETRY_AFTER,
            HeaderValue::from(retry_after_secs.max(1)),
        ));
        e
    }

    pub fn with_detail(mut self, d: impl Into<String>) -> Self {
        self.detail = Some(d.into());
        self
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = status_of(e.kind);
        let full = match e.hint_text() {
            Some(h) => format!("{}: {} (hint: {h})", e.kind.code(), e.message),
            None => format!("{}: {}", e.kind.code(), e.message),
        };
        // Server-side failures get a safe message; the details (paths, SQL
        // errors, Hermes' URL) go to the access log with the request id.
        if let Some(crate::error::Reason::Throttled { retry_after_secs }) = e.reason {
            // A limit's refusal says what to wait for; not a masked 503.
            return ApiError::throttled(e.message, retry_after_secs);
        }
        let (message, detail): (String, Option<String>) = match e.kind {
            Kind::Internal
            | Kind::UpdateFailed
            | Kind::Unhealthy
            | Kind::PortInUse
            | Kind::ClosedPipe
            | Kind::Interrupted => (
                "internal error; the server log has details under this request's id".into(),
                Some(full),
            ),
            Kind::Config => (
                "the server is misconfigured; the server log has details under this request's id"
                    .into(),
                Some(full),
            ),
            Kind::Corrupt => (
                "a database is corrupt or has an incompatible schema; the server log has details"
                    .into(),
                Some(full),
            ),
            Kind::Busy => (
                "a database or Hermes is busy; retry in a moment".into(),
                Some(full),
            ),
            // Hermes' address is internal: it stays in the server's log.
            Kind::Unavailable => (
                format!(
                    "Hermes (the agent) is unavailable: {}",
                    crate::output::clip(
                        &crate::output::redact_urls(&e.message, "Hermes' API server"),
                        300
                    )
                ),
                Some(full),
            ),
            _ => (e.message, None),
        };
        let mut a = ApiError {
            status,
            code: e.kind.code(),
            message,
            detail,
            headers: Vec::new(),
        };
        if e.kind == Kind::Busy {
            a.headers
                .push((header::RETRY_AFTER, HeaderValue::from_static("1")));
        }
        a
    }
}

/// A JSON error body.
pub fn error_body(code: &str, message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"error": {"code": code, "message": message}}))
        .unwrap_or_default()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            error_body(self.code, &self.message),
        )
            .into_response();
        for (k, v) in self.headers {
            r.headers_mut().append(k, v);
        }
        if let Some(d) = self.detail {
            r.extensions_mut().insert(ErrorDetail(d));
        }
        r
    }
}

pub type ApiResult<T> = std::result::Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_status_and_server_errors_are_masked() {
        for k in Kind::ALL {
            let s = status_of(k);
            assert!(s.is_client_error() || s.is_server_error(), "{k:?}");
            let a = ApiError::from(Error::new(k, "/secret/path/users.db: boom"));
            if s.is_server_error() && k != Kind::Unavailable {
                assert!(!a.message.contains("/secret/path"), "{k:?}: {}", a.message);
                assert!(a.detail.is_some());
            }
            if s.is_server_error() {
                let a = ApiError::from(Error::new(
                    k,
                    "not reachable at http://127.0.0.1:8642: refused",
                ));
                assert!(!a.message.contains("127.0.0.1"), "{k:?}: {}", a.message);
            }
        }
        assert_eq!(status_of(Kind::Usage), StatusCode::BAD_REQUEST);
        assert_eq!(status_of(Kind::Unavailable), StatusCode::BAD_GATEWAY);
        assert_eq!(status_of(Kind::Busy), StatusCode::SERVICE_UNAVAILABLE);
    }
}
