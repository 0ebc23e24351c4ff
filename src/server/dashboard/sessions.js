// sessions.js — the session list ("My sessions", or all of them for admins
// and auditors), full-text search in the same scope, and one session's
// messages and tool calls.

import { markdown } from './markdown.js';
import { api } from './api.js';
import { h, errorBox, fmtTime, fmtUsd, fmtInt, link, table, contentText, pretty } from './dom.js';

const PAGE = 50;

export function sessionTitle(s) {
  return s.title && s.title.trim() ? s.title : '(untitled)';
}

export async function sessionListView(el, me) {
  const all = me.may.read_all_sessions;
  el.appendChild(h('h1', null, all ? 'All sessions' : 'My sessions'));
  const filter = h('input', { id: 'session-user', name: 'user', placeholder: 'username', size: 16 });
  const out = h('div', { id: 'session-list' });
  let offset = 0;

  async function load(more) {
    offset = more ? offset + PAGE : 0;
    const query = { limit: PAGE, offset, user: all ? filter.value.trim() : undefined };
    let rows;
    try {
      rows = await api('api/sessions', { query });
    } catch (err) {
      out.replaceChildren(errorBox(err));
      return;
    }
    if (!more) out.replaceChildren();
    if (!rows.length && !more) {
      out.appendChild(h('p', { class: 'muted' }, all ? 'No operator sessions yet.' : 'You have no sessions yet.'));
      return;
    }
    let body = out.querySelector('tbody');
    if (!body) {
      const headers = ['Title', 'User', 'Model', 'Started', ['Messages', 'num'], ['Cost', 'num'], ''];
      out.appendChild(table(null, headers, [], { class: 'sessions' }));
      body = out.querySelector('tbody');
    }
    for (const s of rows) body.appendChild(sessionRow(s, me));
    out.querySelector('.more')?.remove();
    if (rows.length === PAGE) {
      out.appendChild(h('button', { type: 'button', class: 'more secondary', onclick: () => load(true) }, 'Load more'));
    }
  }

  el.appendChild(searchForm(''));
  if (all) {
    const form = h('form', { class: 'inline', role: 'search' },
      h('label', { for: 'session-user' }, 'Only user'), filter,
      h('button', { type: 'submit', class: 'secondary' }, 'Filter'));
    form.addEventListener('submit', (e) => { e.preventDefault(); load(false); });
    el.appendChild(form);
  }
  el.appendChild(out);
  await load(false);
}

/** The search box: submitting goes to #/search/QUERY. */
function searchForm(q) {
  const input = h('input', { id: 'search-q', name: 'q', type: 'search', value: q, placeholder: 'words in messages', size: 28, required: true });
  const form = h('form', { class: 'inline', role: 'search', id: 'search-form' },
    h('label', { for: 'search-q' }, 'Search messages'), input,
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
  const actions = [link(['session', s.id], 'Messages')];
  if (me.may.chat && s.user_id === me.user.id) actions.push(link(['chat', s.id], 'Continue'));
  if (me.may.audit) actions.push(link(['replay', s.id], 'Replay', { class: 'replay-link' }));
  return h('tr', { dataset: { sessionId: s.id } },
    h('td', null, link(['session', s.id], sessionTitle(s)), h('div', { class: 'id' }, s.id)),
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
    h('h1', null, sessionTitle(s)),
    h('dl', { class: 'facts' },
      fact('Session', s.id), fact('User', s.username || s.user_id || '—'),
      fact('Model', s.model || '—'), fact('Started', fmtTime(s.started_at_epoch || s.started_at)),
      fact('Messages', fmtInt(s.message_count)), fact('Tool calls', fmtInt(s.tool_call_count)),
      fact('Tokens in / out', `${fmtInt(s.input_tokens)} / ${fmtInt(s.output_tokens)}`),
      fact('Cost', fmtUsd(s.actual_cost_usd ?? s.estimated_cost_usd))),
    h('p', { class: 'links' }, links),
    h('h2', null, 'Messages'));
  const list = h('ol', { class: 'transcript', id: 'messages' });
  for (const m of t.messages) {
    const node = renderMessage(m);
    if (node) list.appendChild(node);
  }
  if (!list.children.length) list.appendChild(h('li', { class: 'muted' }, 'No messages.'));
  el.appendChild(list);
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
