// events.js — "Events" (admins and auditors): the whole event log, newest
// first, filtered by type, user, session and date, a page at a time, each
// session linked to its replay. "Live" follows the log as it grows: it asks
// every LIVE_MS for the events after the newest one shown (as `audit tail
// --follow` does) and adds them on top.

import { api } from './api.js';
import { h, errorBox, field, fmtTime, link, table } from './dom.js';

const PAGE = 50;
const LIVE_MS = 2000;
// Rows kept on screen while live: the oldest go when more arrive.
const LIVE_ROWS = 500;
const HEADERS = ['#', 'Time', 'Type', 'User', 'Session', 'Actor', 'Details'];

/** A one-line summary of an event's data (text only). */
function summary(e) {
  const d = e.data || {};
  const parts = [];
  const keys = ['username', 'tool', 'command', 'choice', 'model', 'reason', 'change', 'client', 'key_id', 'via', 'provider_name', 'subject'];
  for (const k of keys) {
    if (d[k] !== undefined && d[k] !== null && typeof d[k] !== 'object') parts.push(`${k}: ${d[k]}`);
  }
  if (typeof d.content === 'string') parts.push(d.content.slice(0, 80) + (d.content.length > 80 ? '…' : ''));
  if (d.input_tokens !== undefined) parts.push(`${d.input_tokens}/${d.output_tokens} tokens`);
  return parts.join(' · ');
}

/** One event as a table row. */
function row(e, usernames, fresh) {
  return h('tr', { class: fresh ? 'fresh' : null, dataset: { seq: String(e.seq), type: e.type } },
    h('td', { class: 'num', dataset: { label: HEADERS[0] } }, String(e.seq)),
    h('td', { dataset: { label: HEADERS[1] } }, fmtTime(e.ts)),
    h('td', { dataset: { label: HEADERS[2] } }, e.type),
    h('td', { dataset: { label: HEADERS[3] } }, (e.user_id && (usernames[e.user_id] || e.user_id)) || '—'),
    h('td', { dataset: { label: HEADERS[4] } }, e.session_id ? link(['replay', e.session_id], e.session_id, { class: 'id' }) : '—'),
    h('td', { dataset: { label: HEADERS[5] } }, e.actor),
    h('td', { dataset: { label: HEADERS[6] } }, summary(e)));
}

export async function eventsView(el) {
  const type = h('select', { id: 'events-type' }, h('option', { value: '' }, 'any type'));
  const user = h('input', { id: 'events-user', placeholder: 'username', size: 12 });
  const session = h('input', { id: 'events-session', placeholder: 'op_…', size: 16 });
  // Single sign-on: who logged in through which provider (`login` events).
  const provider = h('input', { id: 'events-provider', placeholder: 'https://id…', size: 16 });
  const subject = h('input', { id: 'events-subject', placeholder: 'sub', size: 10 });
  const since = h('input', { id: 'events-since', type: 'date' });
  const until = h('input', { id: 'events-until', type: 'date' });
  const live = h('input', { id: 'events-live', type: 'checkbox' });
  const form = h('form', { class: 'inline filters', role: 'search', id: 'events-filters' },
    field(h('label', { for: 'events-type' }, 'Type'), type),
    field(h('label', { for: 'events-user' }, 'User'), user),
    field(h('label', { for: 'events-session' }, 'Session'), session),
    field(h('label', { for: 'events-provider' }, 'Provider'), provider),
    field(h('label', { for: 'events-subject' }, 'Subject'), subject),
    field(h('label', { for: 'events-since' }, 'From'), since),
    field(h('label', { for: 'events-until' }, 'Before'), until),
    h('button', { type: 'submit', class: 'secondary' }, 'Filter'),
    h('span', { class: 'field live-toggle' }, live, h('label', { for: 'events-live' }, 'Live')));
  const status = h('p', { class: 'muted', id: 'events-status', 'aria-live': 'polite' });
  const out = h('div', { id: 'events-list' });
  const pager = h('p', { class: 'buttons', id: 'events-pager' });
  el.append(h('h1', null, 'Events'), form, status, out, pager);
  let offset = 0;
  let total = 0;
  let newest = 0; // the highest seq shown
  let timer = null;

  const query = (extra) => ({
    type: type.value || undefined, user: user.value.trim() || undefined,
    session: session.value.trim() || undefined, since: since.value || undefined,
    provider: provider.value.trim() || undefined, subject: subject.value.trim() || undefined,
    until: until.value || undefined, ...extra,
  });

  function describe(added) {
    const first = total ? offset + 1 : 0;
    const shown = out.querySelectorAll('tbody tr').length;
    status.textContent = `${total} event(s)${total ? `; showing ${first}–${offset + shown}` : ''}.`
      + (live.checked ? ` Live${added ? `: ${added} new` : ''}, checked ${new Date().toLocaleTimeString()}.` : '');
  }

  async function load() {
    let r;
    try {
      r = await api('api/audit/events', { query: query({ limit: PAGE, offset }) });
    } catch (err) {
      out.replaceChildren(errorBox(err));
      return;
    }
    if (type.options.length === 1) {
      for (const t of r.types) type.appendChild(h('option', { value: t }, t));
    }
    total = r.total;
    newest = r.events.length ? r.events[0].seq : newest;
    out.replaceChildren(r.events.length ? table(null, HEADERS, r.events.map((e) => row(e, r.usernames, false)), { class: 'events' })
      : h('p', { class: 'muted', id: 'events-empty' }, 'No events match.'));
    describe(0);
    const prev = h('button', { type: 'button', class: 'secondary', id: 'events-newer', disabled: offset === 0 || live.checked }, '← Newer');
    const next = h('button', { type: 'button', class: 'secondary', id: 'events-older', disabled: offset + PAGE >= r.total || live.checked }, 'Older →');
    prev.addEventListener('click', () => { offset = Math.max(0, offset - PAGE); load(); });
    next.addEventListener('click', () => { offset += PAGE; load(); });
    pager.replaceChildren(prev, ' ', next);
  }

  /** The events after the newest shown, on top; at most LIVE_ROWS rows. */
  async function poll() {
    if (!el.isConnected) {
      stopLive();
      return;
    }
    if (document.hidden) return; // a background tab asks nothing
    let r;
    try {
      r = await api('api/audit/events', { query: query({ after: newest, limit: 500 }) });
    } catch (err) {
      status.replaceChildren(errorBox(err));
      return;
    }
    if (!live.checked) return; // switched off while asking
    if (r.events.length) {
      let body = out.querySelector('tbody');
      if (!body) {
        out.replaceChildren(table(null, HEADERS, [], { class: 'events' }));
        body = out.querySelector('tbody');
      }
      body.prepend(...r.events.map((e) => row(e, r.usernames, true)));
      while (body.children.length > LIVE_ROWS) body.lastElementChild.remove();
      newest = r.events[0].seq;
      total += r.total;
    }
    describe(r.events.length);
  }

  function stopLive() {
    clearInterval(timer);
    timer = null;
  }

  async function startOrStop() {
    stopLive();
    offset = 0;
    await load();
    if (live.checked) timer = setInterval(poll, LIVE_MS);
  }

  form.addEventListener('submit', (e) => { e.preventDefault(); startOrStop(); });
  live.addEventListener('change', startOrStop);
  await load();
}
