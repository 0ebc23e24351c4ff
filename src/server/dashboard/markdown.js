// markdown.js — assistant replies as Markdown, safely: the renderer builds
// DOM nodes and text nodes only (never innerHTML), so markup in a reply —
// <script>, <img onerror=…>, raw HTML of any kind — stays visible text.
// Supported: paragraphs, line breaks, headings (#…), fenced code blocks,
// inline code, **bold**, *italic*, [links](http…) (http, https and mailto
// only; rel="noopener noreferrer", new tab), bullet and numbered lists,
// block quotes.

import { h } from './dom.js';

const SAFE_URL = /^(https?:|mailto:)/i;

/** Inline Markdown of one line into nodes. */
function inline(text) {
  const out = [];
  // Code spans first (their content is literal), then links, bold, italic.
  // Underscores only at word edges (snake_case and __dunder__ stay text).
  const re = /(`+)([^`]|[^`][\s\S]*?[^`])\1|\[([^\]]+)\]\(([^)\s]+)\)|\*\*([^*]+)\*\*|(?<!\w)__([^_]+)__(?!\w)|\*([^*\s][^*]*)\*|(?<!\w)_([^_\s][^_]*)_(?!\w)/g;
  let last = 0;
  let m;
  while ((m = re.exec(text)) !== null) {
    if (m.index > last) out.push(document.createTextNode(text.slice(last, m.index)));
    if (m[1]) {
      out.push(h('code', null, m[2].trim()));
    } else if (m[3] !== undefined) {
      const url = m[4];
      out.push(SAFE_URL.test(url)
        ? h('a', { href: url, rel: 'noopener noreferrer', target: '_blank' }, ...inline(m[3]))
        : document.createTextNode(m[0]));
    } else if (m[5] !== undefined || m[6] !== undefined) {
      out.push(h('strong', null, ...inline(m[5] ?? m[6])));
    } else {
      out.push(h('em', null, ...inline(m[7] ?? m[8])));
    }
    last = re.lastIndex;
  }
  if (last < text.length) out.push(document.createTextNode(text.slice(last)));
  return out;
}

/** Lines joined with <br> inside one block. */
function lines(ls) {
  const out = [];
  ls.forEach((l, i) => {
    if (i) out.push(h('br'));
    out.push(...inline(l));
  });
  return out;
}

/** A document fragment for `text`. */
export function markdown(text) {
  const frag = document.createDocumentFragment();
  const src = String(text).replace(/\r\n?/g, '\n').split('\n');
  let i = 0;
  while (i < src.length) {
    const line = src[i];
    const fence = line.match(/^\s*(```|~~~)\s*([\w+-]*)\s*$/);
    if (fence) {
      const body = [];
      i += 1;
      while (i < src.length && !src[i].trim().startsWith(fence[1])) body.push(src[i++]);
      i += 1;
      const code = h('code', fence[2] ? { class: `language-${fence[2]}` } : null, body.join('\n'));
      frag.appendChild(h('pre', { class: 'code' }, code));
      continue;
    }
    if (!line.trim()) { i += 1; continue; }
    const head = line.match(/^(#{1,6})\s+(.*)$/);
    if (head) {
      // Reply headings sit below the page's own: h3 at most.
      frag.appendChild(h(`h${Math.min(6, head[1].length + 2)}`, null, ...inline(head[2])));
      i += 1;
      continue;
    }
    const item = /^\s*([-*+]|\d+[.)])\s+/;
    if (item.test(line)) {
      const ordered = /^\s*\d/.test(line);
      const list = h(ordered ? 'ol' : 'ul');
      while (i < src.length && item.test(src[i]) && /^\s*\d/.test(src[i]) === ordered) {
        list.appendChild(h('li', null, ...inline(src[i].replace(item, ''))));
        i += 1;
      }
      frag.appendChild(list);
      continue;
    }
    if (/^\s*>/.test(line)) {
      const q = [];
      while (i < src.length && /^\s*>/.test(src[i])) q.push(src[i++].replace(/^\s*>\s?/, ''));
      frag.appendChild(h('blockquote', null, ...lines(q)));
      continue;
    }
    const para = [];
    while (i < src.length && src[i].trim() && !/^(#{1,6}\s|\s*(```|~~~)|\s*([-*+]|\d+[.)])\s|\s*>)/.test(src[i])) {
      para.push(src[i++]);
    }
    frag.appendChild(h('p', null, ...lines(para)));
  }
  return frag;
}
