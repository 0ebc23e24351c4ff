// account.js — every role: change one's own password. The server answers
// with a fresh login; every other token of the account stops working (other
// tabs and devices log in again).

import { changePassword } from './api.js';
import { h, errorBox, notice } from './dom.js';

export function accountView(el, me) {
  const current = h('input', { id: 'current-password', type: 'password', required: true, autocomplete: 'current-password' });
  const next = h('input', { id: 'new-password-1', type: 'password', required: true, minlength: 12, autocomplete: 'new-password' });
  const again = h('input', { id: 'new-password-2', type: 'password', required: true, minlength: 12, autocomplete: 'new-password' });
  const button = h('button', { type: 'submit', id: 'password-submit' }, 'Change password');
  const out = h('div', { id: 'password-out', 'aria-live': 'polite' });
  const form = h('form', { class: 'card narrow', id: 'password-form' },
    h('h2', null, 'Change password'),
    h('p', { class: 'muted' }, 'At least 12 characters. Other devices and tabs will have to log in again.'),
    h('label', { for: 'current-password' }, 'Current password'), current,
    h('label', { for: 'new-password-1' }, 'New password'), next,
    h('label', { for: 'new-password-2' }, 'New password again'), again,
    button, out);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (next.value !== again.value) {
      out.replaceChildren(errorBox(new Error('the new passwords do not match')));
      again.focus();
      return;
    }
    button.disabled = true;
    out.replaceChildren(notice('Changing the password…'));
    try {
      await changePassword(current.value, next.value);
      form.reset();
      out.replaceChildren(notice('Password changed.'));
    } catch (err) {
      out.replaceChildren(errorBox(err));
    }
    button.disabled = false;
  });
  el.append(h('h1', null, 'Account'),
    h('p', null, `${me.user.username} · ${me.user.role}`),
    form);
}
