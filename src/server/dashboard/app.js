// app.js — the dashboard's entry point: login, the header, hash routing.
//
// Routes: #/chat[/ID]  #/sessions  #/session/ID  #/audit  #/replay/ID  #/users
//         #/account  #/approvals  #/events  #/search/QUERY  #/user/NAME  #/usage
// What a role may see comes from GET /api/me (`may`); the server enforces it
// anyway, the dashboard only hides what would be refused.

import { api, authMethods, hasTokens, login, logout, setOnExpired, ssoExchange } from './api.js';
import { h, errorBox, notice } from './dom.js';
import { chatView, resetChat } from './chat.js';
import { sessionListView, sessionView, searchView } from './sessions.js';
import { auditView, replayView, userReportView } from './audit.js';
import { usersView } from './users.js';
import { accountView } from './account.js';
import { approvalsView } from './approvals.js';
import { eventsView } from './events.js';
import { usageView } from './usage.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');

/** The GET /api/me answer while logged in: {user, may, token}. */
let me = null;

function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  return { name: parts[0] || '', arg: parts[1] };
}

function defaultRoute() {
  if (me.user.must_change_password) return '#/account';
  return me.may.chat ? '#/chat' : '#/sessions';
}

function navItems() {
  // After an admin's reset, only the password change is open.
  if (me.user.must_change_password) return [['account', 'Account']];
  const items = [];
  if (me.may.chat) items.push(['chat', 'Chat']);
  if (me.may.answer_approvals) items.push(['approvals', approvalsLabel()]);
  items.push(['sessions', me.may.read_all_sessions ? 'All sessions' : 'My sessions']);
  if (me.may.audit) items.push(['audit', 'Audit'], ['events', 'Events']);
  items.push(['usage', 'Usage']);
  if (me.may.manage_users) items.push(['users', 'Users']);
  items.push(['account', 'Account']);
  return items;
}

/** How many approval requests wait for this user's answer (the nav's badge). */
let waiting = 0;
let waitingTimer = null;

/** "Approvals" in the nav, with the waiting count when there is one. */
function approvalsLabel() {
  if (!waiting) return 'Approvals';
  return ['Approvals ', h('span', { class: 'count', id: 'approvals-count', title: `${waiting} waiting for your answer` },
    String(waiting), h('span', { class: 'visually-hidden' }, ' waiting'))];
}

/** Asks the server how many approvals wait (every 10 s while logged in, and
 * on every page change): a request from a personal API key or another tab
 * waits for an answer nobody sees unless the nav says so. */
async function refreshWaiting() {
  if (!me || !me.may.answer_approvals || me.user.must_change_password) return;
  let n;
  try {
    n = (await api('api/approvals')).length;
  } catch {
    return; // the views say what is wrong; the badge just stays as it was
  }
  if (!me || n === waiting) return;
  waiting = n;
  const a = document.getElementById('nav-approvals');
  if (a) a.replaceChildren(...[approvalsLabel()].flat());
}

function watchWaiting() {
  clearInterval(waitingTimer);
  waitingTimer = me && me.may.answer_approvals ? setInterval(refreshWaiting, 10000) : null;
}

function renderHeader(current) {
  if (!me) {
    nav.replaceChildren();
    who.replaceChildren();
    return;
  }
  const active = { session: 'sessions', search: 'sessions', replay: 'audit', user: 'audit' }[current] || current;
  nav.replaceChildren(h('ul', null, navItems().map(([name, label]) =>
    h('li', null, h('a', {
      href: `#/${name}`,
      id: `nav-${name}`,
      'aria-current': name === active ? 'page' : null,
    }, label)))));
  // Filtered: the DOM's own replaceChildren(null) inserts the text "null"
  // (h() skips null children, replaceChildren does not): every non-demo
  // install showed it in the header.
  who.replaceChildren(...[
    me.demo ? h('span', { class: 'badge demo', id: 'demo-badge', title: 'Sample data in a throwaway home: `hermes-operator demo`' }, 'Demo') : null,
    h('span', { id: 'whoami' }, me.user.username),
    h('span', { class: 'role' }, me.user.role),
    h('button', { type: 'button', id: 'logout', class: 'secondary', onclick: doLogout }, 'Log out'),
  ].filter(Boolean));
}

async function doLogout() {
  await logout();
  me = null;
  watchWaiting();
  resetChat();
  history.replaceState(null, '', location.pathname);
  render();
}

function loginView(message) {
  const user = h('input', { id: 'username', name: 'username', autocomplete: 'username', required: true, autofocus: true });
  const pass = h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  // Shown when the server asks for the second factor (401 totp_required).
  const code = h('input', { id: 'totp', name: 'totp', autocomplete: 'one-time-code', inputmode: 'numeric', hidden: true });
  const codeLabel = h('label', { for: 'totp', hidden: true }, 'Authenticator code (or a recovery code)');
  const button = h('button', { type: 'submit', id: 'login-submit' }, 'Log in');
  const out = h('div', { id: 'login-message', 'aria-live': 'polite' }, message ? notice(message) : null);
  const form = h('form', { id: 'login-form', class: 'card narrow' },
    h('h1', null, 'Log in'),
    h('p', { class: 'muted' }, 'hermes-operator — operator control plane for Hermes Agent'),
    h('label', { for: 'username' }, 'Username'), user,
    h('label', { for: 'password' }, 'Password'), pass,
    codeLabel, code,
    button, out);
  // Single sign-on, when the server has it: a plain link to its start.
  authMethods()
    .then((m) => {
      if (m.sso) form.insertBefore(h('a', { class: 'sso', id: 'sso-login', href: m.sso.start }, `Log in with ${m.sso.name}`), out);
    })
    .catch(() => { /* the password form still works */ });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    button.disabled = true;
    out.replaceChildren(notice('Logging in…'));
    try {
      await login(user.value, pass.value, code.value.trim());
      pass.value = '';
      code.value = '';
      me = await api('api/me');
      waiting = 0;
      watchWaiting();
      if (!route().name) location.hash = defaultRoute();
      render();
    } catch (err) {
      button.disabled = false;
      if (err.code === 'totp_required') {
        code.hidden = false;
        codeLabel.hidden = false;
        out.replaceChildren(notice('Enter the code from your authenticator app.'));
        code.focus();
        return;
      }
      out.replaceChildren(errorBox(err));
      (code.hidden ? pass : code).focus();
    }
  });
  return form;
}

const views = {
  chat: (el, arg) => chatView(el, me, arg),
  sessions: (el) => sessionListView(el, me),
  session: (el, arg) => sessionView(el, me, arg),
  audit: (el) => auditView(el, me),
  replay: (el, arg) => replayView(el, me, arg),
  users: (el) => usersView(el, me),
  account: (el) => accountView(el, me),
  approvals: (el) => approvalsView(el),
  events: (el) => eventsView(el),
  search: (el, arg) => searchView(el, me, arg),
  user: (el, arg) => userReportView(el, me, arg),
  usage: (el) => usageView(el, me),
};

const TITLES = {
  chat: 'Chat', sessions: 'Sessions', session: 'Session', audit: 'Audit', replay: 'Replay', users: 'Users',
  account: 'Account', approvals: 'Approvals', search: 'Search', user: 'User report', events: 'Events',
  usage: 'Usage',
};

let expiredMessage = null;

function render() {
  const { name, arg } = route();
  if (!me) {
    document.title = 'Log in · hermes-operator';
    renderHeader(null);
    main.replaceChildren(loginView(expiredMessage));
    expiredMessage = null;
    document.getElementById('username').focus();
    return;
  }
  const view = views[name];
  if (!view || (me.user.must_change_password && name !== 'account')) {
    location.replace(defaultRoute());
    return;
  }
  renderHeader(name);
  refreshWaiting();
  document.title = `${TITLES[name]}${arg ? ` ${arg}` : ''} · hermes-operator`;
  const el = h('section', { class: 'view', id: `view-${name}` });
  // Before Hermes' first run: one calm notice above every view.
  const notice = me.notice ? h('p', { class: 'notice state-notice', id: 'state-notice', role: 'status' }, me.notice) : null;
  main.replaceChildren(...[notice, el].filter(Boolean));
  Promise.resolve(view(el, arg))
    .catch((err) => el.appendChild(errorBox(err)))
    .finally(() => { el.dataset.loaded = 'yes'; });
}

setOnExpired(() => {
  me = null;
  watchWaiting();
  resetChat();
  expiredMessage = 'Your login has expired; please log in again.';
  render();
});

window.addEventListener('hashchange', render);
// Views that see approvals come and go (approvals.js, chat.js) say so.
window.addEventListener('approvals-changed', refreshWaiting);

async function boot() {
  // Back from single sign-on: `#sso=<one-time code>` (removed from the
  // address bar and history at once).
  if (location.hash.startsWith('#sso=')) {
    const code = decodeURIComponent(location.hash.slice(5));
    history.replaceState(null, '', location.pathname);
    try {
      await ssoExchange(code);
    } catch (err) {
      expiredMessage = err.message;
    }
  }
  if (hasTokens()) {
    try {
      me = await api('api/me');
      watchWaiting();
    } catch (err) {
      me = null;
      if (err.status === 401) return; // the expiry handler showed the login
      expiredMessage = err.message;
    }
  }
  render();
}

boot();
