// api.js — the HTTP API of `hermes-operator serve`: tokens, JSON calls,
// and chat turns streamed as SSE (fetch + ReadableStream: EventSource can
// neither POST nor send an Authorization header).
//
// Tokens live in memory and in sessionStorage (this tab only, gone when it
// closes). A 401 triggers ONE refresh (rotating the refresh token; concurrent
// callers share it, since reusing a rotated token revokes the whole login)
// and one retry; if that fails too, the login screen comes back.
//
// URLs are relative, so the dashboard also works behind a path prefix.

const KEY = 'hermes-operator.auth';

let auth = load();
let onExpired = () => {};

function load() {
  try {
    const v = JSON.parse(sessionStorage.getItem(KEY));
    return v && v.access_token && v.refresh_token ? v : null;
  } catch {
    return null;
  }
}

function save(a) {
  auth = a;
  if (a) sessionStorage.setItem(KEY, JSON.stringify(a));
  else sessionStorage.removeItem(KEY);
}

function keep(t) {
  save({ access_token: t.access_token, refresh_token: t.refresh_token, user: t.user });
}

export function hasTokens() {
  return auth !== null;
}

/** Called once the tokens are gone for good (refresh refused). */
export function setOnExpired(fn) {
  onExpired = fn;
}

/** An error from an `{"error":{"code","message"}}` body (or the status line). */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function errorFrom(r) {
  let code = `http_${r.status}`;
  let message = `${r.status} ${r.statusText || 'error'}`.trim();
  try {
    const b = await r.json();
    if (b && b.error) {
      code = b.error.code || code;
      message = b.error.message || message;
    }
  } catch { /* not JSON: keep the status line */ }
  const wait = r.headers.get('retry-after');
  if (wait && (r.status === 429 || r.status === 503)) message += ` (retry in ${wait} s)`;
  const e = new ApiError(r.status, code, message);
  e.requestId = r.headers.get('x-request-id');
  return e;
}

let refreshing = null;

function refresh() {
  if (!auth) return Promise.resolve(false);
  if (!refreshing) {
    const body = JSON.stringify({ refresh_token: auth.refresh_token });
    refreshing = fetch('auth/refresh', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body,
    })
      .then(async (r) => {
        if (!r.ok) return false;
        keep(await r.json());
        return true;
      })
      .catch(() => false)
      .finally(() => { refreshing = null; });
  }
  return refreshing;
}

/** fetch() with the access token; on 401: refresh once, retry once. */
export async function authFetch(url, init = {}) {
  const go = () => {
    const headers = new Headers(init.headers || {});
    if (auth) headers.set('Authorization', `Bearer ${auth.access_token}`);
    return fetch(url, { ...init, headers });
  };
  const used = auth && auth.access_token;
  let r = await go();
  if (r.status === 401 && auth) {
    // Another request may have refreshed meanwhile: then just retry.
    const fresh = auth.access_token !== used || (await refresh());
    if (fresh) r = await go();
    if (r.status === 401) {
      save(null);
      onExpired();
    }
  }
  return r;
}

/** A JSON API call; throws ApiError for error responses. */
export async function api(path, { method = 'GET', body, query } = {}) {
  let url = path;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined && v !== null && v !== '') q.set(k, v);
    }
    if (q.toString()) url += `?${q}`;
  }
  const init = { method, headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const r = await authFetch(url, init);
  if (!r.ok) throw await errorFrom(r);
  return r.json();
}

/** Log in; `totp` (a code or recovery code) when the account has two-factor login. */
/** Fetch `path` with the login and save the answer as a file. */
export async function download(path, filename) {
  const r = await authFetch(path);
  if (!r.ok) throw await errorFrom(r);
  const url = URL.createObjectURL(await r.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export async function login(username, password, totp) {
  const body = totp ? { username, password, totp } : { username, password };
  const r = await fetch('auth/login', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify(body),
  });
  if (!r.ok) throw await errorFrom(r);
  keep(await r.json());
}

/** How this server lets people log in: {password, sso: {name, start} | null}. */
export async function authMethods() {
  const r = await fetch('auth/methods', { headers: { Accept: 'application/json' } });
  if (!r.ok) throw await errorFrom(r);
  return r.json();
}

/**
 * Finish a single sign-on: the one-time code the server put in the URL's
 * fragment becomes a login (the browser's cookie from the start of the
 * login goes along; without it the code is refused).
 */
export async function ssoExchange(code) {
  const r = await fetch('auth/oidc/exchange', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({ code }),
  });
  if (!r.ok) throw await errorFrom(r);
  keep(await r.json());
}

/** Change one's own password; the answer is a fresh login (kept). */
export async function changePassword(current_password, new_password) {
  keep(await api('api/me/password', { method: 'POST', body: { current_password, new_password } }));
}

/** Start enrolling an authenticator (needs the current password): {uri, secret, recovery_codes}. */
export function beginTotp(current_password) {
  return api('api/me/totp', { method: 'POST', body: { current_password } });
}

/**
 * Confirm the pending enrolment with the current password and the
 * authenticator's current code. Every earlier login of the account ends; the
 * answer is a fresh one (with the second factor), kept like a login's.
 */
export async function confirmTotp(current_password, code) {
  keep(await api('api/me/totp/confirm', { method: 'POST', body: { current_password, code } }));
}

/** Revoke this login on the server (best effort), then forget the tokens. */
export async function logout() {
  if (auth) {
    const body = JSON.stringify({ refresh_token: auth.refresh_token });
    try {
      await fetch('auth/logout', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${auth.access_token}` },
        body,
      });
    } catch { /* offline: the tokens are dropped anyway */ }
  }
  save(null);
}

/**
 * One chat turn as SSE: `onEvent(type, data)` for every event (session,
 * run_started, delta, tool_started, tool_completed, approval_request,
 * approval_decision, cost_alert, done, error). Resolves when the stream ends.
 */
export async function chatStream(body, onEvent) {
  const r = await authFetch('api/chat', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream' },
    body: JSON.stringify(body),
  });
  if (!r.ok) throw await errorFrom(r);
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let i;
    while ((i = buf.search(/\r?\n\r?\n/)) >= 0) {
      const frame = buf.slice(0, i);
      buf = buf.slice(i).replace(/^\r?\n\r?\n/, '');
      dispatch(frame, onEvent);
    }
  }
  if (buf.trim()) dispatch(buf, onEvent);
}

function dispatch(frame, onEvent) {
  let type = 'message';
  const data = [];
  for (const raw of frame.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (!line || line.startsWith(':')) continue; // keep-alive comment
    const c = line.indexOf(':');
    const field = c < 0 ? line : line.slice(0, c);
    let val = c < 0 ? '' : line.slice(c + 1);
    if (val.startsWith(' ')) val = val.slice(1);
    if (field === 'event') type = val;
    else if (field === 'data') data.push(val);
  }
  if (!data.length) return;
  let obj;
  try {
    obj = JSON.parse(data.join('\n'));
  } catch {
    obj = { raw: data.join('\n') };
  }
  onEvent(type, obj);
}
