// account.js — every role: change one's own password (the server answers
// with a fresh login; every other token of the account stops working: other
// tabs and devices log in again) and enrol an authenticator app for
// two-factor login (shown once: the secret, its otpauth link and the
// recovery codes; active after confirming a code with the password again:
// that ends every other login of the account, and the answer is a fresh
// one); personal API keys (keys.js).

import { beginTotp, changePassword, confirmTotp } from './api.js';
import { h, errorBox, notice } from './dom.js';
import { keysCard } from './keys.js';

function totpCard(me) {
  const out = h('div', { id: 'totp-out', 'aria-live': 'polite' });
  const card = h('section', { class: 'card narrow', id: 'totp-card' },
    h('h2', null, 'Two-factor login'));
  const state = me.totp || 'off';
  if (state === 'on') {
    card.append(h('p', { id: 'totp-state' }, 'On: logging in needs a code from your authenticator app.'),
      h('p', { class: 'muted' }, 'To move to a new device, an administrator removes it (hermes-operator user totp disable).'));
    return card;
  }
  card.append(h('p', { id: 'totp-state' }, me.totp_required
    ? 'Off — your role must use it: set it up now.'
    : 'Off. An authenticator app (any TOTP app) adds a 6-digit code to your logins.'));
  const pw = h('input', { id: 'totp-password', type: 'password', required: true, autocomplete: 'current-password' });
  const start = h('button', { type: 'submit', id: 'totp-begin' }, 'Set up');
  const form = h('form', { id: 'totp-begin-form' },
    h('label', { for: 'totp-password' }, 'Current password'), pw, start);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    start.disabled = true;
    try {
      const en = await beginTotp(pw.value);
      form.replaceWith(enrolment(en, card, out));
    } catch (err) {
      out.replaceChildren(errorBox(err));
      start.disabled = false;
    }
  });
  card.append(form, out);
  return card;
}

function enrolment(en, card, out) {
  // Confirming needs the password again (the server refuses a stolen token
  // alone), asked next to the code rather than kept from the first step.
  const pw = h('input', { id: 'totp-confirm-password', type: 'password', required: true, autocomplete: 'current-password' });
  const code = h('input', { id: 'totp-code', required: true, autocomplete: 'one-time-code', inputmode: 'numeric', maxlength: 6 });
  const confirm = h('button', { type: 'submit', id: 'totp-confirm' }, 'Confirm');
  const form = h('form', { id: 'totp-confirm-form' },
    h('p', null, 'Add this account to your authenticator app (open the link on a phone, or type the secret), then enter the code it shows.'),
    h('p', null, h('a', { href: en.uri, id: 'totp-uri', rel: 'noopener' }, 'otpauth link')),
    h('p', null, 'Secret: ', h('code', { id: 'totp-secret' }, en.secret)),
    h('p', null, 'Recovery codes — each works once in place of a code; keep them offline. They are not shown again:'),
    h('ul', { id: 'totp-recovery' }, ...en.recovery_codes.map((c) => h('li', null, h('code', null, c)))),
    h('label', { for: 'totp-confirm-password' }, 'Current password'), pw,
    h('label', { for: 'totp-code' }, 'Code from the app'), code, confirm);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    confirm.disabled = true;
    try {
      await confirmTotp(pw.value, code.value.trim());
      card.replaceChildren(h('h2', null, 'Two-factor login'),
        h('p', { id: 'totp-state' }, 'On: logging in needs a code from your authenticator app. Other devices and tabs will have to log in again.'));
    } catch (err) {
      out.replaceChildren(errorBox(err));
      confirm.disabled = false;
      code.focus();
    }
  });
  return form;
}

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
      // A reset password is replaced: the rest of the dashboard opens again.
      if (me.user.must_change_password) location.reload();
    } catch (err) {
      out.replaceChildren(errorBox(err));
    }
    button.disabled = false;
  });
  if (me.user.must_change_password) {
    el.append(h('h1', null, 'Account'),
      h('p', { class: 'notice state-notice', id: 'must-change' },
        'An administrator reset your password. Choose a new one to continue.'),
      form);
    return;
  }
  el.append(h('h1', null, 'Account'),
    h('p', null, `${me.user.username} · ${me.user.role}`),
    form, totpCard(me), keysCard(me));
}
