// approvals.js — "Approvals": dangerous commands waiting for an answer the
// caller may give (their own sessions'; an admin's: all), e.g. from a
// personal API key made with "wait for my answer", answered here without
// the chat open. Refreshes every few seconds while shown.

import { api } from './api.js';
import { h, errorBox, notice, fmtTime, link } from './dom.js';

const CHOICES = [['once', 'Approve once', ''], ['session', 'Approve for this session', 'secondary'], ['deny', 'Deny', 'danger']];

/** Who started the turn that asks, with which key, and what they asked
 * for: the answer depends on it (a script's key asking to delete files is
 * not the owner typing in the chat). Text only. */
function askedBy(a) {
  if (!a) return null;
  const via = a.key
    ? ['with the API key ', h('strong', { class: 'key-label' }, a.key.label || '(no label)'), ' ',
      h('code', { class: 'prefix', title: `key ${a.key.id}` }, `${a.key.prefix}…`)]
    : ['from a login (dashboard, CLI or script token)'];
  return h('div', { class: 'asked-by' },
    h('p', null, 'Asked by ', h('strong', { class: 'asked-user' }, a.username), ' ', ...via),
    a.message ? h('blockquote', { class: 'asked-message', title: 'The message that started this turn' }, a.message) : null);
}

export async function approvalsView(el) {
  const out = h('div', { id: 'approvals-out', 'aria-live': 'polite' });
  const list = h('div', { id: 'approvals-list' });
  el.append(h('h1', null, 'Approvals'),
    h('p', { class: 'muted' }, 'Commands the agent wants to run in your sessions that need a person\'s answer. Unanswered requests are denied at Hermes\' timeout.'),
    out, list);
  let shown = '';
  async function load() {
    let pending;
    try {
      pending = await api('api/approvals');
    } catch (err) {
      list.replaceChildren(errorBox(err));
      return;
    }
    const sig = JSON.stringify(pending.map((p) => [p.session_id, p.request_id, p.waiting_since]));
    if (sig === shown) return; // keep focus and half-read text while nothing changed
    shown = sig;
    window.dispatchEvent(new Event('approvals-changed')); // the nav's count
    if (!pending.length) {
      list.replaceChildren(h('p', { class: 'muted', id: 'approvals-empty' }, 'Nothing is waiting for an answer.'));
      return;
    }
    list.replaceChildren(...pending.map((p) => {
      const buttons = CHOICES.map(([choice, label, cls]) => h('button', { type: 'button', class: cls, dataset: { choice } }, label));
      const card = h('section', { class: 'card approval', dataset: { sessionId: p.session_id } },
        h('h2', null, 'Session ', link(['session', p.session_id], p.session_id)),
        h('p', null, p.description || 'A command that needs approval.'),
        p.command ? h('pre', { class: 'command' }, p.command) : null,
        askedBy(p.asked_by),
        h('p', { class: 'muted' }, `Waiting since ${fmtTime(p.waiting_since)}`),
        h('div', { class: 'buttons' }, buttons));
      buttons.forEach((b) => b.addEventListener('click', async () => {
        buttons.forEach((x) => { x.disabled = true; });
        try {
          await api(`api/sessions/${encodeURIComponent(p.session_id)}/approval`, { method: 'POST', body: { choice: b.dataset.choice } });
          out.replaceChildren(notice(`Answered for ${p.session_id}: ${b.textContent}.`));
        } catch (err) {
          out.replaceChildren(errorBox(err));
        }
        load();
      }));
      return card;
    }));
  }
  await load();
  const timer = setInterval(() => {
    if (!el.isConnected) {
      clearInterval(timer);
      return;
    }
    load();
  }, 3000);
}
