// usage.js — "Usage" (everyone; admins and auditors see everyone's, the
// others their own, as GET /api/usage answers): spend and tokens per local
// day (or hour, for two days or less) in a chosen time zone, stacked by
// user, API key or model, drawn as plain SVG, with the numbers in a table.

import { api } from './api.js';
import { h, s, errorBox, fmtUsd, fmtInt, table } from './dom.js';

/** Stacks beyond this many groups are drawn as one "Other" (the table still
 * lists every group): more colours than this are not told apart. */
const COLOURS = 8;

function browserZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

function zones(current) {
  let list = [];
  try {
    list = Intl.supportedValuesOf('timeZone');
  } catch { /* an older browser: the browser's zone and UTC only */ }
  return [...new Set(['UTC', current, ...list])];
}

/** YYYY-MM-DD of a local date, `days` after `d`. */
function ymd(d, days = 0) {
  const x = new Date(d.getFullYear(), d.getMonth(), d.getDate() + days);
  const p = (n) => String(n).padStart(2, '0');
  return `${x.getFullYear()}-${p(x.getMonth() + 1)}-${p(x.getDate())}`;
}

/** The day after a YYYY-MM-DD (the API's `until` is exclusive; the form's
 * "To" day is included). */
function nextDay(v) {
  const [y, m, d] = v.split('-').map(Number);
  return ymd(new Date(y, m - 1, d), 1);
}

/** Short numbers for axis ticks. */
function compact(v) {
  if (v >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (v >= 1e4) return `${(v / 1e3).toFixed(0)}k`;
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}

/** The axis: its top (1, 2 or 5 × 10^n, at or above v) and the step
 * between ticks (¼ of a 1 or 2, ⅕ of a 5), so every tick is a round number
 * (never $0.13 for an eighth of a dollar). `least`: the smallest top (an
 * empty range still draws). */
function axis(v, least) {
  const top0 = Math.max(v, least);
  const e = 10 ** Math.floor(Math.log10(top0));
  const f = [1, 2, 5, 10].find((x) => x * e >= top0 * (1 - 1e-12));
  const top = f * e;
  const parts = f === 5 ? 5 : 4;
  return { top, ticks: Array.from({ length: parts + 1 }, (_, k) => (top * k) / parts), step: top / parts };
}

/** Dollars with as many decimals as the axis step needs (at least 2). */
function usdTick(v, step) {
  let d = 2;
  while (d < 8 && Math.abs(Math.round(step * 10 ** d) - step * 10 ** d) > 1e-6) d += 1;
  return `$${v.toFixed(d)}`;
}

const METRICS = {
  cost: { title: 'Spend (USD)', get: (p) => p.cost_usd, least: 0.01, tick: usdTick, exact: (v) => fmtUsd(v) },
  // Whole tokens: an empty axis goes to 5 in steps of 1.
  tokens: { title: 'Tokens (in + out)', get: (p) => p.input_tokens + p.output_tokens, least: 5, tick: (v) => compact(v), exact: fmtInt },
};

/** A bucket's axis label: MM-DD for days, HH:00 for hours. */
function bucketLabel(start, bucket) {
  return bucket === 'hour' ? start.slice(11, 16) : start.slice(5, 10);
}

/** The groups as drawn: the first COLOURS - 1, then the rest summed. */
function drawnGroups(r) {
  if (r.groups.length <= COLOURS) return r.groups;
  const head = r.groups.slice(0, COLOURS - 1);
  const rest = r.groups.slice(COLOURS - 1);
  const series = r.buckets.map((b, i) => {
    const p = { start: b.start, llm_calls: 0, input_tokens: 0, output_tokens: 0, cost_usd: 0 };
    for (const g of rest) {
      for (const k of ['llm_calls', 'input_tokens', 'output_tokens', 'cost_usd']) p[k] += g.series[i][k];
    }
    return p;
  });
  return [...head, { key: null, label: `Other (${rest.length})`, series }];
}

/** Stacked bars of one metric per bucket, one colour per group. `W`: the
 * drawing's width, near the width it is shown at, so its text stays legible
 * on a phone instead of being scaled down. */
function stackedChart(id, r, groups, m, W) {
  const H = Math.round(Math.min(280, Math.max(200, W * 0.5)));
  const n = r.buckets.length;
  const sums = r.buckets.map((_, i) => groups.reduce((t, g) => t + (Number(m.get(g.series[i])) || 0), 0));
  const { top, ticks, step } = axis(Math.max(0, ...sums), m.least);
  // Room on the left for the longest tick label, so no number is cut.
  const longest = Math.max(...ticks.map((v) => m.tick(v, step).length));
  const pad = { l: 12 + longest * 8, r: 10, t: 14, b: 30 };
  const iw = W - pad.l - pad.r;
  const ih = H - pad.t - pad.b;
  const y = (v) => pad.t + ih - (ih * v) / top;
  const slot = iw / n;
  const titleId = `${id}-title`;
  const total = sums.reduce((a, b) => a + b, 0);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart usage-chart', id, role: 'img', 'aria-labelledby': titleId },
    s('title', { id: titleId }, `${m.title} per ${r.bucket} in ${r.tz}, stacked by ${r.by}: ${m.exact(total)} in total from ${r.since} to before ${r.until}. The table below has the numbers.`));
  for (const v of ticks) {
    svg.append(
      s('line', { x1: pad.l, x2: W - pad.r, y1: y(v), y2: y(v), class: v ? 'grid' : 'axis' }),
      s('text', { x: pad.l - 6, y: y(v) + 4, 'text-anchor': 'end' }, m.tick(v, step)));
  }
  // Axis labels at least 48 px apart, whatever the number of buckets.
  const every = Math.max(1, Math.ceil(n / Math.max(1, Math.floor(iw / 48))));
  r.buckets.forEach((b, i) => {
    const x = pad.l + i * slot;
    let base = 0;
    groups.forEach((g, gi) => {
      const v = Number(m.get(g.series[i])) || 0;
      if (v > 0) {
        const bh = (ih * v) / top;
        svg.append(s('rect', {
          x: x + slot * 0.15, y: y(base) - bh, width: Math.max(slot * 0.7, 1), height: bh,
          class: `seg s${gi % COLOURS}`, dataset: { start: b.start, group: g.label },
        }, s('title', null, `${b.start} · ${g.label}: ${m.exact(v)}`)));
      }
      base += v;
    });
    if (i % every === 0) {
      svg.append(s('text', { x: x + slot / 2, y: H - 10, 'text-anchor': 'middle' }, bucketLabel(b.start, r.bucket)));
    }
  });
  return svg;
}

function legend(groups) {
  return h('ul', { class: 'legend', id: 'usage-legend', 'aria-label': 'Legend' },
    groups.map((g, i) => h('li', null,
      s('svg', { class: 'swatch', viewBox: '0 0 10 10', width: 12, height: 12, 'aria-hidden': 'true' },
        s('rect', { width: 10, height: 10, class: `s${i % COLOURS}` })),
      g.label)));
}

function totalsTable(r) {
  const what = { user: 'User', key: 'API key', model: 'Model' }[r.by];
  const row = (label, t, attrs) => h('tr', attrs,
    h('th', { scope: 'row' }, label),
    h('td', { class: 'num' }, fmtInt(t.llm_calls)),
    h('td', { class: 'num' }, fmtInt(t.input_tokens)),
    h('td', { class: 'num' }, fmtInt(t.output_tokens)),
    h('td', { class: 'num' }, fmtUsd(t.cost_usd)));
  const rows = r.groups.map((g) => row(g.label, g.totals, { dataset: { group: g.label } }));
  rows.push(row('Total', r.totals, { class: 'total', id: 'usage-total' }));
  return table(`Totals by ${what.toLowerCase()}, ${r.since} to before ${r.until} (${r.tz})`,
    [what, ['LLM calls', 'num'], ['Tokens in', 'num'], ['Tokens out', 'num'], ['Spend', 'num']],
    rows, { id: 'usage-table' });
}

export async function usageView(el, me) {
  const everyone = me.may.read_all_sessions;
  const today = new Date();
  const tzNow = browserZone();
  const since = h('input', { id: 'usage-since', name: 'since', type: 'date', required: true, value: ymd(today, -6) });
  const until = h('input', { id: 'usage-until', name: 'until', type: 'date', required: true, value: ymd(today) });
  const tz = h('select', { id: 'usage-tz', name: 'tz' },
    zones(tzNow).map((z) => h('option', { value: z, selected: z === tzNow }, z)));
  // Only oneself is in a user's answer: grouping by model says more.
  const initialBy = everyone ? 'user' : 'model';
  const by = h('fieldset', { class: 'inline', id: 'usage-by' }, h('legend', null, 'By'),
    [['user', 'User'], ['key', 'API key'], ['model', 'Model']].map(([v, label]) => h('label', null,
      h('input', { type: 'radio', name: 'by', value: v, checked: v === initialBy }), ` ${label}`)));
  const form = h('form', { class: 'inline filters usage-form', id: 'usage-form' },
    h('span', { class: 'field' }, h('label', { for: 'usage-since' }, 'From'), since),
    h('span', { class: 'field' }, h('label', { for: 'usage-until' }, 'To (included)'), until),
    h('span', { class: 'field' }, h('label', { for: 'usage-tz' }, 'Time zone'), tz),
    by,
    h('button', { type: 'submit', class: 'secondary' }, 'Show'));
  const status = h('p', { class: 'muted', id: 'usage-status', 'aria-live': 'polite' });
  const out = h('div', { id: 'usage-result' });
  el.append(h('h1', null, 'Usage'),
    h('p', { class: 'muted' }, everyone ? 'Spend and tokens of every user.' : 'Your spend and tokens.'),
    form, status, out);

  let seq = 0;
  async function load() {
    const mine = ++seq;
    status.textContent = 'Loading…';
    let r;
    try {
      r = await api('api/usage', {
        query: { since: since.value, until: until.value ? nextDay(until.value) : '', tz: tz.value, by: form.elements.by.value },
      });
    } catch (err) {
      if (mine !== seq) return;
      status.textContent = '';
      out.replaceChildren(errorBox(err));
      return;
    }
    // An older answer arriving after a newer request is dropped.
    if (mine !== seq) return;
    out.dataset.by = r.by;
    out.dataset.bucket = r.bucket;
    status.textContent = `${r.buckets.length} ${r.bucket === 'hour' ? 'hour' : 'day'}(s) in ${r.tz}; ${r.groups.length} group(s).`;
    if (!r.groups.length) {
      out.replaceChildren(h('p', { class: 'muted', id: 'usage-empty' }, 'No usage in this range.'), totalsTable(r));
      return;
    }
    const groups = drawnGroups(r);
    const figures = [['usage-cost', METRICS.cost], ['usage-tokens', METRICS.tokens]]
      .map(([id, m]) => [h('figure', { class: 'usage-figure' }, h('figcaption', null, m.title)), id, m]);
    out.replaceChildren(legend(groups), h('div', { class: 'usage-charts' }, figures.map(([f]) => f)), totalsTable(r));
    // Drawn at the width they are laid out at (one column on a phone, two
    // on a wide screen), so the 12 px labels are 12 px on screen.
    for (const [f, id, m] of figures) {
      const W = Math.round(Math.min(900, Math.max(280, f.clientWidth || 640)));
      f.appendChild(stackedChart(id, r, groups, m, W));
    }
  }
  form.addEventListener('submit', (e) => { e.preventDefault(); load(); });
  form.addEventListener('change', () => { if (form.checkValidity()) load(); });
  await load();
}
