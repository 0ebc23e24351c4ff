// chat.js — pick or start a session, send a message, watch the turn stream
// in (text deltas, tool progress, approval prompts, cost alerts), answer
// approvals. A turn in progress keeps its page when you navigate away and
// back (the server finishes the turn either way).

import { api, chatStream } from './api.js';
import { h, errorBox, field, notice, fmtUsd, fmtInt } from './dom.js';
import { renderMessage, sessionTitle } from './sessions.js';
import { markdown } from './markdown.js';

/** {root, sessionId, busy} of the chat page, kept while a turn runs. */
let state = null;
let ids = 0;

export function resetChat() {
  state = null;
}

const CHOICES = [
  ['once', 'Approve once', ''],
  ['session', 'Approve for this session', 'secondary'],
  ['deny', 'Deny', 'danger'],
];

const DECIDED = { once: 'Approved once', session: 'Approved for this session', deny: 'Denied' };

export async function chatView(el, me, sessionId) {
  if (state && state.busy) {
    el.appendChild(state.root);
    return;
  }
  const st = { sessionId: sessionId || null, busy: false, root: h('div', { class: 'chat' }) };
  state = st;
  el.appendChild(st.root);

  const picker = h('select', { id: 'chat-session' }, h('option', { value: '' }, '+ New session'));
  picker.addEventListener('change', () => {
    location.hash = picker.value ? `#/chat/${encodeURIComponent(picker.value)}` : '#/chat';
  });
  const transcript = h('ol', { class: 'transcript', id: 'transcript' });
  // The live region wraps the list: role=log on the <ol> itself would take
  // its list role away, leaving every message an <li> outside a list.
  const conversation = h('div', { role: 'log', 'aria-label': 'Conversation' }, transcript);
  const input = h('textarea', {
    id: 'chat-input', rows: 3, required: true,
    placeholder: 'Message to the agent — Enter sends, Shift+Enter starts a new line',
  });
  const send = h('button', { type: 'submit', id: 'chat-send' }, 'Send');
  const status = h('p', { id: 'chat-status', class: 'status', role: 'status' });
  const form = h('form', { id: 'chat-form', class: 'composer' },
    h('label', { for: 'chat-input', class: 'visually-hidden' }, 'Message'), input, send);

  st.root.append(
    h('div', { class: 'chat-head' },
      h('h1', null, 'Chat'),
      field(h('label', { for: 'chat-session' }, 'Session'), picker)),
    conversation, status, form);

  const setSession = (id) => {
    st.sessionId = id;
    st.root.dataset.sessionId = id || '';
  };
  setSession(st.sessionId);

  // The composer is sticky at the bottom of the window and covers the
  // end of a long transcript: "visible" means above its top edge, and the
  // page follows the newest message only while the reader is at the end
  // (scrolling up to read earlier messages stops the following).
  const visibleBottom = () => Math.min(window.innerHeight, form.getBoundingClientRect().top);
  const atEnd = () => {
    const last = transcript.lastElementChild;
    return !last || last.getBoundingClientRect().bottom <= visibleBottom() + 48;
  };
  const scroll = (force) => {
    const last = transcript.lastElementChild;
    if (!last || !st.root.isConnected || !(force || st.follow)) return;
    const r = last.getBoundingClientRect();
    const room = visibleBottom() - 8;
    if (r.height > room) {
      // A message taller than the space shows its start, not its end.
      if (r.top < 0 || r.top > room) window.scrollBy(0, r.top - 8);
    } else if (r.bottom > visibleBottom()) {
      window.scrollBy(0, r.bottom - visibleBottom() + 8);
    }
  };
  st.follow = true;
  window.addEventListener('scroll', function onScroll() {
    if (!st.root.isConnected) {
      window.removeEventListener('scroll', onScroll);
      return;
    }
    st.follow = atEnd();
  }, { passive: true });
  const event = (cls, ...content) => {
    const li = h('li', { class: `event ${cls}` }, ...content);
    transcript.appendChild(li);
    return li;
  };

  const setBusy = (busy) => {
    st.busy = busy;
    st.root.dataset.busy = busy ? 'yes' : 'no';
    send.disabled = busy;
    picker.disabled = busy;
  };
  // Send stays disabled until the session list and transcript are loaded:
  // a message sent earlier would land above the loaded history.
  setBusy(true);

  function approvalCard(ev) {
    const n = ++ids;
    const out = h('div', { class: 'approval-out', 'aria-live': 'polite' });
    const buttons = CHOICES.map(([choice, label, cls]) =>
      h('button', { type: 'button', class: cls, dataset: { choice }, onclick: () => answer(choice, label) }, label));
    const box = h('div', { class: 'buttons' }, buttons);
    const card = event('approval',
      h('h2', { id: `approval-h-${n}` }, 'Approval needed'),
      h('p', null, ev.description || 'The agent wants to run a command that needs your approval.'),
      ev.command ? h('pre', { class: 'command' }, ev.command) : null,
      ev.pattern_key ? h('p', { class: 'muted' }, `Rule: ${ev.pattern_key}`) : null,
      box, out);
    card.setAttribute('role', 'group');
    card.setAttribute('aria-labelledby', `approval-h-${n}`);
    card.dataset.state = 'pending';
    async function answer(choice, label) {
      buttons.forEach((b) => { b.disabled = true; });
      out.replaceChildren(notice('Sending your answer…'));
      try {
        await api(`api/sessions/${encodeURIComponent(ev.session_id)}/approval`, { method: 'POST', body: { choice } });
        // The stream's approval_decision may have come first: it says more.
        if (card.dataset.state === 'pending') {
          out.replaceChildren(notice(`Answer sent: ${label}.`));
          card.dataset.state = 'answered';
        }
      } catch (err) {
        if (card.dataset.state !== 'pending') return;
        out.replaceChildren(errorBox(err));
        buttons.forEach((b) => { b.disabled = false; });
      }
    }
    buttons[0].focus();
    return { card, box, out };
  }

  async function turn(text) {
    setBusy(true);
    st.root.dataset.turn = 'running';
    transcript.appendChild(renderMessage({ role: 'user', content: text }));
    // Sending is the reader's own act: back to the end, and follow the reply.
    st.follow = true;
    scroll(true);
    status.textContent = 'Sending…';
    let bubble = null;
    let textNode = null;
    let deltas = 0;
    let pending = null;
    let ended = false;
    const onEvent = (type, ev) => {
      switch (type) {
        case 'session':
          setSession(ev.session_id);
          if (ev.new) {
            picker.appendChild(h('option', { value: ev.session_id }, `(new) · ${ev.session_id}`));
            picker.value = ev.session_id;
            history.replaceState(null, '', `#/chat/${encodeURIComponent(ev.session_id)}`);
          }
          break;
        case 'run_started':
          status.textContent = 'The agent is working…';
          break;
        case 'delta': {
          let piece = ev.text || '';
          if (!bubble) {
            piece = piece.replace(/^\s+/, ''); // Hermes separates text after a tool with newlines
            if (!piece) break;
            textNode = document.createTextNode('');
            bubble = h('li', { class: 'msg assistant streaming', dataset: { role: 'assistant' } },
              h('div', { class: 'who' }, 'Assistant'), h('div', { class: 'text' }, textNode));
            transcript.appendChild(bubble);
          }
          textNode.appendData(piece);
          bubble.dataset.deltas = String(++deltas);
          break;
        }
        case 'tool_started':
          bubble = null; // text after the tool goes below it
          event('tool', `▶ ${ev.tool}`, ev.preview ? h('code', null, ev.preview) : null);
          break;
        case 'tool_completed': {
          const secs = typeof ev.duration === 'number' ? ` in ${ev.duration.toFixed(2)} s` : '';
          event(ev.error ? 'tool failed' : 'tool', ev.error ? `✗ ${ev.tool} failed${secs}` : `✓ ${ev.tool} finished${secs}`);
          break;
        }
        case 'approval_request':
          bubble = null;
          pending = approvalCard(ev);
          window.dispatchEvent(new Event('approvals-changed')); // the nav's count
          status.textContent = 'Waiting for your approval…';
          break;
        case 'approval_decision': {
          window.dispatchEvent(new Event('approvals-changed'));
          const what = `${DECIDED[ev.choice] || ev.choice} by ${ev.decided_by}`;
          const note = ev.applied ? '' : ' (not applied: the run had already moved on)';
          if (pending) {
            pending.box.remove();
            pending.out.replaceChildren(h('p', { class: ev.choice === 'deny' ? 'decision denied' : 'decision' }, what + note));
            pending.card.dataset.state = ev.choice;
            pending = null;
          } else {
            event('decision', what + note);
          }
          status.textContent = 'The agent is working…';
          break;
        }
        case 'cost_alert':
          event('warning', `Cost alert: this session has cost ${fmtUsd(ev.session_cost_usd)}, above the alert threshold of ${fmtUsd(ev.threshold_usd)}.`);
          break;
        case 'done':
          ended = true;
          if (!deltas && ev.output) {
            transcript.appendChild(renderMessage({ role: 'assistant', content: ev.output }));
          }
          status.textContent = `Done · ${fmtInt(ev.input_tokens)} in / ${fmtInt(ev.output_tokens)} out tokens · `
            + `turn ${fmtUsd(ev.cost_usd)} · session ${fmtUsd(ev.session_cost_usd)} · ${fmtInt(ev.tool_calls)} tool call(s)`;
          st.root.dataset.turn = 'done';
          break;
        case 'error':
          ended = true;
          event('error', errorBox(ev));
          status.textContent = 'The turn failed.';
          st.root.dataset.turn = 'error';
          break;
        default:
          break;
      }
      scroll();
    };
    try {
      await chatStream({ message: text, session_id: st.sessionId || undefined }, onEvent);
      if (!ended) {
        event('error', errorBox(new Error('The stream ended before the turn finished; reopen the session to see what was recorded.')));
        status.textContent = 'The turn did not finish.';
        st.root.dataset.turn = 'error';
      }
    } catch (err) {
      event('error', errorBox(err));
      status.textContent = 'The message was not sent.';
      st.root.dataset.turn = 'error';
    } finally {
      // The finished reply as Markdown (rendered inert: DOM nodes only).
      st.root.querySelectorAll('.msg.assistant.streaming .text').forEach((t) => {
        t.classList.add('markdown');
        t.replaceChildren(markdown(t.textContent));
      });
      st.root.querySelectorAll('.streaming').forEach((b) => b.classList.remove('streaming'));
      if (pending) pending.box.remove();
      setBusy(false);
      scroll();
    }
    // Hermes titles new sessions: show it in the picker.
    if (st.sessionId) {
      api(`api/sessions/${encodeURIComponent(st.sessionId)}`).then((s) => {
        const opt = [...picker.options].find((o) => o.value === s.id);
        if (opt) opt.textContent = `${sessionTitle(s)} · ${s.id}`;
      }).catch(() => {});
    }
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text || st.busy) return;
    input.value = '';
    turn(text).finally(() => input.focus());
  });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  // Own sessions for the picker; the open one's messages.
  try {
    const mine = await api('api/sessions', { query: { user: me.user.username, limit: 100 } });
    for (const s of mine) picker.appendChild(h('option', { value: s.id }, `${sessionTitle(s)} · ${s.id}`));
    if (st.sessionId && !mine.some((s) => s.id === st.sessionId)) {
      picker.appendChild(h('option', { value: st.sessionId }, st.sessionId));
    }
    picker.value = st.sessionId || '';
    if (st.sessionId) {
      const t = await api(`api/sessions/${encodeURIComponent(st.sessionId)}/messages`);
      for (const m of t.messages) {
        const node = renderMessage(m);
        if (node) transcript.appendChild(node);
      }
      scroll(true);
    }
  } catch (err) {
    event('error', errorBox(err));
  }
  if (!transcript.children.length) {
    status.textContent = st.sessionId ? 'No messages yet.' : 'A new session starts with your first message.';
  }

  setBusy(false);
  st.root.dataset.ready = 'yes';
  input.focus();
}
