// users.js — for admins: accounts, role changes, disable/enable, delete,
// and new accounts. A role change or disabling revokes the user's tokens.

import { api } from './api.js';
import { h, errorBox, notice, fmtTime, table } from './dom.js';

const ROLES = ['admin', 'auditor', 'user', 'viewer'];

export async function usersView(el, me) {
  const out = h('div', { id: 'users-out', 'aria-live': 'polite' });
  const list = h('div', { id: 'users-list' });
  el.append(h('h1', null, 'Users'), out, list, newUserForm(out, reload));

  async function reload() {
    let users;
    try {
      users = await api('api/users');
    } catch (err) {
      list.replaceChildren(errorBox(err));
      return;
    }
    const rows = users.map((u) => userRow(u, me, out, reload));
    list.replaceChildren(table(null, ['User', 'Role', 'Status', 'Last login', 'Created', ''], rows, { class: 'users' }));
  }
  await reload();
}

async function act(out, what, fn, reload) {
  out.replaceChildren(notice(`${what}…`));
  try {
    await fn();
    out.replaceChildren(notice(`${what}: done.`));
  } catch (err) {
    out.replaceChildren(errorBox(err));
  }
  await reload();
}

function userRow(u, me, out, reload) {
  const path = `api/users/${encodeURIComponent(u.username)}`;
  const self = u.id === me.user.id;
  const select = h('select', { 'aria-label': `Role of ${u.username}`, disabled: self },
    ROLES.map((r) => h('option', { value: r, selected: r === u.role }, r)));
  const save = h('button', { type: 'button', class: 'secondary', disabled: true }, 'Change role');
  select.addEventListener('change', () => { save.disabled = select.value === u.role; });
  save.addEventListener('click', () =>
    act(out, `Role of ${u.username} → ${select.value}`, () => api(path, { method: 'PATCH', body: { role: select.value } }), reload));
  const toggle = h('button', { type: 'button', class: u.disabled ? 'secondary' : 'danger', disabled: self, dataset: { action: u.disabled ? 'enable' : 'disable' } },
    u.disabled ? 'Enable' : 'Disable');
  toggle.addEventListener('click', () =>
    act(out, `${u.disabled ? 'Enabling' : 'Disabling'} ${u.username}`, () => api(path, { method: 'PATCH', body: { disabled: !u.disabled } }), reload));
  const del = h('button', { type: 'button', class: 'danger', disabled: self }, 'Delete');
  del.addEventListener('click', () => {
    if (window.confirm(`Delete the account ${u.username}? Their sessions and audit events stay.`)) {
      act(out, `Deleting ${u.username}`, () => api(path, { method: 'DELETE' }), reload);
    }
  });
  // Reset: a new password the user must replace at their next login.
  const reset = self ? null : h('details', { class: 'reset' },
    h('summary', null, 'Reset password'),
    (() => {
      const pw = h('input', { type: 'password', minlength: 12, required: true, autocomplete: 'new-password',
        'aria-label': `New password for ${u.username}` });
      const f = h('form', { class: 'inline', dataset: { reset: u.username } }, pw,
        h('button', { type: 'submit', class: 'secondary' }, 'Set'));
      f.addEventListener('submit', (e) => {
        e.preventDefault();
        act(out, `Resetting the password of ${u.username}`,
          () => api(`${path}/password`, { method: 'POST', body: { new_password: pw.value } }), reload);
      });
      return f;
    })());
  return h('tr', { dataset: { username: u.username, role: u.role, disabled: String(u.disabled) } },
    h('th', { scope: 'row' }, u.username, self ? h('span', { class: 'muted' }, ' (you)') : null),
    h('td', null, select, ' ', save),
    h('td', null, u.disabled ? h('span', { class: 'badge bad' }, 'disabled') : h('span', { class: 'badge ok' }, 'active')),
    h('td', null, fmtTime(u.last_login_at)),
    h('td', null, fmtTime(u.created_at)),
    h('td', { class: 'actions' }, toggle, ' ', del, reset));
}

function newUserForm(out, reload) {
  const name = h('input', { id: 'new-username', name: 'username', required: true, autocomplete: 'off' });
  const pass = h('input', { id: 'new-password', name: 'password', type: 'password', required: true, autocomplete: 'new-password' });
  const role = h('select', { id: 'new-role', name: 'role' }, ROLES.map((r) => h('option', { value: r, selected: r === 'user' }, r)));
  const form = h('form', { class: 'card', id: 'new-user' },
    h('h2', null, 'New account'),
    h('div', { class: 'grid' },
      h('label', { for: 'new-username' }, 'Username'), name,
      h('label', { for: 'new-password' }, 'Password'), pass,
      h('label', { for: 'new-role' }, 'Role'), role),
    h('button', { type: 'submit' }, 'Create account'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = { username: name.value.trim(), password: pass.value, role: role.value };
    await act(out, `Creating ${body.username}`, () => api('auth/register', { method: 'POST', body }), reload);
    if (!out.querySelector('.error')) {
      form.reset();
      // reset() goes back to the first option (admin): new accounts start as users.
      role.value = 'user';
    }
  });
  return form;
}
