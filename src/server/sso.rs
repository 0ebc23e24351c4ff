//! `/auth/methods` and `/auth/oidc/*`: single sign-on (docs/design.md §14).
//! `start` sends the browser to the provider with a cookie that binds the
//! login to it; `callback` takes the provider's answer, verifies it and
//! sends the browser on with a one-time code (to the dashboard, or to the
//! loopback listener of `hermes-operator login --sso`); `exchange` turns
//! that code into the usual token pair. The rules are ops/sso.rs's and the
//! protocol crate::oidc's; this file carries values between them and
//! answers browsers with pages, scripts with JSON.

use super::auth::Secret;
use super::errors::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiQuery};
use super::middleware::{ClientIp, LogUser};
use super::state::{blocking, Action, ServerState};
use crate::oidc::{OidcError, Provider};
use crate::ops::sso::{self, Finisher, Refusal};
use axum::extract::{Extension, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// The cookie that binds a login to the browser that started it.
const COOKIE: &str = "hop_sso";

fn provider(st: &ServerState) -> ApiResult<Arc<Provider>> {
    st.sso.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "single sign-on is not configured on this server (auth.oidc)",
        )
        .with_code("sso_not_configured")
    })
}

/// `GET /auth/methods` (anyone): how to log in here, for the login page.
pub async fn methods(State(st): State<Arc<ServerState>>) -> Response {
    let sso = st
        .sso
        .as_ref()
        .map(|p| json!({"name": p.config().name, "start": "auth/oidc/start"}));
    Json(json!({"password": true, "sso": sso})).into_response()
}

/// A small page for a browser (the text escaped; no script, no style).
fn page(status: StatusCode, title: &str, message: &str) -> Response {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{t}</title></head><body><main><h1>{t}</h1><p id=\"sso-message\">{m}</p>\
         <p><a href=\"../../\">Back to the login page</a></p></main></body></html>",
        t = esc(title),
        m = esc(message)
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

fn refusal_status(r: Refusal) -> StatusCode {
    match r {
        Refusal::UnknownState | Refusal::Expired | Refusal::OtherBrowser => StatusCode::BAD_REQUEST,
        Refusal::ProviderError => StatusCode::BAD_GATEWAY,
        Refusal::InvalidToken => StatusCode::UNAUTHORIZED,
        _ => StatusCode::FORBIDDEN,
    }
}

fn unreachable_page(e: &OidcError) -> Response {
    tracing::warn!("single sign-on: {e}");
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Single sign-on is unavailable",
        "The identity provider cannot be reached right now. Try again later; accounts with a password can still log in on the login page.",
    )
}

/// The cookie's `Path` (the callback's directory, taken from the configured
/// callback URL, so a path prefix in front of `serve` is kept) and whether
/// it is sent only over https.
fn cookie_attrs(p: &Provider) -> (String, bool) {
    let url = &p.config().redirect_url;
    let path = url::Url::parse(url)
        .map(|u| u.path().trim_end_matches("/callback").to_string())
        .unwrap_or_else(|_| "/auth/oidc".into());
    (path, url.starts_with("https://"))
}

fn set_cookie(p: &Provider, value: &str, max_age: u32) -> HeaderValue {
    let (path, secure) = cookie_attrs(p);
    let v = format!(
        "{COOKIE}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("hop_sso=; Max-Age=0"))
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix("hop_sso="))
        .find(|v| !v.is_empty())
        .map(str::to_string)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StartQuery {
    cli_port: Option<u16>,
    cli_state: Option<String>,
    cli_challenge: Option<String>,
}

/// `GET /auth/oidc/start` (anyone): to the provider's login page.
pub async fn start(
    State(st): State<Arc<ServerState>>,
    Extension(ClientIp(client)): Extension<ClientIp>,
    ApiQuery(q): ApiQuery<StartQuery>,
) -> ApiResult<Response> {
    let p = provider(&st)?;
    let started = {
        let st2 = st.clone();
        blocking(move || {
            let f = match (
                q.cli_port,
                q.cli_state.as_deref(),
                q.cli_challenge.as_deref(),
            ) {
                (None, None, None) => Finisher::Browser,
                (Some(port), Some(state), Some(challenge)) => Finisher::Cli {
                    port,
                    state,
                    challenge,
                },
                _ => {
                    return Err(crate::Error::usage(
                        "a CLI login gives cli_port, cli_state and cli_challenge together",
                    ))
                }
            };
            sso::begin(&st2.app, &f, &client.to_string())
        })
        .await?
    };
    let Some(started) = started else {
        return Err(ApiError::throttled(
            "too many single sign-on logins started from this address; try again in a few minutes",
            60,
        ));
    };
    let url = match p.authorize_url(&started.request).await {
        Ok(u) => u,
        Err(e) => return Ok(unreachable_page(&e)),
    };
    let mut r = (StatusCode::FOUND, [(header::LOCATION, url)]).into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(&p, &started.cookie, sso::FLOW_TTL_SECS as u32),
    );
    Ok(r)
}

#[derive(Deserialize, Default)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// Where a finished (or refused) login goes: the dashboard with the code in
/// the fragment (never sent to a server, never in a Referer), or the CLI's
/// loopback listener.
fn onward(p: &Provider, cli: Option<&(u16, String)>, outcome: Result<&str, Refusal>) -> Response {
    let location = match cli {
        Some((port, state)) => {
            let mut u = url::Url::parse(&format!("http://127.0.0.1:{port}/callback"))
                .expect("a loopback URL");
            let (k, v) = match outcome {
                Ok(code) => ("code", code),
                Err(r) => ("error", r.as_str()),
            };
            u.query_pairs_mut()
                .append_pair(k, v)
                .append_pair("state", state);
            String::from(u)
        }
        None => match outcome {
            Ok(code) => {
                let base = p
                    .config()
                    .redirect_url
                    .trim_end_matches("auth/oidc/callback");
                format!("{base}#sso={code}")
            }
            Err(r) => return page(refusal_status(r), "Not logged in", r.message()),
        },
    };
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

/// A refused single sign-on, in the audit log.
async fn refuse(
    st: &Arc<ServerState>,
    p: &Arc<Provider>,
    client: &str,
    subject: Option<String>,
    r: Refusal,
    detail: String,
) -> ApiResult<()> {
    let (st, p, client) = (st.clone(), p.clone(), client.to_string());
    blocking(move || {
        sso::record_refusal(&st.app, p.config(), subject.as_deref(), &client, r, &detail)
    })
    .await
}

/// `GET /auth/oidc/callback` (the provider sends the browser here).
pub async fn callback(
    State(st): State<Arc<ServerState>>,
    Extension(ClientIp(client)): Extension<ClientIp>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> ApiResult<Response> {
    let p = provider(&st)?;
    st.admit_action(&format!("client:{client}"), Action::SsoCallback)
        .await?;
    let q: CallbackQuery = axum::extract::Query::try_from_uri(&uri)
        .map(|axum::extract::Query(v)| v)
        .unwrap_or_default();
    let client = client.to_string();
    let Some(state) = q.state.filter(|s| !s.is_empty() && s.len() <= 256) else {
        return Ok(page(
            StatusCode::BAD_REQUEST,
            "Not logged in",
            Refusal::UnknownState.message(),
        ));
    };
    let flow = {
        let (st2, c) = (st.clone(), cookie(&headers));
        blocking(move || sso::take_flow(&st2.app, &state, c.as_deref())).await?
    };
    let flow = match flow {
        Ok(f) => f,
        Err(r) => {
            refuse(&st, &p, &client, None, r, String::new()).await?;
            return Ok(page(refusal_status(r), "Not logged in", r.message()));
        }
    };
    let code = match (q.error, q.code) {
        (None, Some(c)) if !c.is_empty() && c.len() <= 4096 => c,
        (e, _) => {
            let detail = e
                .map(|e| format!("the provider answered error={e}"))
                .unwrap_or_else(|| "no code".into());
            refuse(&st, &p, &client, None, Refusal::ProviderError, detail).await?;
            return Ok(onward(&p, flow.cli.as_ref(), Err(Refusal::ProviderError)));
        }
    };
    finish_login(&st, &p, flow, &code, &client).await
}

/// The provider's code → verified claims → an account → a one-time code.
async fn finish_login(
    st: &Arc<ServerState>,
    p: &Arc<Provider>,
    flow: crate::store::users::Flow,
    code: &str,
    client: &str,
) -> ApiResult<Response> {
    let cli = flow.cli.as_ref();
    let login = match p.exchange(code, &flow.verifier, &flow.nonce).await {
        Ok(l) => l,
        Err(e @ OidcError::Unreachable(_)) => {
            refuse(st, p, client, None, Refusal::ProviderError, e.to_string()).await?;
            return Ok(unreachable_page(&e));
        }
        Err(e) => {
            let r = if matches!(e, OidcError::InvalidToken(..)) {
                Refusal::InvalidToken
            } else {
                Refusal::ProviderError
            };
            refuse(st, p, client, None, r, e.to_string()).await?;
            return Ok(onward(p, cli, Err(r)));
        }
    };
    let subject = login
        .claims
        .get("sub")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let admitted = {
        let (st2, p2) = (st.clone(), p.clone());
        let claims = login.claims.clone();
        blocking(move || sso::admit(&st2.app, p2.config(), &claims)).await?
    };
    let user = match admitted {
        Ok(u) => u,
        Err((r, detail)) => {
            refuse(st, p, client, subject, r, detail).await?;
            return Ok(onward(p, cli, Err(r)));
        }
    };
    let one_time = {
        let (st2, p2, binding) = (st.clone(), p.clone(), flow.grant_binding.clone());
        let subject = subject.unwrap_or_default();
        blocking(move || {
            sso::grant(
                &st2.app,
                p2.config(),
                &user,
                &subject,
                &login.tokens,
                binding,
            )
        })
        .await?
    };
    Ok(onward(p, cli, Ok(&one_time)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeBody {
    code: Secret,
    /// A CLI login's verifier (the browser's cookie proves a dashboard's).
    #[serde(default)]
    cli_verifier: Option<Secret>,
}

/// `POST /auth/oidc/exchange` (the dashboard, or `login --sso`): a one-time
/// code → the token pair of a login.
pub async fn exchange(
    State(st): State<Arc<ServerState>>,
    Extension(ClientIp(client)): Extension<ClientIp>,
    Extension(log_user): Extension<LogUser>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<ExchangeBody>,
) -> ApiResult<Response> {
    let p = provider(&st)?;
    let proof = match (&b.cli_verifier, cookie(&headers)) {
        (Some(v), _) => v.to_string(),
        (None, Some(c)) => c,
        (None, None) => {
            return Err(ApiError::unauthorized_as(
                "invalid_code",
                "this login code comes with the browser that started the login (or a CLI login's verifier)",
            ))
        }
    };
    if b.code.len() > 128 || proof.len() > 256 {
        return Err(ApiError::unauthorized_as(
            "invalid_code",
            "invalid login code",
        ));
    }
    let st2 = st.clone();
    let p2 = p.clone();
    let pair = blocking(move || {
        sso::redeem(
            &st2.app,
            p2.config(),
            st2.secret(),
            &b.code,
            &proof,
            &client.to_string(),
        )
    })
    .await?;
    let Some(pair) = pair else {
        return Err(ApiError::unauthorized_as(
            "invalid_code",
            "this login code is unknown, used or expired: log in again",
        ));
    };
    let _ = log_user.0.set(pair.user.username.clone());
    let mut r = Json(pair).into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, set_cookie(&p, "", 0));
    Ok(r)
}

/// Before a refresh: an SSO login is re-checked with the provider (every
/// refresh, so a user disabled there is out within one access-token
/// lifetime). `Ok` to go on.
pub async fn recheck_refresh(
    st: &Arc<ServerState>,
    refresh_token: &str,
    client: &str,
) -> ApiResult<()> {
    let (st2, t) = (
        st.clone(),
        zeroize::Zeroizing::new(refresh_token.to_string()),
    );
    let Some(login) = blocking(move || sso::login_of_refresh(&st2.app, &t)).await? else {
        return Ok(());
    };
    let result = match &st.sso {
        Some(p) => {
            let tokens = crate::oidc::ProviderTokens {
                access_token: login.provider_access.clone(),
                refresh_token: login.provider_refresh.clone(),
            };
            p.recheck(&tokens).await.map_err(|e| {
                tracing::warn!("single sign-on re-check: {e}");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the identity provider cannot be reached to renew this login; try again later",
                )
                .with_code("sso_unavailable")
            })?
        }
        None => crate::oidc::Recheck::Gone("single sign-on is no longer configured".into()),
    };
    let (st2, client) = (st.clone(), client.to_string());
    let live = blocking(move || sso::rechecked(&st2.app, &login, &result, &client)).await?;
    if live {
        Ok(())
    } else {
        Err(ApiError::unauthorized_as(
            "sso_revoked",
            "your identity provider no longer accepts this login: log in again",
        ))
    }
}
