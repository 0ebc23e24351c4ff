// dom.js — building the page with DOM APIs only. Strings always become text
// nodes (never HTML), so hostile session titles, messages or usernames are
// shown as the characters they are.

const PROPS = new Set(['value', 'checked', 'disabled', 'hidden', 'selected', 'open']);

function fill(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'dataset') {
      Object.assign(el.dataset, v);
    } else if (PROPS.has(k)) {
      el[k] = v;
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** h('p', {class: 'x'}, 'text', child, [more]) → an HTML element. */
export function h(tag, attrs, ...children) {
  return fill(document.createElement(tag), attrs, children);
}

/** The same for SVG elements. */
export function s(tag, attrs, ...children) {
  return fill(document.createElementNS('http://www.w3.org/2000/svg', tag), attrs, children);
}

/** A message as a sentence: capital first letter, a full stop at the end. */
export function sentence(text) {
  const t = String(text).trim();
  if (!t) return t;
  const s = t.charAt(0).toUpperCase() + t.slice(1);
  return /[.!?)]$/.test(s) ? s : `${s}.`;
}

/** An error message box (role=alert) for an Error or ApiError: the
 * server's message as a sentence (never a raw code), and the request id to
 * quote to an administrator (the server log has the details under it). */
export function errorBox(err) {
  const msg = err && err.message ? err.message : String(err);
  return h('p', { class: 'error', role: 'alert' }, sentence(msg),
    err && err.requestId ? h('span', { class: 'request-id' }, ` (Request id ${err.requestId}.)`) : null);
}

export function notice(text) {
  return h('p', { class: 'notice', role: 'status' }, text);
}

export function fmtTime(v) {
  if (v === undefined || v === null || v === '') return '—';
  const d = typeof v === 'number' ? new Date(v * 1000) : new Date(v);
  return Number.isNaN(d.getTime()) ? String(v) : d.toLocaleString();
}

export function fmtUsd(n) {
  if (n === undefined || n === null) return '—';
  return '$' + Number(n).toFixed(n > 0 && n < 0.01 ? 4 : 2);
}

export function fmtInt(n) {
  return n === undefined || n === null ? '—' : Number(n).toLocaleString();
}

/** A link to a dashboard route, e.g. link(['session', id], 'open'). */
export function link(parts, text, attrs = {}) {
  return h('a', { href: '#/' + parts.map(encodeURIComponent).join('/'), ...attrs }, text);
}

/** A status badge: ok → green, anything else → red. */
export function badge(ok, text) {
  return h('span', { class: ok ? 'badge ok' : 'badge bad' }, text);
}

/** A table from column headers (text, or [text, class]) and rows of cells. */
export function table(caption, headers, rows, attrs = {}) {
  const th = (t) => (Array.isArray(t)
    ? h('th', { scope: 'col', class: t[1] }, t[0])
    : h('th', { scope: 'col' }, t));
  const head = h('thead', null, h('tr', null, headers.map(th)));
  const body = h('tbody', null, rows);
  // On a phone each row becomes a card of "column: value" lines (style.css):
  // every cell carries its column's name, so nothing hides off screen.
  const names = [...head.querySelectorAll('th')].map((c) => c.textContent.trim());
  for (const tr of body.querySelectorAll('tr')) {
    [...tr.children].forEach((cell, i) => { cell.dataset.label = names[i] || ''; });
  }
  // In its own scrolling box: on a desktop a wide table scrolls, the page
  // does not. Focusable, so the box can be scrolled from the keyboard too.
  return h('div', { class: 'table-box', tabindex: '0', role: 'region', 'aria-label': caption || 'Table' }, h('table', attrs,
    caption ? h('caption', null, caption) : null, head, body));
}

/** A label and its input kept together: in a wrapping row of filters a
 * label never ends a line with its input starting the next. */
export function field(label, input) {
  return h('span', { class: 'field' }, label, input);
}

/** Message content as text: Hermes stores multimodal content as "\0json:[...]". */
export function contentText(c) {
  if (c === null || c === undefined) return '';
  if (typeof c !== 'string') return JSON.stringify(c, null, 2);
  if (c.startsWith('\u0000json:')) {
    try {
      const parts = JSON.parse(c.slice(6));
      if (Array.isArray(parts)) {
        return parts.map((p) => (p && p.type === 'text' ? p.text : `[${(p && p.type) || 'part'}]`)).join('\n');
      }
    } catch { /* shown raw below */ }
    return c.slice(6);
  }
  return c;
}

/** JSON text pretty-printed when it parses, else as it is. */
export function pretty(v) {
  if (typeof v === 'string') {
    try { return JSON.stringify(JSON.parse(v), null, 2); } catch { return v; }
  }
  return JSON.stringify(v, null, 2);
}
