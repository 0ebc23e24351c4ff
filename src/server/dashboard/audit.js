// audit.js — for auditors and admins: the event chain's verify status, a
// daily usage chart (SVG drawn by hand), per-user usage, one user's report
// (#/user/NAME), and the replay timeline of one session with the integrity
// status of every event.

import { api } from './api.js';
import { h, s, errorBox, badge, fmtTime, fmtUsd, fmtInt, link, table, field, pretty } from './dom.js';
import { sessionRow } from './sessions.js';

const DAYS = 7;

const METRICS = {
  tokens: { label: 'Tokens (in + out)', get: (u) => u.input_tokens + u.output_tokens, fmt: (v) => compact(v) },
  cost: { label: 'Cost (USD)', get: (u) => u.cost_usd, fmt: (v) => fmtUsd(v) },
  llm_calls: { label: 'LLM calls', get: (u) => u.llm_calls, fmt: (v) => compact(v) },
  sessions: { label: 'Sessions', get: (u) => u.sessions, fmt: (v) => compact(v) },
};

function compact(v) {
  if (v >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (v >= 1e4) return `${(v / 1e3).toFixed(1)}k`;
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}

function ymd(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

function timeZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

export async function auditView(el) {
  const verifyBox = h('section', { id: 'verify', class: 'card', 'aria-labelledby': 'verify-h' });
  const usageBox = h('section', { id: 'usage', class: 'card', 'aria-labelledby': 'usage-h' });
  const replayForm = h('form', { class: 'inline', id: 'replay-form' },
    field(h('label', { for: 'replay-id' }, 'Session id'),
      h('input', { id: 'replay-id', name: 'id', placeholder: 'op_…', required: true, size: 20 })),
    h('button', { type: 'submit', class: 'secondary' }, 'Replay'));
  replayForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const id = replayForm.elements.id.value.trim();
    if (id) location.hash = `#/replay/${encodeURIComponent(id)}`;
  });
  const userForm = h('form', { class: 'inline', id: 'user-report-form' },
    field(h('label', { for: 'report-user' }, 'Username'),
      h('input', { id: 'report-user', name: 'user', required: true, size: 16 })),
    h('button', { type: 'submit', class: 'secondary' }, 'Report'));
  userForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const u = userForm.elements.user.value.trim();
    if (u) location.hash = `#/user/${encodeURIComponent(u)}`;
  });
  el.append(h('h1', null, 'Audit'), verifyBox, usageBox,
    h('section', { class: 'card' }, h('h2', null, 'Replay a session'),
      h('p', { class: 'muted' }, 'Or pick one from ', link(['sessions'], 'the session list'), '.'), replayForm),
    h('section', { class: 'card' }, h('h2', null, 'One user'),
      h('p', { class: 'muted' }, 'Their sessions, usage and latest events.'), userForm));
  await Promise.all([verify(verifyBox), usage(usageBox)]);
}

async function verify(box) {
  const again = h('button', { type: 'button', class: 'secondary', onclick: () => verify(box) }, 'Verify again');
  box.replaceChildren(h('h2', { id: 'verify-h' }, 'Event log integrity'), h('p', { class: 'muted' }, 'Verifying…'));
  let v;
  try {
    v = await api('api/audit/verify');
  } catch (err) {
    box.replaceChildren(h('h2', { id: 'verify-h' }, 'Event log integrity'), errorBox(err), again);
    return;
  }
  const status = h('p', { id: 'verify-status', dataset: { ok: String(v.ok) } },
    badge(v.ok, v.ok ? '✓ chain verified' : '✗ verification FAILED'));
  const facts = h('dl', { class: 'facts' },
    h('dt', null, 'Events'), h('dd', null, fmtInt(v.events)),
    h('dt', null, 'Sequence'), h('dd', null, v.events ? `${v.first_seq ?? '?'} – ${v.last_seq}` : '—'),
    h('dt', null, 'Head hash'), h('dd', { class: 'id' }, v.head_hash ? `${v.head_hash.slice(0, 16)}…` : '—'),
    h('dt', null, 'Signed checkpoints checked'), h('dd', null, fmtInt(v.checkpoints_checked)),
    v.anchor_seq !== null && v.anchor_seq !== undefined ? [h('dt', null, 'Pruned up to (anchor)'), h('dd', null, v.anchor_seq)] : null);
  const problem = v.problem
    ? h('p', { class: 'error', role: 'alert' },
      `${v.problem.kind}${v.problem.seq ? ` at seq ${v.problem.seq}` : ''}${v.problem.event_id ? ` (${v.problem.event_id})` : ''}: ${v.problem.message}`)
    : null;
  box.replaceChildren(...[h('h2', { id: 'verify-h' }, 'Event log integrity'), status, problem, facts, again].filter(Boolean));
}

async function usage(box) {
  const tz = timeZone();
  const dates = [];
  for (let i = DAYS - 1; i >= 0; i--) {
    const d = new Date();
    d.setDate(d.getDate() - i);
    dates.push(ymd(d));
  }
  box.replaceChildren(h('h2', { id: 'usage-h' }, `Daily usage, last ${DAYS} days`), h('p', { class: 'muted' }, 'Loading…'));
  let days;
  try {
    days = await Promise.all(dates.map((date) => api('api/audit/daily-summary', { query: { date, tz } })));
  } catch (err) {
    box.replaceChildren(h('h2', { id: 'usage-h' }, 'Daily usage'), errorBox(err));
    return;
  }
  const chartBox = h('div', { class: 'chart-box' });
  let metric = 'tokens';
  const radios = h('fieldset', { class: 'inline' }, h('legend', null, 'Show'),
    Object.entries(METRICS).map(([key, m]) => h('label', null,
      h('input', { type: 'radio', name: 'metric', value: key, checked: key === metric,
        onchange: () => { metric = key; chartBox.replaceChildren(barChart(days, METRICS[metric])); } }),
      ` ${m.label}`)));
  chartBox.appendChild(barChart(days, METRICS[metric]));
  const rows = days.map((d) => h('tr', null,
    h('th', { scope: 'row' }, d.date),
    h('td', { class: 'num' }, fmtInt(d.totals.sessions)),
    h('td', { class: 'num' }, fmtInt(d.totals.llm_calls)),
    h('td', { class: 'num' }, fmtInt(d.totals.input_tokens)),
    h('td', { class: 'num' }, fmtInt(d.totals.output_tokens)),
    h('td', { class: 'num' }, fmtUsd(d.totals.cost_usd))));
  const today = days[days.length - 1];
  const users = today.by_user.map((u) => h('tr', null,
    h('th', { scope: 'row' }, u.username ? link(['user', u.username], u.username) : u.user_id),
    h('td', { class: 'num' }, fmtInt(u.sessions)),
    h('td', { class: 'num' }, fmtInt(u.messages)),
    h('td', { class: 'num' }, fmtInt(u.llm_calls)),
    h('td', { class: 'num' }, fmtInt(u.input_tokens + u.output_tokens)),
    h('td', { class: 'num' }, fmtUsd(u.cost_usd))));
  box.replaceChildren(
    h('h2', { id: 'usage-h' }, `Daily usage, last ${DAYS} days`),
    h('p', { class: 'muted' }, `Days in ${tz}.`),
    radios, chartBox,
    h('details', null, h('summary', null, 'Numbers'),
      table(null, ['Day', ...['Sessions', 'LLM calls', 'Tokens in', 'Tokens out', 'Cost'].map((t) => [t, 'num'])], rows, { id: 'usage-table' })),
    h('h3', null, `By user, ${today.date}`),
    users.length
      ? table(null, ['User', ...['Sessions', 'Messages', 'LLM calls', 'Tokens', 'Cost'].map((t) => [t, 'num'])], users, { id: 'usage-users' })
      : h('p', { class: 'muted' }, 'No usage today.'));
}

/** A bar chart of one metric per day, as plain SVG. */
function barChart(days, m) {
  const W = 640;
  const H = 240;
  const pad = { l: 60, r: 12, t: 22, b: 32 };
  const iw = W - pad.l - pad.r;
  const ih = H - pad.t - pad.b;
  const vals = days.map((d) => Number(m.get(d.totals)) || 0);
  const top = niceCeil(Math.max(...vals));
  const y = (v) => pad.t + ih - (ih * v) / top;
  const slot = iw / days.length;
  const desc = days.map((d, i) => `${d.date}: ${m.fmt(vals[i])}`).join('; ');
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', id: 'usage-chart', role: 'img', 'aria-label': `${m.label} per day. ${desc}` });
  for (let k = 0; k <= 4; k++) {
    const v = (top * k) / 4;
    svg.append(
      s('line', { x1: pad.l, x2: W - pad.r, y1: y(v), y2: y(v), class: k ? 'grid' : 'axis' }),
      s('text', { x: pad.l - 6, y: y(v) + 4, class: 'tick', 'text-anchor': 'end' }, m.fmt(v)));
  }
  days.forEach((d, i) => {
    const x = pad.l + i * slot;
    const bh = (ih * vals[i]) / top;
    svg.append(
      s('rect', { x: x + slot * 0.18, y: pad.t + ih - bh, width: slot * 0.64, height: Math.max(bh, 0), class: 'bar', dataset: { date: d.date } },
        s('title', null, `${d.date}: ${m.fmt(vals[i])}`)),
      s('text', { x: x + slot / 2, y: pad.t + ih - bh - 5, class: 'value', 'text-anchor': 'middle' }, vals[i] ? m.fmt(vals[i]) : ''),
      s('text', { x: x + slot / 2, y: H - 10, class: 'tick', 'text-anchor': 'middle' }, d.date.slice(5)));
  });
  return svg;
}

/** 1, 2, 5 × 10^n at or above v (at least 1, so an empty week draws). */
function niceCeil(v) {
  if (!(v > 0)) return 1;
  const e = 10 ** Math.floor(Math.log10(v));
  for (const f of [1, 2, 5, 10]) if (f * e >= v) return f * e;
  return 10 * e;
}

/** #/user/NAME: `audit user` — totals, recent sessions, recent events. */
export async function userReportView(el, me, name) {
  el.append(h('p', { class: 'crumbs' }, link(['audit'], '← Audit')));
  const r = await api(`api/audit/user/${encodeURIComponent(name)}`);
  const u = r.user;
  el.append(
    h('h1', null, 'User ', h('span', { id: 'report-username' }, u.username)),
    h('dl', { class: 'facts', id: 'user-facts' },
      h('dt', null, 'Role'), h('dd', null, u.role),
      h('dt', null, 'Status'), h('dd', null, u.disabled ? badge(false, 'disabled') : badge(true, 'active')),
      h('dt', null, 'Last login'), h('dd', null, fmtTime(u.last_login_at)),
      h('dt', null, 'Sessions'), h('dd', { id: 'user-session-count' }, fmtInt(r.sessions.count)),
      h('dt', null, 'Tokens in / out'), h('dd', null, `${fmtInt(r.sessions.input_tokens)} / ${fmtInt(r.sessions.output_tokens)}`),
      h('dt', null, 'Cost'), h('dd', null, fmtUsd(r.sessions.cost_usd))),
    h('h2', null, 'Recent sessions'),
    r.recent_sessions.length
      ? table(null, ['Title', 'User', 'Model', 'Started', ['Messages', 'num'], ['Cost', 'num'], ''],
        r.recent_sessions.map((x) => sessionRow(x, me)), { class: 'sessions', id: 'user-sessions' })
      : h('p', { class: 'muted' }, 'No sessions.'),
    h('h2', null, 'Recent events'),
    r.recent_events.length
      ? h('ol', { class: 'timeline', id: 'user-events' }, r.recent_events.map((ev) => eventItem(ev)))
      : h('p', { class: 'muted' }, 'No events.'));
}

/** One event as a timeline item; with an integrity badge when it has one. */
function eventItem(ev) {
  const checked = ev.integrity !== undefined;
  const good = !checked || ev.integrity === 'ok';
  const data = checked ? { type: ev.type, integrity: ev.integrity, seq: String(ev.seq) } : { type: ev.type, seq: String(ev.seq) };
  return h('li', { class: good ? 'ev' : 'ev tampered', dataset: data },
    h('div', { class: 'ev-head' },
      h('span', { class: 'seq' }, `#${ev.seq}`),
      h('time', null, fmtTime(ev.ts)),
      h('span', { class: `type t-${ev.type}` }, ev.type),
      h('span', { class: 'actor' }, ev.actor),
      // A fleet replay's events carry their host: the link stays on it.
      ev.session_id ? link(['replay', ev.host ? `${ev.session_id}@${ev.host}` : ev.session_id], ev.session_id, { class: 'id' }) : null,
      checked ? h('span', { class: 'integrity' }, badge(good, good ? '✓ ok' : '✗ bad')) : null),
    h('p', { class: 'summary' }, summary(ev)),
    h('details', null, h('summary', null, 'Data and hashes'),
      h('pre', null, pretty(ev.data)),
      h('p', { class: 'id' }, `${ev.id} · hash ${ev.hash.slice(0, 16)}… · prev ${ev.prev_hash.slice(0, 16)}…`)));
}

export async function replayView(el, me, arg) {
  // `ID@HOST`: another fleet host's session, from the fleet's log.
  const [id, host] = arg.split('@');
  el.append(h('p', { class: 'crumbs' }, link(['audit'], '← Audit'),
    host ? ` · on ${host}` : [' · ', link(['session', id], 'Messages of this session')]));
  const r = await api(`api/audit/replay/${encodeURIComponent(id)}`, { query: { host: host || undefined } });
  const ok = r.integrity === 'ok';
  el.append(
    h('h1', null, 'Replay ', h('span', { class: 'id' }, r.session_id), host ? h('span', { class: 'muted', id: 'replay-host' }, ` on ${host}`) : null),
    h('p', { id: 'replay-integrity', dataset: { integrity: r.integrity } },
      badge(ok, ok ? '✓ every event verifies' : '✗ tampered events below'),
      ` ${r.events.length} event(s). Each event is checked against its own hash and the event before it in the log; `,
      link(['audit'], 'Verify'), ' checks the whole chain.'));
  el.appendChild(h('ol', { class: 'timeline', id: 'timeline' }, r.events.map((ev) => eventItem(ev))));
}

/** One line about an event's data. */
function summary(ev) {
  const d = ev.data && typeof ev.data === 'object' ? ev.data : {};
  const text = (v) => (typeof v === 'string' ? v : v === undefined || v === null ? '' : JSON.stringify(v));
  const clip = (t, n = 160) => (t.length > n ? `${t.slice(0, n)}…` : t);
  switch (ev.type) {
    case 'user_message':
    case 'assistant_message':
      return clip(text(d.content ?? (d.content_sha256 && `sha256 ${d.content_sha256}`)));
    case 'tool_call':
      return clip(`${d.tool || '?'} ${text(d.arguments ?? d.arguments_sha256)}`);
    case 'tool_result':
      return clip(`${d.tool || '?'} → ${d.status || ''} ${text(d.result ?? d.result_sha256)}`);
    case 'llm_call':
      return `${d.model || '?'} · ${fmtInt(d.input_tokens)} in / ${fmtInt(d.output_tokens)} out · ${fmtUsd(d.cost_usd)}`;
    case 'approval_request':
      return clip(`requested: ${text(d.command || d.description)}`);
    case 'approval':
      return clip(`${d.choice} by ${d.decided_by}${d.applied === false ? ' (not applied)' : ''}: ${text(d.command)}`);
    case 'cost_alert':
      return `session cost ${fmtUsd(d.session_cost_usd)} ≥ alert ${fmtUsd(d.threshold_usd)}`;
    case 'error':
      return clip(`${d.code || ''} ${text(d.message)}`);
    default: {
      const parts = Object.entries(d).filter(([, v]) => v !== null && typeof v !== 'object').slice(0, 4);
      return clip(parts.map(([k, v]) => `${k}: ${v}`).join(' · '));
    }
  }
}
