// sessions.js — the session list ("My sessions", or all of them for admins
// and auditors), full-text search in the same scope, and one session's
// messages and tool calls.

import { markdown } from './markdown.js';
import { api, download } from './api.js';
import { h, errorBox, notice, fmtTime, fmtUsd, fmtInt, link, table, field, contentText, pretty } from './dom.js';

const PAGE = 50;

/** A session's name as text: its title, else the server's fallback (the
 * start of its first message, in quotes: Hermes 0.19 titles no API
 * session), else "(untitled)". Used where only text fits (<option>). */
export function sessionTitle(s) {
  if (s.title && s.title.trim()) return s.title;
  if (s.display_title) return s.display_title_fallback ? `“${s.display_title}”` : s.display_title;
  return '(untitled)';
}

/** The same as an element: a fallback is muted and says what it is. */
export function titleNode(s) {
  const text = sessionTitle(s);
  if (s.title && s.title.trim()) return h('span', { class: 'title' }, text);
  return h('span', { class: 'title fallback', title: s.display_title ? 'Untitled: the start of its first message' : null }, text);
}

export async function sessionListView(el, me) {
  const all = me.may.read_all_sessions;
  el.appendChild(h('h1', null, all ? 'All sessions' : 'My sessions'));
  const user = h('input', { id: 'session-user', name: 'user', placeholder: 'username', size: 12 });
  const since = h('input', { id: 'session-since', name: 'since', type: 'date' });
  const model = h('select', { id: 'session-model' }, h('option', { value: '' }, 'any model'));
  const state = h('select', { id: 'session-state' },
    h('option', { value: '' }, 'open and ended'), h('option', { value: 'open' }, 'open'), h('option', { value: 'ended' }, 'ended'));
  // A fleet (store.url): every host's sessions, as their hosts published them.
  const allHosts = me.fleet ? h('input', { id: 'session-all-hosts', type: 'checkbox' }) : null;
  const out = h('div', { id: 'session-list' });
  const totals = h('p', { class: 'muted', id: 'session-totals' });
  let rows = [];
  let offset = 0;
  let full = false;
  let sort = { key: 'started', dir: -1 };
  const KEYS = {
    title: (s) => sessionTitle(s).toLowerCase(), user: (s) => s.username || s.user_id || '',
    model: (s) => s.model || '', started: (s) => s.started_at_epoch || 0,
    messages: (s) => s.message_count || 0, cost: (s) => s.actual_cost_usd ?? s.estimated_cost_usd ?? 0,
    host: (s) => s.host || '',
  };

  // Model and state filter and every sort apply to the loaded rows; user
  // and date go to the server.
  function show() {
    const shown = rows
      .filter((s) => !model.value || s.model === model.value)
      .filter((s) => !state.value || (state.value === 'ended') === !!s.ended_at)
      .sort((a, b) => {
        const x = KEYS[sort.key](a);
        const y = KEYS[sort.key](b);
        return (x < y ? -1 : x > y ? 1 : 0) * sort.dir;
      });
    if (!rows.length) {
      out.replaceChildren(h('p', { class: 'muted' }, all ? 'No operator sessions yet.' : 'You have no sessions yet.'));
      totals.textContent = '';
      return;
    }
    const head = (label, key, cls) => {
      const arrow = sort.key === key ? (sort.dir > 0 ? ' ▲' : ' ▼') : '';
      const b = h('button', { type: 'button', class: 'sort', dataset: { sort: key },
        'aria-label': `Sort by ${label.toLowerCase()}` }, label + arrow);
      b.addEventListener('click', () => {
        sort = { key, dir: sort.key === key ? -sort.dir : (key === 'title' || key === 'user' || key === 'model' ? 1 : -1) };
        show();
      });
      return cls ? [b, cls] : b;
    };
    const hosts = allHosts?.checked;
    const t = table(null, [hosts ? head('Host', 'host') : null, head('Title', 'title'), head('User', 'user'),
      head('Model', 'model'), head('Started', 'started'), head('Messages', 'messages', 'num'), head('Cost', 'cost', 'num'), '']
      .filter((x) => x !== null),
    shown.map((s) => sessionRow(s, me)), { class: 'sessions' });
    // Header cells hold buttons: keep the sort state readable for screen readers.
    t.querySelectorAll('th').forEach((th) => {
      const k = th.querySelector('button')?.dataset.sort;
      if (k === sort.key) th.setAttribute('aria-sort', sort.dir > 0 ? 'ascending' : 'descending');
    });
    out.replaceChildren(t);
    if (!full) {
      out.appendChild(h('button', { type: 'button', class: 'more secondary', onclick: () => load(true) }, 'Load more'));
    }
    const msgs = shown.reduce((n, s) => n + (s.message_count || 0), 0);
    const cost = shown.reduce((n, s) => n + (s.actual_cost_usd ?? s.estimated_cost_usd ?? 0), 0);
    totals.textContent = `${shown.length} session(s) shown${full ? '' : ' (more can be loaded)'} · ${fmtInt(msgs)} messages · ${fmtUsd(cost)}`;
  }

  async function load(more) {
    offset = more ? offset + PAGE : 0;
    const query = { limit: PAGE, offset, user: all ? user.value.trim() || undefined : undefined, since: since.value || undefined,
      all_hosts: allHosts?.checked ? 'true' : undefined };
    let page;
    try {
      page = await api('api/sessions', { query });
    } catch (err) {
      out.replaceChildren(errorBox(err));
      return;
    }
    rows = more ? rows.concat(page) : page;
    full = page.length < PAGE;
    const models = [...new Set(rows.map((s) => s.model).filter(Boolean))].sort();
    const keep = model.value;
    model.replaceChildren(h('option', { value: '' }, 'any model'), ...models.map((m) => h('option', { value: m }, m)));
    model.value = models.includes(keep) ? keep : '';
    show();
  }

  el.appendChild(searchForm(''));
  const form = h('form', { class: 'inline filters', role: 'search', id: 'session-filters' },
    all ? field(h('label', { for: 'session-user' }, 'User'), user) : null,
    field(h('label', { for: 'session-since' }, 'Since'), since),
    field(h('label', { for: 'session-model' }, 'Model'), model),
    field(h('label', { for: 'session-state' }, 'State'), state),
    h('button', { type: 'submit', class: 'secondary' }, 'Filter'),
    allHosts ? h('span', { class: 'field live-toggle' }, allHosts, h('label', { for: 'session-all-hosts' }, 'All hosts')) : null);
  allHosts?.addEventListener('change', () => load(false));
  form.addEventListener('submit', (e) => { e.preventDefault(); load(false); });
  model.addEventListener('change', show);
  state.addEventListener('change', show);
  el.append(form, totals, out);
  await load(false);
}

/** The search box: submitting goes to #/search/QUERY. */
function searchForm(q) {
  const input = h('input', { id: 'search-q', name: 'q', type: 'search', value: q, placeholder: 'words in titles or messages', size: 28, required: true });
  const form = h('form', { class: 'inline', role: 'search', id: 'search-form' },
    field(h('label', { for: 'search-q' }, 'Search'), input),
    h('button', { type: 'submit', class: 'secondary' }, 'Search'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const v = input.value.trim();
    if (v) location.hash = `#/search/${encodeURIComponent(v)}`;
  });
  return form;
}

/** A snippet with the server's >>>match<<< markers as <mark> (text nodes only). */
function snippet(text) {
  const out = [];
  for (const [i, part] of String(text || '').split(/>>>|<<</).entries()) {
    if (part) out.push(i % 2 ? h('mark', null, part) : part);
  }
  return out;
}

/** #/search/QUERY: matching messages in the sessions the caller may read. */
export async function searchView(el, me, q) {
  q = q || '';
  el.append(h('p', { class: 'crumbs' }, link(['sessions'], '← Sessions')), h('h1', null, 'Search'), searchForm(q));
  if (!q) return;
  const r = await api('api/search', { query: { q, limit: 100 } });
  const hits = r.hits || [];
  // Titles are not messages: sessions named by the words come first.
  const titled = r.sessions || [];
  if (titled.length) {
    el.append(h('h2', null, 'Sessions by title'),
      h('ul', { class: 'hits', id: 'search-titles' }, titled.map((s) =>
        h('li', { dataset: { sessionId: s.id } },
          link(['session', s.id], titleNode(s)), ' ', h('span', { class: 'id' }, s.id)))),
      h('h2', null, 'Messages'));
  }
  el.appendChild(h('p', { class: 'muted', id: 'search-count' },
    `${hits.length}${hits.length === 100 ? '+' : ''} message(s) match${me.may.read_all_sessions ? '' : ' in your sessions'}.`));
  const list = h('ol', { class: 'hits', id: 'search-hits' }, hits.map((x) =>
    h('li', { dataset: { sessionId: x.session_id, role: x.role } },
      h('div', { class: 'who' },
        link(['session', x.session_id], x.session_id, { class: 'id' }),
        ` · ${x.role} · `, h('time', null, fmtTime(x.timestamp_epoch || x.timestamp))),
      h('p', { class: 'snippet' }, snippet(x.snippet)))));
  el.appendChild(list);
}

export function sessionRow(s, me) {
  // A row of another host (a fleet list): its messages live there.
  const elsewhere = s.host !== undefined && s.host !== me.fleet?.host;
  const actions = elsewhere ? [h('span', { class: 'muted' }, `on ${s.host}`)] : [link(['session', s.id], 'Messages')];
  // Its events are in the fleet's log: auditors replay it from there.
  if (elsewhere && me.may.audit) actions.push(link(['replay', `${s.id}@${s.host}`], 'Replay', { class: 'replay-link' }));
  if (!elsewhere && me.may.chat && s.user_id === me.user.id) actions.push(link(['chat', s.id], 'Continue'));
  if (!elsewhere && me.may.audit) actions.push(link(['replay', s.id], 'Replay', { class: 'replay-link' }));
  return h('tr', { dataset: s.host !== undefined ? { sessionId: s.id, host: s.host } : { sessionId: s.id } },
    s.host !== undefined ? h('td', { class: 'host' }, s.host) : null,
    h('td', null, elsewhere ? titleNode(s) : link(['session', s.id], titleNode(s)), h('div', { class: 'id' }, s.id)),
    h('td', null, s.username || s.user_id || '—'),
    h('td', null, s.model || '—'),
    h('td', null, fmtTime(s.started_at_epoch || s.started_at)),
    h('td', { class: 'num' }, fmtInt(s.message_count)),
    h('td', { class: 'num' }, fmtUsd(s.actual_cost_usd ?? s.estimated_cost_usd)),
    h('td', { class: 'actions' }, actions));
}

export async function sessionView(el, me, id) {
  const t = await api(`api/sessions/${encodeURIComponent(id)}/messages`);
  const s = t.session;
  const links = [];
  if (me.may.chat && s.user_id === me.user.id) links.push(link(['chat', s.id], 'Continue in chat'));
  if (me.may.audit) links.push(link(['replay', s.id], 'Audit replay', { class: 'replay-link' }));
  el.append(
    h('p', { class: 'crumbs' }, link(['sessions'], '← Sessions')),
    h('h1', null, titleNode(s)),
    h('dl', { class: 'facts' },
      fact('Session', s.id), fact('User', s.username || s.user_id || '—'),
      fact('Model', s.model || '—'), fact('Started', fmtTime(s.started_at_epoch || s.started_at)),
      fact('Messages', fmtInt(s.message_count)), fact('Tool calls', fmtInt(s.tool_call_count)),
      fact('Tokens in / out', `${fmtInt(s.input_tokens)} / ${fmtInt(s.output_tokens)}`),
      fact('Cost', fmtUsd(s.actual_cost_usd ?? s.estimated_cost_usd))),
    h('p', { class: 'links' }, links),
    sessionActions(s, me),
    h('h2', null, 'Messages'));
  const list = h('ol', { class: 'transcript', id: 'messages' });
  for (const m of t.messages) {
    const node = renderMessage(m);
    if (node) list.appendChild(node);
  }
  if (!list.children.length) list.appendChild(h('li', { class: 'muted' }, 'No messages.'));
  el.appendChild(list);
}

/** Rename, end and export: renaming and ending for the owner (who may
 * chat) and admins, export for everyone who may read the session. */
function sessionActions(s, me) {
  const out = h('div', { id: 'session-actions-out', 'aria-live': 'polite' });
  const box = h('section', { class: 'card', id: 'session-actions' }, h('h2', null, 'Actions'));
  const mayChange = s.source === 'operator' && !me.key
    && ((me.may.chat && s.user_id === me.user.id) || me.may.manage_users);
  if (mayChange) {
    const title = h('input', { id: 'session-title', value: s.title || '', maxlength: 200, placeholder: 'title' });
    const rename = h('form', { class: 'inline', id: 'rename-form' },
      h('label', { for: 'session-title' }, 'Title'), title,
      h('button', { type: 'submit', class: 'secondary' }, 'Rename'));
    rename.addEventListener('submit', async (e) => {
      e.preventDefault();
      try {
        const r = await api(`api/sessions/${encodeURIComponent(s.id)}`, { method: 'PATCH', body: { title: title.value } });
        out.replaceChildren(notice(r.changed ? 'Renamed.' : 'The title did not change.'));
        document.querySelector('#view-session h1')?.replaceChildren(titleNode(r.session));
      } catch (err) {
        out.replaceChildren(errorBox(err));
      }
    });
    box.appendChild(rename);
    if (!s.ended_at) {
      const end = h('button', { type: 'button', class: 'danger', id: 'end-session' }, 'End session');
      end.addEventListener('click', async () => {
        if (!window.confirm(`End the session ${s.id}? It can be read but not continued afterwards.`)) return;
        end.disabled = true;
        try {
          await api(`api/sessions/${encodeURIComponent(s.id)}/end`, { method: 'POST', body: {} });
          out.replaceChildren(notice('The session has ended.'));
          end.remove();
        } catch (err) {
          out.replaceChildren(errorBox(err));
          end.disabled = false;
        }
      });
      box.appendChild(h('p', null, end));
    }
  }
  const exp = (fmt, label) => {
    const b = h('button', { type: 'button', class: 'secondary', dataset: { format: fmt } }, label);
    b.addEventListener('click', () => download(`api/sessions/${encodeURIComponent(s.id)}/export?format=${fmt}`, `${s.id}.${fmt}`)
      .then(() => out.replaceChildren(notice(`Exported ${s.id}.${fmt}.`)))
      .catch((err) => out.replaceChildren(errorBox(err))));
    return b;
  };
  box.append(h('p', { class: 'buttons' }, exp('json', 'Export JSON'), ' ', exp('md', 'Export Markdown')), out);
  return box;
}

function fact(k, v) {
  return [h('dt', null, k), h('dd', null, v)];
}

const ROLE_LABEL = { user: 'User', assistant: 'Assistant', tool: 'Tool result', system: 'System' };

/** One stored message (state.db) as a transcript item; used by chat too. */
export function renderMessage(m) {
  const role = m.role || 'unknown';
  const text = contentText(m.content);
  const li = h('li', { class: `msg ${role}${m.active === false ? ' inactive' : ''}`, dataset: { role } });
  const label = role === 'tool' && m.tool_name ? `Tool result · ${m.tool_name}` : ROLE_LABEL[role] || role;
  li.appendChild(h('div', { class: 'who' }, label, m.timestamp ? h('time', null, fmtTime(m.timestamp_epoch || m.timestamp)) : null));
  if (role === 'tool') {
    const first = text.split('\n')[0].slice(0, 120);
    li.appendChild(h('details', null, h('summary', null, first || '(empty)'), h('pre', null, text)));
  } else if (role === 'system') {
    li.appendChild(h('details', null, h('summary', null, 'System prompt'), h('pre', null, text)));
  } else if (text && role === 'assistant') {
    li.appendChild(h('div', { class: 'text markdown' }, markdown(text)));
  } else if (text) {
    li.appendChild(h('div', { class: 'text' }, text));
  }
  const calls = Array.isArray(m.tool_calls) ? m.tool_calls : [];
  for (const c of calls) {
    const fn = (c && c.function) || {};
    li.appendChild(h('div', { class: 'tool-call' },
      h('span', { class: 'tool-name' }, `Tool call: ${fn.name || c.type || 'tool'}`),
      fn.arguments ? h('pre', null, pretty(fn.arguments)) : null));
  }
  if (m.active === false) li.appendChild(h('p', { class: 'muted' }, '(no longer in the live context)'));
  return li;
}
