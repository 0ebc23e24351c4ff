// keys.js — the Account view's "API keys": personal keys for
// OpenAI-compatible clients and scripts. A new key is shown once (with a
// copy button); afterwards only its prefix. Owners revoke their own keys;
// admins may list and revoke everyone's.

import { api } from './api.js';
import { h, errorBox, notice, fmtTime, table } from './dom.js';

// Keys asked for per list (the API's largest page).
const KEYS_SHOWN = 500;

const EXPIRIES = [['never', 'Never'], ['30d', '30 days'], ['90d', '90 days'], ['365d', '1 year']];

function status(k) {
  if (k.revoked_at) return h('span', { class: 'badge bad' }, 'revoked');
  if (k.expires_at && new Date(k.expires_at) <= new Date()) return h('span', { class: 'badge bad' }, 'expired');
  return h('span', { class: 'badge ok' }, 'active');
}

export function keysCard(me) {
  const out = h('div', { id: 'keys-out', 'aria-live': 'polite' });
  const list = h('div', { id: 'keys-list', class: 'table-box' });
  const admin = me.may.manage_users;
  const everyone = admin ? h('input', { type: 'checkbox', id: 'keys-everyone' }) : null;
  const card = h('section', { class: 'card', id: 'keys-card' },
    h('h2', null, 'API keys'),
    h('p', { class: 'muted' }, 'For OpenAI-compatible clients (the openai SDKs, Open WebUI, curl): base URL ',
      h('code', null, `${location.origin}${location.pathname.replace(/\/$/, '')}/v1`),
      '. A key acts as you, within its scope; it cannot change your account.'),
    admin ? h('p', null, everyone, ' ', h('label', { for: 'keys-everyone' }, 'Show everyone\'s keys')) : null,
    list, out);

  async function reload() {
    let keys;
    try {
      // The API pages (at most 500 a page): the newest 500 are shown.
      const query = { limit: String(KEYS_SHOWN) };
      if (everyone?.checked) query.all = 'true';
      keys = await api('api/keys', { query });
    } catch (err) {
      list.replaceChildren(errorBox(err));
      return;
    }
    if (!keys.length) {
      list.replaceChildren(h('p', { class: 'muted', id: 'keys-empty' }, 'No keys yet.'));
      return;
    }
    const more = keys.length === KEYS_SHOWN
      ? h('p', { class: 'muted', id: 'keys-more' }, `The newest ${KEYS_SHOWN} keys; \`hermes-operator user key list\` lists them all.`)
      : null;
    const rows = keys.map((k) => {
      const revoke = h('button', { type: 'button', class: 'danger', disabled: !!k.revoked_at }, 'Revoke');
      revoke.addEventListener('click', async () => {
        if (!window.confirm(`Revoke the key ${k.prefix}… (${k.label || 'no label'})? Clients using it stop working at once.`)) return;
        revoke.disabled = true;
        try {
          await api(`api/keys/${encodeURIComponent(k.id)}`, { method: 'DELETE' });
          out.replaceChildren(notice(`Key ${k.prefix}… revoked.`));
        } catch (err) {
          out.replaceChildren(errorBox(err));
        }
        reload();
      });
      return h('tr', { dataset: { keyId: k.id } },
        h('th', { scope: 'row' }, k.label || h('span', { class: 'muted' }, '(no label)')),
        everyone?.checked ? h('td', null, k.username) : null,
        h('td', null, h('code', { class: 'prefix' }, `${k.prefix}…`)),
        h('td', null, k.scope),
        h('td', null, k.toolsets ? k.toolsets.join(', ') : 'all allowed'),
        h('td', null, k.approvals),
        h('td', { class: 'num' }, k.rpm ? String(k.rpm) : '—'),
        h('td', null, fmtTime(k.last_used_at)),
        h('td', null, k.expires_at ? fmtTime(k.expires_at) : 'never'),
        h('td', null, status(k)),
        h('td', { class: 'actions' }, revoke));
    });
    const heads = ['Label', everyone?.checked ? 'User' : null, 'Key', 'Scope', 'Toolsets', 'Approvals', ['Per min', 'num'], 'Last used', 'Expires', 'Status', ''].filter((x) => x !== null);
    list.replaceChildren(...[table(null, heads, rows, { class: 'keys' }), more].filter(Boolean));
  }
  everyone?.addEventListener('change', reload);

  // New key.
  const label = h('input', { id: 'key-label', maxlength: 100, autocomplete: 'off', placeholder: 'e.g. laptop, Open WebUI' });
  const scope = h('select', { id: 'key-scope' },
    me.may.chat ? h('option', { value: 'chat' }, 'chat — chat and read') : null,
    h('option', { value: 'read' }, 'read — read only'));
  const expires = h('select', { id: 'key-expires' }, EXPIRIES.map(([v, t]) => h('option', { value: v, selected: v === '90d' }, t)));
  const approvals = h('select', { id: 'key-approvals' },
    h('option', { value: 'deny' }, 'deny dangerous commands at once'),
    h('option', { value: 'wait' }, 'wait for my answer (Approvals page)'));
  // Requests per minute: empty is unlimited (the server's 1–100000).
  const rpm = h('input', {
    id: 'key-rpm', type: 'number', min: 1, max: 100000, step: 1, inputmode: 'numeric',
    placeholder: 'unlimited', 'aria-describedby': 'key-rpm-help',
  });
  // Toolsets: none ticked is "all the operator allows"; ticking narrows.
  const offered = me.key_toolsets || [];
  const toolsetBoxes = offered.map((t) => h('input', { type: 'checkbox', id: `key-toolset-${t}`, value: t, name: 'key-toolsets' }));
  const toolsets = h('fieldset', { class: 'toolsets', id: 'key-toolsets' },
    h('legend', null, 'Toolsets'),
    offered.length
      ? toolsetBoxes.map((b) => h('span', { class: 'choice' }, b, ' ', h('label', { for: b.id }, b.value)))
      : h('span', { class: 'muted' }, 'The operator allows no toolsets (agent.enabled_toolsets is empty).'),
    h('p', { class: 'muted help' }, 'None ticked: every toolset the operator allows, now and later.'));
  const create = h('button', { type: 'submit', id: 'key-create' }, 'Create key');
  const shown = h('div', { id: 'key-shown', 'aria-live': 'polite' });
  const form = h('form', { id: 'key-form' },
    h('h3', null, 'New key'),
    h('div', { class: 'grid' },
      h('label', { for: 'key-label' }, 'Label'), label,
      h('label', { for: 'key-scope' }, 'Scope'), scope,
      h('label', { for: 'key-expires' }, 'Expires'), expires,
      h('label', { for: 'key-approvals' }, 'Approvals'), approvals,
      h('label', { for: 'key-rpm' }, 'Requests per minute'),
      h('span', null, rpm, ' ', h('span', { class: 'muted', id: 'key-rpm-help' }, 'empty: no limit'))),
    me.may.chat ? toolsets : null,
    create, shown);
  // A read-only key runs no turns: toolsets would mean nothing.
  scope.addEventListener('change', () => { toolsets.hidden = scope.value !== 'chat'; });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    create.disabled = true;
    try {
      const k = await api('api/keys', {
        method: 'POST',
        body: {
          label: label.value.trim(), scope: scope.value, expires: expires.value, approvals: approvals.value,
          rpm: rpm.value.trim() ? Number(rpm.value) : undefined,
          toolsets: scope.value === 'chat' && toolsetBoxes.some((b) => b.checked)
            ? toolsetBoxes.filter((b) => b.checked).map((b) => b.value) : undefined,
        },
      });
      const value = h('code', { id: 'key-value' }, k.key);
      const copy = h('button', { type: 'button', class: 'secondary', id: 'key-copy' }, 'Copy');
      const copied = h('span', { class: 'muted', 'aria-live': 'polite' });
      copy.addEventListener('click', async () => {
        try {
          await navigator.clipboard.writeText(k.key);
          copied.textContent = ' Copied.';
        } catch {
          // No clipboard permission (plain http): select it for Ctrl+C.
          const r = document.createRange();
          r.selectNodeContents(value);
          const sel = window.getSelection();
          sel.removeAllRanges();
          sel.addRange(r);
          copied.textContent = ' Selected: press Ctrl+C.';
        }
      });
      shown.replaceChildren(h('div', { class: 'key-once' },
        h('p', null, h('strong', null, 'Copy this key now: it is shown only once.')),
        h('p', null, value, ' ', copy, copied)));
      label.value = '';
      rpm.value = '';
      toolsetBoxes.forEach((b) => { b.checked = false; });
      reload();
    } catch (err) {
      shown.replaceChildren(errorBox(err));
    }
    create.disabled = false;
  });
  if (me.key) {
    // A key cannot make keys: say so instead of offering a form that fails.
    card.append(h('p', { class: 'muted' }, 'Log in with your password to make or revoke keys.'));
  } else {
    card.append(form);
  }
  reload();
  return card;
}
