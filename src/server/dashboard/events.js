// events.js — "Events" (admins and auditors): the whole event log, newest
// first, filtered by type, user, session and date, a page at a time, each
// session linked to its replay.

import { api } from './api.js';
import { h, errorBox, fmtTime, link, table } from './dom.js';

const PAGE = 50;

/** A one-line summary of an event's data (text only). */
function summary(e) {
  const d = e.data || {};
  const parts = [];
  for (const k of ['username', 'tool', 'command', 'choice', 'model', 'reason', 'change', 'client', 'key_id']) {
    if (d[k] !== undefined && d[k] !== null && typeof d[k] !== 'object') parts.push(`${k}: ${d[k]}`);
  }
  if (typeof d.content === 'string') parts.push(d.content.slice(0, 80) + (d.content.length > 80 ? '…' : ''));
  if (d.input_tokens !== undefined) parts.push(`${d.input_tokens}/${d.output_tokens} tokens`);
  return parts.join(' · ');
}

export async function eventsView(el) {
  const type = h('select', { id: 'events-type' }, h('option', { value: '' }, 'any type'));
  const user = h('input', { id: 'events-user', placeholder: 'username', size: 12 });
  const session = h('input', { id: 'events-session', placeholder: 'op_…', size: 16 });
  const since = h('input', { id: 'events-since', type: 'date' });
  const until = h('input', { id: 'events-until', type: 'date' });
  const form = h('form', { class: 'inline filters', role: 'search', id: 'events-filters' },
    h('label', { for: 'events-type' }, 'Type'), type,
    h('label', { for: 'events-user' }, 'User'), user,
    h('label', { for: 'events-session' }, 'Session'), session,
    h('label', { for: 'events-since' }, 'From'), since,
    h('label', { for: 'events-until' }, 'Before'), until,
    h('button', { type: 'submit', class: 'secondary' }, 'Filter'));
  const status = h('p', { class: 'muted', id: 'events-status', 'aria-live': 'polite' });
  const out = h('div', { id: 'events-list' });
  const pager = h('p', { class: 'buttons', id: 'events-pager' });
  el.append(h('h1', null, 'Events'), form, status, out, pager);
  let offset = 0;

  async function load() {
    let r;
    try {
      r = await api('api/audit/events', {
        query: {
          type: type.value || undefined, user: user.value.trim() || undefined,
          session: session.value.trim() || undefined, since: since.value || undefined,
          until: until.value || undefined, limit: PAGE, offset,
        },
      });
    } catch (err) {
      out.replaceChildren(errorBox(err));
      return;
    }
    if (type.options.length === 1) {
      for (const t of r.types) type.appendChild(h('option', { value: t }, t));
    }
    const first = r.total ? offset + 1 : 0;
    status.textContent = `${r.total} event(s)${r.total ? `; showing ${first}–${offset + r.events.length}` : ''}.`;
    out.replaceChildren(r.events.length ? table(null, ['#', 'Time', 'Type', 'User', 'Session', 'Actor', 'Details'],
      r.events.map((e) => h('tr', { dataset: { seq: String(e.seq), type: e.type } },
        h('td', { class: 'num' }, String(e.seq)),
        h('td', null, fmtTime(e.ts)),
        h('td', null, e.type),
        h('td', null, (e.user_id && (r.usernames[e.user_id] || e.user_id)) || '—'),
        h('td', null, e.session_id ? link(['replay', e.session_id], e.session_id, { class: 'id' }) : '—'),
        h('td', null, e.actor),
        h('td', null, summary(e)))),
      { class: 'events' }) : h('p', { class: 'muted' }, 'No events match.'));
    const prev = h('button', { type: 'button', class: 'secondary', id: 'events-newer', disabled: offset === 0 }, '← Newer');
    const next = h('button', { type: 'button', class: 'secondary', id: 'events-older', disabled: offset + PAGE >= r.total }, 'Older →');
    prev.addEventListener('click', () => { offset = Math.max(0, offset - PAGE); load(); });
    next.addEventListener('click', () => { offset += PAGE; load(); });
    pager.replaceChildren(prev, ' ', next);
  }
  form.addEventListener('submit', (e) => { e.preventDefault(); offset = 0; load(); });
  await load();
}
