// riskserve console: a dependency-free single-page app over riskserve's REST API (ES2020 module, hash routes, no
// build step). It keeps the session's CSRF token in memory only, sends it on every state change, and builds every
// element with the DOM API (never HTML strings), so the server's strict Content-Security-Policy holds.
// ---- DOM helpers ----

const SVGNS = 'http://www.w3.org/2000/svg';
const $ = (selector, root = document) => root.querySelector(selector);
let uid = 0;
const newId = (prefix) => `${prefix}-${++uid}`;

function setAttrs(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value == null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
}
function append(el, kids) {
  for (const kid of kids.flat(Infinity)) {
    if (kid == null || kid === false) continue;
    el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}
const add = (el, ...kids) => append(el, kids);
const h = (tag, attrs, ...kids) => { const el = document.createElement(tag); setAttrs(el, attrs); return append(el, kids); };
const s = (tag, attrs, ...kids) => { const el = document.createElementNS(SVGNS, tag); setAttrs(el, attrs); return append(el, kids); };

/** A labelled control: `<div><label for=id>…</label><input id=id …></div>`. */
function field(label, attrs = {}, hint) {
  const id = attrs.id || newId('f');
  const tag = attrs.options ? 'select' : attrs.tag || 'input';
  const control = h(tag, { ...attrs, id, options: null, tag: null, value: attrs.options ? null : attrs.value, 'aria-describedby': hint ? `${id}-hint` : null });
  if (attrs.options) {
    for (const option of attrs.options) {
      const [value, text] = Array.isArray(option) ? option : [option, option];
      add(control, h('option', { value, selected: String(value) === String(attrs.value ?? '') }, text));
    }
  }
  return h('div', {}, h('label', { for: id }, label), control, hint && h('div', { id: `${id}-hint`, class: 'hint' }, hint));
}

/**
 * A table in a keyboard-scrollable region; `rows` are arrays of cells (a cell is text, a node, or {v, num}). With
 * `cards`, each row becomes a card of label: value lines on a phone.
 */
function table(caption, headers, rows, foot, cards = false) {
  const cols = headers.map((text) => (typeof text === 'object' ? text : { v: text }));
  const cell = (value, i) => {
    const isObj = value && typeof value === 'object' && !(value instanceof Node) && !Array.isArray(value);
    return h('td', { class: cols[i].num || (isObj && value.num) ? 'num' : null, 'data-label': cols[i].v }, h('span', {}, isObj ? value.v : value));
  };
  const line = (row) => h('tr', {}, row.map(cell));
  const t = h('table', {},
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, cols.map((col) => h('th', { scope: 'col', class: col.num ? 'num' : null }, col.v)))),
    h('tbody', {}, rows.map(line)),
    foot && h('tfoot', {}, line(foot)));
  return h('div', { class: `table-wrap${cards ? ' cards' : ''}`, role: 'region', 'aria-label': caption, tabindex: 0 }, t);
}

const N = (v) => ({ v, num: true });
const hint = (...kids) => h('p', { class: 'hint' }, kids);
const msg = (kind, ...kids) => h('div', { class: `msg ${kind}`, role: kind === 'error' || kind === 'denied' ? 'alert' : 'status' }, kids);
const TONES = { ok: 'InService completed allowed', bad: 'Failed failed denied unauthenticated alert', warn: 'warning no_data Creating Updating RollingBack Deleting' };
const badge = (status) => h('span', { class: `badge ${Object.keys(TONES).find((k) => TONES[k].split(' ').includes(status)) || ''}` }, status);
const btn = (text, onclick, attrs) => h('button', { type: 'button', class: 'secondary', onclick, ...attrs }, text);
const submit = (text) => h('div', {}, h('button', { type: 'submit' }, text));
const tags = (object) => Object.entries(object || {}).map(([k, v]) => h('span', { class: 'tag' }, `${k}=${v}`));
const facts = (pairs) => h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v ?? '—')]));
const enc = encodeURIComponent;
const link = (hash, text) => h('a', { href: `#/${hash}` }, text);

// ---- formatting ----

const fmtNum = (v, digits = 2) => (v == null || Number.isNaN(v) ? '—' : Number(v).toLocaleString('en-US', { maximumFractionDigits: digits }));
const fmtMs = (us) => (us == null ? '—' : `${fmtNum(us / 1000, us < 10000 ? 2 : 1)} ms`);
const fmtTime = (iso) => (iso ? `${iso.slice(0, 10)} ${iso.slice(11, 19)}` : '—');
const hhmm = (ms) => new Date(ms).toISOString().slice(11, 16);
function fmtMoney(v, currency) {
  try {
    return v.toLocaleString('en-US', { style: 'currency', currency, minimumFractionDigits: 2, maximumFractionDigits: Math.abs(v) < 1 ? 6 : 2 });
  } catch {
    return `${fmtNum(v, 6)} ${currency}`;
  }
}
const fmtPct = (v) => (v == null ? '—' : `${fmtNum(v * 100, 1)} %`);

// ---- the API ----

const apiError = (status, code, message) => Object.assign(new Error(message), { status, code });
/** The session: {principal, roles, csrf_token, expires_at}; in memory only. */
let session = null;

async function api(method, path, body, headers = {}) {
  const sent = { Accept: 'application/json', ...headers };
  if (method !== 'GET' && session) sent['X-CSRF-Token'] = session.csrf_token;
  if (body !== undefined) sent['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, { method, headers: sent, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin', cache: 'no-store' });
  } catch (error) {
    throw apiError(0, 'network', `the server cannot be reached (${error.message})`);
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!response.ok) {
    const detail = (data && (data.error || data)) || {};
    const error = apiError(response.status, detail.code || `http_${response.status}`, detail.message || response.statusText);
    if (response.status === 401 && session && !path.startsWith('/console/api/')) sessionEnded();
    throw error;
  }
  return data;
}
const get = (path) => api('GET', path);
const qs = (params) => {
  const search = new URLSearchParams(Object.entries(params).filter(([, v]) => v != null && v !== ''));
  const text = search.toString();
  return text ? `?${text}` : '';
};
/** Every item of a paged list. */
async function listAll(path) {
  const items = [];
  let token = null;
  do {
    const page = await get(path + qs({ max_results: 100, next_token: token }));
    items.push(...page.items);
    token = page.next_token;
  } while (token);
  return items;
}

// What the built-in roles may do (crates/riskserve-service/policies/builtin.cedar), used only to choose which links
// and forms to show; Cedar decides every request, and a role the console does not know shows everything.
const BUILTIN = { admin: ['read', 'write', 'invoke', 'iam', 'audit', 'metrics'], deployer: ['read', 'write', 'invoke', 'metrics'], invoker: ['invoke'], auditor: ['read', 'audit', 'metrics'] };
const may = (group) => !!session && session.roles.some((role) => !Object.prototype.hasOwnProperty.call(BUILTIN, role) || BUILTIN[role].includes(group));

function errorBox(error) {
  if (error.status === 403 && error.code === 'access_denied') {
    return msg('denied', h('strong', {}, 'Not allowed for your role. '), `Your roles (${session ? session.roles.join(', ') : 'none'}) may not see or do this; an administrator can grant it. `, h('span', { class: 'hint' }, `(${error.message})`));
  }
  return msg('error', h('strong', {}, `${error.code || 'error'}${error.status ? ` (${error.status})` : ''}: `), error.message || String(error));
}

/** A section with a heading whose body `load` fills; an error (a denial included) takes the body's place. */
function panel(parent, title, load, level = 'h2') {
  const body = h('div', {}, hint('Loading…'));
  const section = h('section', { 'aria-label': title }, h(level, {}, title), body);
  add(parent, section);
  Promise.resolve().then(() => load(body)).then(() => {
    const loading = body.firstChild;
    if (loading && loading.textContent === 'Loading…') loading.remove();
  }, (error) => body.replaceChildren(errorBox(error)));
  return section;
}

// ---- charts (SVG, drawn here) ----

/** The drawing width: the page's, or a column's of a `.charts` grid (columns of at least 420 px). */
function chartWidth(grid) {
  const w = ($('#main').clientWidth || 800) - 40;
  const cols = grid ? Math.max(1, Math.floor((w + 22) / 442)) : 1;
  return Math.max(300, Math.min(900, Math.floor((w - (cols - 1) * 22) / cols)));
}
/** A round axis maximum above `v`, and how many gridline steps divide it evenly. */
function niceMax(v) {
  if (!(v > 0)) return [1, 4];
  const p = 10 ** Math.floor(Math.log10(v));
  const m = [1, 2, 4, 5, 8, 10].find((one) => one * p >= v * 1.05) || 10;
  return [m * p, m === 5 || m === 10 ? 5 : 4];
}

/**
 * A time-series line chart. `series`: [{name, cls, dash, points: [[ms, value]]}], `markers`: [{t, text}]. The SVG is
 * `role="img"` with a summary as its label; the data follow as a table in a disclosure.
 */
function lineChart({ title, t0, t1, period, series, markers = [], fmt = fmtNum }) {
  const W = chartWidth(true), H = 210, L = 58, R = 14, T = 12, B = 26;
  const values = series.flatMap((one) => one.points.map((p) => p[1]));
  const [max, steps] = niceMax(Math.max(0, ...values));
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - v / max) * (H - T - B);
  const summary = series.map((one) => {
    const vs = one.points.map((p) => p[1]);
    return vs.length ? `${one.name}: latest ${fmt(vs[vs.length - 1])}, highest ${fmt(Math.max(...vs))}` : `${one.name}: no data`;
  }).join('; ');
  const label = `${title}, ${hhmm(t0)} to ${hhmm(t1)} UTC. ${summary}.${markers.length ? ` ${markers.length} scaling activities marked.` : ''}`;
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label });
  for (let i = 0; i <= steps; i++) {
    const v = (max * i) / steps;
    add(svg, s('line', { class: 'gridline', x1: L, x2: W - R, y1: y(v), y2: y(v) }), s('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, fmt(v)));
  }
  for (let i = 0; i <= 4; i++) {
    const t = t0 + ((t1 - t0) * i) / 4;
    add(svg, s('text', { x: x(t), y: H - 7, 'text-anchor': i === 0 ? 'start' : i === 4 ? 'end' : 'middle' }, hhmm(t)));
  }
  add(svg, s('line', { class: 'axis', x1: L, x2: L, y1: T, y2: H - B }), s('line', { class: 'axis', x1: L, x2: W - R, y1: H - B, y2: H - B }));
  for (const marker of markers) {
    if (marker.t < t0 || marker.t > t1) continue;
    add(svg, s('g', {}, s('title', {}, marker.text), s('line', { class: 'marker', x1: x(marker.t), x2: x(marker.t), y1: T, y2: H - B }), s('circle', { class: 'marker-dot', cx: x(marker.t), cy: T + 3, r: 4 })));
  }
  for (const one of series) {
    let segment = [];
    const flush = () => {
      if (segment.length === 1) add(svg, s('circle', { class: one.cls, cx: x(segment[0][0]), cy: y(segment[0][1]), r: 2.5 }));
      else if (segment.length) add(svg, s('polyline', { class: `line ${one.cls}${one.dash ? ' dash' : ''}`, points: segment.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ') }));
      segment = [];
    };
    for (const point of one.points) {
      if (segment.length && point[0] - segment[segment.length - 1][0] > period * 1500) flush();
      segment.push(point);
    }
    flush();
  }
  const times = [...new Set(series.flatMap((one) => one.points.map((p) => p[0])))].sort((a, b) => a - b);
  const lookup = series.map((one) => new Map(one.points));
  return h('figure', {},
    h('figcaption', {}, title),
    svg,
    h('ul', { class: 'legend' }, series.map((one) => h('li', { class: `${one.cls}${one.dash ? ' dash' : ''}` }, one.name)), markers.length ? h('li', { class: 'marker-key' }, 'scaling activity') : null),
    markers.length ? h('ul', { class: 'hint' }, markers.map((m) => h('li', {}, m.text))) : null,
    h('details', {}, h('summary', {}, `${title}: data table`),
      table(`${title} (UTC)`, ['Time', ...series.map((one) => (N(one.name)))], times.map((t) => [hhmm(t), ...lookup.map((m) => (m.has(t) ? fmt(m.get(t)) : '—'))]))));
}

/** A horizontal bar chart: items [{label, value}], negative values to the left of a zero line. */
function barChart({ title, items, fmt = fmtNum, grid = false }) {
  const W = chartWidth(grid), row = 26, T = 6, H = T * 2 + row * Math.max(1, items.length);
  const L = Math.min(230, Math.round(W * 0.42)), R = 70;
  const lo = Math.min(0, ...items.map((i) => i.value)), hi = Math.max(0, ...items.map((i) => i.value));
  const span = hi - lo || 1;
  const x = (v) => L + ((v - lo) / span) * (W - L - R);
  const label = `${title}: ${items.map((i) => `${i.label} ${fmt(i.value)}`).join('; ') || 'no data'}.`;
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label });
  const maxChars = Math.floor((L - 10) / 6.6);
  items.forEach((item, i) => {
    const top = T + i * row;
    const text = item.label.length > maxChars ? `${item.label.slice(0, maxChars - 1)}…` : item.label;
    const x0 = x(Math.min(0, item.value)), x1 = x(Math.max(0, item.value));
    add(svg, 
      s('text', { x: L - 8, y: top + row / 2 + 4, 'text-anchor': 'end' }, s('title', {}, item.label), text),
      s('rect', { class: `bar${item.value < 0 ? ' neg' : ''}`, x: x0, y: top + 4, width: Math.max(1, x1 - x0), height: row - 8 }),
      s('text', { x: x1 + 5, y: top + row / 2 + 4 }, fmt(item.value)));
  });
  if (lo < 0) add(svg, s('line', { class: 'zero', x1: x(0), x2: x(0), y1: 0, y2: H }));
  return h('figure', {}, h('figcaption', {}, title), svg);
}

// ---- session, navigation, routing ----

const PAGES = [
  { path: 'overview', label: 'Overview', group: 'read', render: pageOverview },
  { path: 'models', label: 'Models', group: 'read', render: pageModels },
  { path: 'try', label: 'Try it', group: 'invoke', render: pageTry },
  { path: 'monitoring', label: 'Monitoring', group: 'read', render: pageMonitoring },
  { path: 'audit', label: 'Audit trail', group: 'audit', render: pageAudit },
  { path: 'cost', label: 'Cost', group: 'metrics', render: pageCost },
  { path: 'admin', label: 'Users & policies', group: 'iam', render: pageAdmin },
];
const landing = () => (PAGES.find((page) => may(page.group)) || PAGES[0]).path;
let notice = null;
// While a sign-out request is on its way (see `sessionEnded`).
let signingOut = false;

function parseHash() {
  const [path, query] = location.hash.replace(/^#\/?/, '').split('?');
  return { parts: path.split('/').filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(query || '') };
}
const go = (hash) => { if (location.hash === hash) route(); else location.hash = hash; };

function showChrome() {
  const nav = $('#nav'), who = $('#who');
  nav.hidden = who.hidden = !session;
  if (!session) { nav.replaceChildren(); who.replaceChildren(); return; }
  nav.replaceChildren(...PAGES.filter((page) => may(page.group)).map((page) => h('a', { href: `#/${page.path}`, 'data-page': page.path }, page.label)));
  who.replaceChildren(h('span', {}, 'Signed in as ', h('strong', {}, session.principal), ` (${session.roles.join(', ') || 'no role'})`), h('button', { type: 'button', onclick: signOut }, 'Sign out'));
}

function sessionEnded() {
  // A page's requests still in flight while the user signs out get 401 too: that is the sign-out, not an expiry.
  if (signingOut) return;
  session = null;
  notice = 'Your session has ended: sign in again.';
  showChrome();
  go('#/signin');
}

async function signOut() {
  signingOut = true;
  try { await api('POST', '/console/api/sign-out'); } catch (error) { if (error.status !== 401) { $('#main').prepend(errorBox(error)); return; } } finally { signingOut = false; }
  session = null;
  notice = 'You are signed out.';
  showChrome();
  go('#/signin');
}

let firstRoute = true, routeSeq = 0;
async function route() {
  const mine = ++routeSeq;
  const { parts, params } = parseHash();
  const main = $('#main');
  const page = h('div', { class: 'page' });
  let name = parts[0] || '';
  if (!session) name = 'signin';
  else if (name === 'signin' || name === '') { location.replace(`#/${landing()}`); return; }
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.page === (name === 'endpoints' ? 'overview' : name)) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  main.replaceChildren(page);
  const known = PAGES.find((p) => p.path === name);
  try {
    if (name === 'signin') pageSignIn(page);
    else if (name === 'endpoints' && parts[1]) await pageEndpoint(page, parts[1]);
    else if (known) await known.render(page, parts.slice(1), params);
    else add(page, h('h1', { tabindex: -1 }, 'Not found'), h('p', {}, 'No such page. ', link(landing(), 'Go to the start page')));
  } catch (error) {
    add(page, errorBox(error));
  }
  if (mine !== routeSeq) return;
  const heading = $('h1', page);
  document.title = `${heading ? heading.textContent : 'riskserve'} · riskserve console`;
  if (!firstRoute && heading) heading.focus();
  $('#live').textContent = heading ? `${heading.textContent} page` : '';
  firstRoute = false;
}

const h1 = (text, sub) => [h('h1', { tabindex: -1 }, text), sub && h('p', { class: 'sub' }, sub)];
const plural = (n, one, many = `${one}s`) => `${fmtNum(n, 0)} ${n === 1 ? one : many}`;

// ---- sign-in ----

function pageSignIn(page) {
  const status = h('div', { id: 'signin-status' }, notice && msg('ok', notice));
  notice = null;
  const signIn = (form, body) => async (event) => {
    event.preventDefault();
    const button = $('button', form);
    button.disabled = true;
    try {
      session = await api('POST', '/console/api/session', body());
      form.reset();
      showChrome();
      const wanted = parseHash().parts[0];
      go(wanted && wanted !== 'signin' ? location.hash : `#/${landing()}`);
    } catch (error) {
      status.replaceChildren(error.status === 401
        ? msg('error', h('strong', {}, 'Sign-in refused: '), `those credentials are not valid (${error.code}).`)
        : errorBox(error));
    } finally {
      button.disabled = false;
    }
  };
  const tokenForm = h('form', { class: 'stack card', 'aria-label': 'Sign in with a token' },
    h('h2', {}, 'With a bearer token'),
    field('Token', { name: 'token', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false' }, 'rsk_… as created by riskserve iam or the first start'),
    submit('Sign in with token'));
  tokenForm.addEventListener('submit', signIn(tokenForm, () => ({ token: tokenForm.elements.token.value.trim() })));
  const keyForm = h('form', { class: 'stack card', 'aria-label': 'Sign in with an access key' },
    h('h2', {}, 'With an access key'),
    field('Access key id', { name: 'access_key_id', autocomplete: 'username', required: true, spellcheck: 'false' }),
    field('Secret access key', { name: 'secret_access_key', type: 'password', autocomplete: 'current-password', required: true }),
    submit('Sign in with access key'));
  keyForm.addEventListener('submit', signIn(keyForm, () => ({ access_key_id: keyForm.elements.access_key_id.value.trim(), secret_access_key: keyForm.elements.secret_access_key.value })));
  add(page, ...h1('Sign in', 'With a riskserve bearer token, or an access key id and its secret. A session lasts up to 8 hours; you see and do what your roles allow.'), status, h('div', { class: 'grid' }, tokenForm, keyForm));
}

// ---- overview ----

async function hourStats(name) {
  const series = (metric, stat) => get(`/api/v1/endpoints/${enc(name)}/metrics${qs({ metric, stat, start: '-60m' })}`);
  const [inv, e4, e5, p99] = await Promise.all([series('invocations', 'sum'), series('errors_4xx', 'sum'), series('errors_5xx', 'sum'), series('model_latency', 'p99')]);
  const sum = (one) => one.datapoints.reduce((total, d) => total + d.value, 0);
  return { inv: sum(inv), e4: sum(e4), e5: sum(e5), p99: p99.datapoints.length ? Math.max(...p99.datapoints.map((d) => d.value)) : null };
}

async function pageOverview(page) {
  add(page, ...h1('Overview', 'Every endpoint, its variants, and its last hour of traffic.'));
  panel(page, 'Endpoints', async (body) => {
    const endpoints = await listAll('/api/v1/endpoints');
    const inService = endpoints.filter((e) => e.status === 'InService').length;
    const instances = endpoints.reduce((total, e) => total + e.variants.reduce((n, v) => n + v.instances, 0), 0);
    add(body, h('dl', { class: 'big' },
      [['Endpoints', endpoints.length], ['In service', inService], ['Not in service', endpoints.length - inService], ['Instances', instances]].map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', {}, fmtNum(v))))));
    if (!endpoints.length) { add(body, h('p', {}, 'No endpoint yet. Deploy one with the CLI or the API (docs/server.md).')); return; }
    const cells = new Map();
    const rows = endpoints.map((e) => {
      const metric = [0, 1, 2].map(() => h('span', { class: 'hint' }, '…'));
      cells.set(e.name, metric);
      return [link(`endpoints/${enc(e.name)}`, e.name), badge(e.status),
        h('span', {}, e.variants.map((v, i) => [i ? ', ' : '', `${v.name} (${v.model}, weight ${fmtNum(v.weight)})`])),
        N(fmtNum(e.variants.reduce((n, v) => n + v.instances, 0))), N(metric[0]), N(metric[1]), N(metric[2])];
    });
    const wrap = table(plural(endpoints.length, 'endpoint'),
      ['Endpoint', 'Status', 'Variants', N('Instances'), N('Invocations (1 h)'), N('Errors 4xx / 5xx (1 h)'), N('p99 (1 h)')], rows, null, true);
    wrap.id = 'endpoints-table';
    add(body, hint('Invocations and errors: the last 60 minutes. p99: model latency, the highest per-minute 99th percentile of those minutes.'), wrap);
    if (!may('metrics')) { for (const m of cells.values()) m.forEach((c) => { c.textContent = 'n/a'; }); return; }
    // Metrics load for the rows on screen, a few at a time.
    const queue = [];
    let running = 0;
    const pump = () => {
      while (running < 2 && queue.length && wrap.isConnected) {
        const name = queue.shift();
        running++;
        hourStats(name).then((stats) => {
          const [inv, err, p99] = cells.get(name);
          inv.textContent = fmtNum(stats.inv, 0);
          err.textContent = `${fmtNum(stats.e4, 0)} / ${fmtNum(stats.e5, 0)}`;
          p99.textContent = fmtMs(stats.p99);
          for (const c of [inv, err, p99]) c.removeAttribute('class');
        }, (error) => { for (const c of cells.get(name)) c.textContent = error.status === 403 ? 'n/a' : 'error'; })
          .finally(() => { running--; pump(); });
      }
    };
    const observer = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        if (!entry.isIntersecting) continue;
        observer.unobserve(entry.target);
        queue.push(entry.target.dataset.endpoint);
      }
      pump();
    }, { rootMargin: '200px' });
    [...wrap.querySelectorAll('tbody tr')].forEach((tr, i) => { tr.dataset.endpoint = endpoints[i].name; observer.observe(tr); });
  });
}

// ---- one endpoint ----

const RANGES = { '1h': [3600, 60], '6h': [6 * 3600, 300], '24h': [24 * 3600, 900] };

async function loadCharts(box, name, endpoint, range) {
  const [seconds, period] = RANGES[range];
  const t1 = Date.now(), t0 = Math.floor((t1 / 1000 - seconds) / period) * period * 1000;
  const series = (metric, stat) => get(`/api/v1/endpoints/${enc(name)}/metrics${qs({ metric, stat, period, start: `-${seconds / 60}m` })}`)
    .then((one) => one.datapoints.map((d) => [Date.parse(d.timestamp), d.value]));
  const [inv, m50, m99, o50, o99, e4, e5, inst] = await Promise.all([
    series('invocations', 'sum'), series('model_latency', 'p50'), series('model_latency', 'p99'), series('overhead_latency', 'p50'), series('overhead_latency', 'p99'),
    series('errors_4xx', 'sum'), series('errors_5xx', 'sum'), series('instances')]);
  const markers = (endpoint.scaling_activities || []).map((a) => ({ t: Date.parse(a.time), text: `${fmtTime(a.time)} UTC: ${a.variant} ${a.from} → ${a.to} instances (${a.cause})` }));
  const per = period === 60 ? 'minute' : `${period / 60} minutes`;
  box.replaceChildren(h('div', { class: 'charts' },
    lineChart({ title: `Invocations per ${per}`, t0, t1, period, series: [{ name: 'invocations', cls: 's0', points: inv }], markers }),
    lineChart({ title: 'Latency, model vs overhead (p50, p99)', t0, t1, period, fmt: fmtMs, series: [
      { name: 'model p99', cls: 's0', points: m99 }, { name: 'model p50', cls: 's0', dash: true, points: m50 },
      { name: 'overhead p99', cls: 's1', points: o99 }, { name: 'overhead p50', cls: 's1', dash: true, points: o50 }] }),
    lineChart({ title: `Errors per ${per}`, t0, t1, period, series: [{ name: '4xx', cls: 's1', points: e4 }, { name: '5xx', cls: 's3', points: e5 }] }),
    lineChart({ title: 'Instances', t0, t1, period, series: [{ name: 'instances', cls: 's2', points: inst }], markers })));
}

async function pageEndpoint(page, name) {
  add(page, ...h1(`Endpoint ${name}`), h('p', { class: 'actions' }, link('overview', '← All endpoints'), may('invoke') && link(`try/${enc(name)}`, 'Try it'), may('read') && link(`monitoring/${enc(name)}`, 'Monitoring reports')));
  const endpoint = await get(`/api/v1/endpoints/${enc(name)}`);
  const total = endpoint.variants.reduce((sum, v) => sum + v.weight, 0) || 1;
  add(page, h('div', { class: 'grid' },
    h('section', { class: 'card', 'aria-label': 'Status' }, h('h2', {}, 'Status'), facts([
      ['Status', badge(endpoint.status)], ['Config', endpoint.config], endpoint.failure_reason && ['Failure', endpoint.failure_reason],
      ['Tags', tags(endpoint.tags)], ['Created', `${fmtTime(endpoint.created_at)} UTC`], ['Updated', `${fmtTime(endpoint.updated_at)} UTC`]])),
    h('section', { class: 'card', 'aria-label': 'Variants' }, h('h2', {}, 'Variants'),
      table('Serving variants, their weights and instances', ['Variant', 'Model', N('Weight'), N('Traffic'), N('Instances')],
        endpoint.variants.map((v) => [v.name, link(`models?name=${enc(v.model)}`, v.model), fmtNum(v.weight, 4), fmtPct(v.weight / total), String(v.instances)])))));
  const chartBox = h('div', {}, hint('Loading…'));
  const rangeField = field('Time range', { name: 'range', options: [['1h', 'Last hour'], ['6h', 'Last 6 hours'], ['24h', 'Last 24 hours']], value: '1h' });
  const draw = () => loadCharts(chartBox, name, endpoint, $('select', rangeField).value).catch((error) => chartBox.replaceChildren(errorBox(error)));
  $('select', rangeField).addEventListener('change', draw);
  add(page, h('section', { 'aria-label': 'Charts' }, h('h2', {}, 'Traffic, latency, errors and instances'), h('div', { class: 'fields' }, rangeField), chartBox));
  draw();
  if (may('write')) add(page, changeForms(name, endpoint));
}

const again = () => btn('Refresh the page', () => route());

function changeForms(name, endpoint) {
  const out = h('div', { 'aria-live': 'polite' });
  const variantForm = h('form', { class: 'stack card', 'aria-label': 'Change a variant' }, h('h3', {}, 'Weight and instances'),
    h('div', { class: 'fields' },
      field('Variant', { name: 'variant', options: endpoint.variants.map((v) => v.name) }),
      field('Weight', { name: 'weight', type: 'number', min: 0, step: 'any', value: endpoint.variants[0]?.weight }),
      field('Instances', { name: 'instances', type: 'number', min: 0, step: 1, value: endpoint.variants[0]?.instances })),
    submit('Apply change'));
  const el = variantForm.elements;
  el.variant.addEventListener('change', () => {
    const v = endpoint.variants.find((one) => one.name === el.variant.value);
    el.weight.value = v.weight; el.instances.value = v.instances;
  });
  variantForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const answer = await api('PATCH', `/api/v1/endpoints/${enc(name)}/variants/${enc(el.variant.value)}`, { weight: Number(el.weight.value), instances: Number(el.instances.value) });
      const v = answer.variants.find((one) => one.name === el.variant.value);
      out.replaceChildren(msg('ok', `Variant ${v.name}: weight ${fmtNum(v.weight, 4)}, ${v.instances} instances. `, again()));
    } catch (error) { out.replaceChildren(errorBox(error)); }
  });
  const configForm = h('form', { class: 'stack card', 'aria-label': 'Update to another config' }, h('h3', {}, 'Update to another config'),
    hint('Blue/green: the new variants start, traffic switches once they are ready, a failure rolls back.'),
    h('div', { class: 'fields' }, field('Config', { name: 'config', options: [['', 'Loading…']] })),
    submit('Update endpoint'));
  listAll('/api/v1/endpoint-configs').then((configs) => {
    const select = configForm.elements.config;
    select.replaceChildren(...configs.filter((c) => c.name !== endpoint.config).map((c) => h('option', { value: c.name }, `${c.name} (${c.variants.map((v) => `${v.name}: ${v.model} ×${v.instances}`).join(', ')})`)));
    if (!select.options.length) add(select, h('option', { value: '' }, 'No other config'));
  }, (error) => configForm.replaceChildren(errorBox(error)));
  configForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const config = configForm.elements.config.value;
    if (!config) return;
    try {
      const answer = await api('PUT', `/api/v1/endpoints/${enc(name)}`, { config });
      out.replaceChildren(msg('ok', `Endpoint ${name} is ${answer.status}, moving to config ${config}. `, again()));
    } catch (error) { out.replaceChildren(errorBox(error)); }
  });
  return h('section', { 'aria-label': 'Change the endpoint', id: 'change' }, h('h2', {}, 'Change the endpoint'), out, h('div', { class: 'grid' }, variantForm, configForm));
}

// ---- try it ----

/** One CSV line's fields (quotes as RFC 4180). */
function csvFields(line) {
  const out = [];
  let cur = '', quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') { cur += '"'; i++; } else if (c === '"') quoted = false; else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { out.push(cur); cur = ''; } else cur += c;
  }
  out.push(cur);
  return out;
}

async function pageTry(page, parts) {
  const name = parts[0];
  add(page, ...h1(name ? `Try endpoint ${name}` : 'Try it', 'Score one row and read its reasons.'));
  const chooser = h('form', { class: 'actions', 'aria-label': 'Choose an endpoint' });
  const pick = (value) => go(`#/try/${enc(value)}`);
  chooser.addEventListener('submit', (event) => { event.preventDefault(); const v = chooser.elements.endpoint.value.trim(); if (v) pick(v); });
  let names = null;
  if (may('read')) { try { names = (await listAll('/api/v1/endpoints')).map((e) => e.name); } catch { names = null; } }
  add(chooser, names ? field('Endpoint', { name: 'endpoint', options: [['', '— choose —'], ...names], value: name || '' }) : field('Endpoint name', { name: 'endpoint', value: name || '', required: true }), h('button', { type: 'submit', class: 'secondary' }, 'Open'));
  add(page, chooser);
  if (!name) return;
  let inputs = null, variants = [];
  try {
    const endpoint = await get(`/api/v1/endpoints/${enc(name)}`);
    variants = endpoint.variants.map((v) => v.name);
    inputs = (await get(`/api/v1/models/${enc(endpoint.variants[0].model)}`)).inputs;
  } catch (error) {
    if (error.status !== 403) throw error;
  }
  const form = h('form', { class: 'stack', 'aria-label': 'Row to score' });
  const result = h('div', { 'aria-live': 'polite', id: 'try-result' });
  if (inputs) {
    const paste = field('Fill from a CSV row', { name: 'csv', spellcheck: 'false' }, `Values in the model's input order (${inputs.length} fields), as in a CSV file without a header.`);
    const fill = btn('Fill the fields', () => { const values = csvFields(form.elements.csv.value); inputs.forEach((input, i) => { form.elements[`in:${input}`].value = values[i] ?? ''; }); });
    paste.className = 'wide';
    add(form, h('fieldset', {}, h('legend', {}, 'Quick fill'), h('div', { class: 'fields' }, paste, h('div', {}, fill))),
      h('fieldset', {}, h('legend', {}, `Input fields (${inputs.length}); an empty field is a missing value`), h('div', { class: 'fields' }, inputs.map((input) => field(input, { name: `in:${input}`, spellcheck: 'false' })))));
  } else {
    add(form, msg('denied', 'Your role may not read this endpoint\'s model, so its fields cannot be listed: write the row as a JSON object.'),
      field('Row (JSON object of field: value)', { tag: 'textarea', name: 'json', spellcheck: 'false', required: true }));
  }
  if (variants.length > 1) add(form, h('div', { class: 'fields' }, field('Variant', { name: 'variant', options: [['', 'By weight'], ...variants] })));
  add(form, submit('Score this row'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    let row = {};
    if (inputs) {
      for (const input of inputs) {
        const text = form.elements[`in:${input}`].value.trim();
        if (text !== '') row[input] = /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(text) ? Number(text) : text;
      }
    } else {
      try { row = JSON.parse(form.elements.json.value); } catch (error) { result.replaceChildren(msg('error', `The row is not JSON: ${error.message}`)); return; }
    }
    const headers = form.elements.variant && form.elements.variant.value ? { 'X-Amzn-SageMaker-Target-Variant': form.elements.variant.value } : {};
    result.replaceChildren(hint('Scoring…'));
    try {
      const answer = await api('POST', `/endpoints/${enc(name)}/invocations?explain=true`, { instances: [row] }, headers);
      result.replaceChildren(showPrediction(answer.predictions[0]));
    } catch (error) { result.replaceChildren(errorBox(error)); }
  });
  add(page, form, h('section', { 'aria-label': 'Result' }, h('h2', {}, 'Result'), result));
}

function showPrediction(p) {
  const tiles = [['Probability of default', p.probability != null ? fmtPct(p.probability) : null], ['Score', p.score != null ? fmtNum(p.score, 1) : null], ['Grade', p.grade], ['Decision', p.decision]]
    .filter(([, v]) => v != null);
  const reasons = p.reasons || [];
  return h('div', { id: 'prediction' },
    tiles.length ? h('dl', { class: 'big' }, tiles.map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', { 'data-name': k.toLowerCase() }, v)))) : h('p', {}, `Values: ${(p.values || []).join(', ')}`),
    reasons.length ? [
      h('h3', {}, 'Reason codes, most adverse first'),
      barChart({ title: 'Contribution of each reason (margin space; positive raises the risk)', items: reasons.map((r) => ({ label: `${r.code} ${r.text}`, value: r.contribution })), fmt: (v) => fmtNum(v, 3) }),
      table('Reasons', ['Code', 'Feature', 'Reason', N('Contribution')], reasons.map((r) => [h('code', {}, r.code), r.feature, r.text, fmtNum(r.contribution, 4)])),
    ] : hint('No reasons: the model gives none (reason codes come from a pipeline).'),
    p.contributions && h('details', {}, h('summary', {}, 'Every contribution'),
      table('Contributions by feature', ['Feature', N('Contribution')], Object.entries(p.contributions).sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, fmtNum(v, 4)]))));
}

// ---- models ----

/** A pipeline model's framework and steps, from its pipeline file. */
function pipelineFacts(name) {
  const box = h('div', {}, hint('Loading…'));
  get(`/api/v1/models/${enc(name)}/pipeline`).then((p) => box.replaceChildren(facts([
    ['Framework', [].concat(p.model || p.models || []).map((m) => `${m.format || '?'} (${m.artifact || ''})`).join(', ')],
    ['Steps', h('ol', {}, (p.steps || []).map((s) => h('li', {}, h('code', {}, s.step), ` ${s.output || s.input || ''}`)))],
    ['Calibration', (p.calibration || []).map((c) => c.method).join(' → ') || 'none'],
    ['Grades', p.master_scale ? p.master_scale.bands.map((b) => b.grade).join(', ') : 'none'],
    ['Decision', p.decision ? `approve below ${p.decision.approve}, decline from ${p.decision.decline}, ${(p.decision.knockouts || []).length} knock-out rules` : 'none']])),
  (error) => box.replaceChildren(errorBox(error)));
  return box;
}

async function pageModels(page, parts, params) {
  const only = params.get('name');
  add(page, ...h1('Models', only ? `Model ${only}` : 'Format, artifacts, pipeline, inputs and tags.'));
  panel(page, only ? 'Model' : 'All models', async (body) => {
    const models = only ? [await get(`/api/v1/models/${enc(only)}`)] : await listAll('/api/v1/models');
    if (!models.length) { add(body, h('p', {}, 'No model yet.')); return; }
    if (only) add(body, h('p', {}, link('models', 'All models')));
    add(body, h('div', { class: 'grid' }, models.map((m) => h('article', { class: 'card', 'aria-label': `Model ${m.name}` },
      h('h3', {}, m.name), m.description && h('p', {}, m.description),
      facts([['Format', m.format], ['Pipeline', m.pipeline ? h('code', {}, m.pipeline) : 'none (a bare model)'],
        ['Artifacts', m.artifacts.map((a) => h('div', {}, `${a.name} (${fmtNum(a.size / 1024, 1)} KiB) `, h('code', {}, a.digest)))],
        ['Outputs', m.outputs.join(', ')], ['Tags', m.tags && Object.keys(m.tags).length ? tags(m.tags) : 'none'], ['Created', `${fmtTime(m.created_at)} UTC`]]),
      m.pipeline && h('details', { class: 'pipeline' }, h('summary', {}, 'Pipeline: framework and steps'), pipelineFacts(m.name)),
      h('details', {}, h('summary', {}, `${m.inputs.length} input fields`), h('ol', {}, m.inputs.map((i) => h('li', {}, h('code', {}, i)))))))));
  });
}

// ---- audit trail ----

const ACTIONS = ['sagemaker:InvokeEndpoint', 'sagemaker:CreateEndpoint', 'sagemaker:UpdateEndpoint', 'sagemaker:UpdateEndpointWeightsAndCapacities', 'sagemaker:DeleteEndpoint',
  'sagemaker:CreateModel', 'sagemaker:CreateEndpointConfig', 'iam:CreateUser', 'iam:CreateToken', 'iam:PutPolicy', 'auth:Authenticate', 'console:SignIn'];
const FILTERS = ['principal', 'action', 'resource', 'outcome', 'since', 'until'];

async function pageAudit(page, parts, params) {
  add(page, ...h1('Audit trail', 'Every request and what came of it, hash-chained and signed. Oldest first; times in UTC.'));
  const listId = newId('actions');
  const form = h('form', { class: 'stack card', 'aria-label': 'Filter the audit trail' },
    h('div', { class: 'fields' },
      field('Principal', { name: 'principal', value: params.get('principal') || '', spellcheck: 'false' }),
      field('Action', { name: 'action', value: params.get('action') || '', list: listId, spellcheck: 'false' }),
      h('datalist', { id: listId }, ACTIONS.map((a) => h('option', { value: a }))),
      field('Resource', { name: 'resource', value: params.get('resource') || '', spellcheck: 'false' }, 'e.g. Endpoint/credit'),
      field('Outcome', { name: 'outcome', options: [['', 'Any'], 'allowed', 'denied', 'failed', 'unauthenticated'], value: params.get('outcome') || '' }),
      field('Since (UTC)', { name: 'since', type: 'datetime-local', step: 1, value: (params.get('since') || '').slice(0, 19) }),
      field('Until (UTC)', { name: 'until', type: 'datetime-local', step: 1, value: (params.get('until') || '').slice(0, 19) }),
      field('Rows per page', { name: 'max_results', options: ['25', '50', '100', '500'], value: params.get('max_results') || '50' })),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Apply filters'), btn('Clear', () => go('#/audit'))));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const chosen = {};
    for (const key of [...FILTERS, 'max_results']) {
      let value = form.elements[key].value.trim();
      if (value && (key === 'since' || key === 'until')) value = `${value.length === 16 ? `${value}:00` : value}Z`;
      chosen[key] = value;
    }
    go(`#/audit${qs(chosen)}`);
  });
  const verifyOut = h('div', { 'aria-live': 'polite' });
  const verify = btn('Verify the trail', async () => {
    verify.disabled = true;
    verifyOut.replaceChildren(hint('Verifying the whole trail…'));
    try {
      const r = await get('/api/v1/audit/verify');
      verifyOut.replaceChildren(r.ok
        ? msg('ok', h('strong', {}, 'The trail verifies. '), `${fmtNum(r.events, 0)} events, ${r.seals} seals; sealed up to event ${r.last_sealed_seq}.`)
        : msg('error', h('strong', {}, 'The trail is broken. '), `First problem: ${r.problem}. `, r.broken_seq != null ? [`First broken event: #${r.broken_seq}. `, link(`audit${qs({ next_token: r.broken_seq - 1, max_results: 25 })}`, `Show event #${r.broken_seq}`)] : null,
          ` (${fmtNum(r.events, 0)} events, ${r.seals} seals, sealed up to event ${r.last_sealed_seq}.)`));
    } catch (error) { verifyOut.replaceChildren(errorBox(error)); }
    verify.disabled = false;
  });
  add(page, form, h('section', { 'aria-label': 'Verification' }, h('h2', {}, 'Integrity'), h('p', {}, verify), verifyOut));
  panel(page, 'Events', async (body) => {
    const query = {};
    for (const key of [...FILTERS, 'max_results', 'next_token']) query[key] = params.get(key);
    query.max_results = query.max_results || '50';
    const answer = await get(`/api/v1/audit-events${qs(query)}`);
    const active = FILTERS.filter((k) => params.get(k)).map((k) => `${k} = ${params.get(k)}`);
    add(body, table(`${plural(answer.items.length, 'event')}${active.length ? ` where ${active.join(', ')}` : ''}${query.next_token ? ` after event #${query.next_token}` : ''}`,
      [N('#'), 'Time (UTC)', 'Principal', 'Action', 'Resource', 'Outcome', N('Status'), 'Error'],
      answer.items.map((e) => [String(e.seq), fmtTime(e.time), e.principal, e.action, e.resource, badge(e.outcome), String(e.status), e.error_code || '']), null, true));
    const pager = h('div', { class: 'pager' });
    if (query.next_token) add(pager, btn('Previous page', () => history.back()));
    if (answer.next_token) add(pager, h('button', { type: 'button', onclick: () => { params.set('next_token', answer.next_token); go(`#/audit?${params}`); } }, 'Next page'));
    else add(pager, h('span', { class: 'hint' }, 'The last page.'));
    add(body, pager);
  });
}

// ---- cost ----

async function pageCost(page, parts, params) {
  add(page, ...h1('Cost and utilisation', 'Instance time and invocations at the configured prices, grouped as you choose.'));
  const by = params.get('by') || 'endpoint';
  const from = params.get('from') || '-24h', to = params.get('to') || '';
  const form = h('form', { class: 'stack card', 'aria-label': 'Choose the report' },
    h('div', { class: 'fields' },
      field('Group by', { name: 'by', options: [['endpoint', 'Endpoint'], ['principal', 'Principal'], ['tag', 'Tag'], ['variant', 'Variant']], value: by }),
      field('From', { name: 'from', value: from, spellcheck: 'false' }, 'A date (2026-01-31), an RFC 3339 time, or a duration before "To": -24h, -7d'),
      field('To', { name: 'to', value: to, spellcheck: 'false', placeholder: 'now' }, 'Exclusive; empty for now')),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Show'),
      ['-24h', '-7d', '-30d'].map((range) => btn(`Last ${range.slice(1)}`, () => go(`#/cost${qs({ by: form.elements.by.value, from: range })}`)))));
  form.addEventListener('submit', (event) => { event.preventDefault(); go(`#/cost${qs({ by: form.elements.by.value, from: form.elements.from.value.trim(), to: form.elements.to.value.trim() })}`); });
  add(page, form);
  panel(page, `By ${by}`, async (body) => {
    const report = await get(`/api/v1/cost${qs({ by, from, to })}`);
    const c = report.prices.currency;
    add(body, h('p', {}, `${fmtTime(report.from)} to ${fmtTime(report.to)} UTC, at ${fmtMoney(report.prices.instance_hour, c)} an instance-hour and ${fmtMoney(report.prices.million_invocations, c)} a million invocations.`));
    const lines = [...report.lines].sort((a, b) => b.cost - a.cost);
    if (lines.length) {
      add(body, h('div', { class: 'charts' },
        barChart({ title: `Cost by ${by} (${c})`, items: lines.map((l) => ({ label: l.key, value: l.cost })), fmt: (v) => fmtMoney(v, c), grid: true }),
        barChart({ title: `Instance-hours by ${by}`, items: lines.map((l) => ({ label: l.key, value: l.instance_hours })), fmt: (v) => fmtNum(v, 3), grid: true })));
    } else add(body, h('p', {}, 'Nothing was used in this range.'));
    const row = (l) => [l.key, N(fmtNum(l.instance_hours, 4)), N(fmtNum(l.invocations, 0)), N(fmtMoney(l.instance_cost, c)), N(fmtMoney(l.invocation_cost, c)), N(fmtMoney(l.cost, c))];
    add(body, table(`Cost and utilisation by ${by}`, [by[0].toUpperCase() + by.slice(1), N('Instance-hours'), N('Invocations'), N('Instance cost'), N('Invocation cost'), N('Cost')],
      lines.map(row), row({ ...report.total, key: 'Total' }), true));
    if (by === 'tag') add(body, hint('An endpoint with several tags counts under each; the total counts it once.'));
  });
}

// ---- users, keys, policies ----

async function pageAdmin(page) {
  add(page, ...h1('Users and policies', 'Who may sign in, with which roles and credentials; the Cedar policies.'));
  const out = h('div', { 'aria-live': 'polite' });
  const secretShown = (what, fields) => out.replaceChildren(msg('ok', h('strong', {}, `${what}. `), 'Copy it now: it is shown once.', fields.map(([k, v]) => h('div', {}, `${k}: `, h('span', { class: 'secret' }, v)))));
  const act = (fn) => async () => { try { await fn(); } catch (error) { out.replaceChildren(errorBox(error)); } };
  panel(page, 'Users', async (body) => {
    const users = (await get('/api/v1/users')).items;
    add(body, out, table(plural(users.length, 'user'), ['User', 'Roles', 'Status', 'Access keys', 'Tokens', 'Created (UTC)', 'Actions'], users.map((u, _, __, path = `/api/v1/users/${enc(u.name)}`) => [
      h('strong', {}, u.name), u.roles.join(', ') || '—', badge(u.disabled ? 'disabled' : 'active'),
      u.access_keys.map((k) => h('div', {}, h('code', {}, k.access_key_id), k.active ? '' : ' (inactive)')),
      u.tokens.map((t) => h('div', {}, h('code', {}, t.id), t.active ? '' : ' (inactive)')),
      fmtTime(u.created_at),
      h('div', { class: 'actions' },
        btn('New token', act(async () => { const t = await api('POST', `${path}/tokens`); secretShown(`New token ${t.id} for ${u.name}`, [['Token', t.token]]); }), { 'aria-label': `New token for ${u.name}` }),
        btn('New access key', act(async () => { const k = await api('POST', `${path}/access-keys`); secretShown(`New access key for ${u.name}`, [['Access key id', k.access_key_id], ['Secret access key', k.secret_access_key]]); }), { 'aria-label': `New access key for ${u.name}` }),
        btn(u.disabled ? 'Enable' : 'Disable', act(async () => { await api('PATCH', path, { disabled: !u.disabled }); route(); }), { 'aria-label': `${u.disabled ? 'Enable' : 'Disable'} ${u.name}` })),
    ]), null, true));
    const create = h('form', { class: 'stack card', 'aria-label': 'Create a user' }, h('h3', {}, 'Create a user'),
      h('div', { class: 'fields' }, field('Name', { name: 'name', required: true, spellcheck: 'false' }), field('Roles', { name: 'roles', spellcheck: 'false' }, 'Comma-separated: admin, deployer, invoker, auditor, or your own')),
      submit('Create user'));
    create.addEventListener('submit', async (event) => {
      event.preventDefault();
      const roles = create.elements.roles.value.split(',').map((r) => r.trim()).filter(Boolean);
      try {
        const user = await api('POST', '/api/v1/users', { name: create.elements.name.value.trim(), roles });
        create.reset();
        out.replaceChildren(msg('ok', `User ${user.name} created with roles ${user.roles.join(', ') || 'none'}. Give it a token or an access key below, then refresh.`));
      } catch (error) { out.replaceChildren(errorBox(error)); }
    });
    add(body, create);
  });
  panel(page, 'Policies', async (body) => {
    const policies = (await get('/api/v1/policies')).items;
    add(body, table(plural(policies.length, 'policy', 'policies'), ['Policy', 'Description', 'Kind'], policies.map((p) => [h('code', {}, p.name), p.description || '—', p.builtin ? 'built-in (read-only)' : 'custom'])),
      policies.map((p) => h('details', {}, h('summary', {}, `Cedar text of ${p.name}`), h('pre', { class: 'policy', tabindex: 0 }, p.text))));
  });
}

// ---- monitoring ----

async function pageMonitoring(page, parts) {
  const name = parts[0];
  add(page, ...h1(name ? `Monitoring of ${name}` : 'Monitoring', 'Drift, outcome and fairness reports.'));
  const chooser = h('form', { class: 'actions', 'aria-label': 'Choose an endpoint' });
  chooser.addEventListener('submit', (event) => { event.preventDefault(); const v = chooser.elements.endpoint.value; if (v) go(`#/monitoring/${enc(v)}`); });
  const endpoints = await listAll('/api/v1/endpoints');
  add(chooser, field('Endpoint', { name: 'endpoint', options: [['', '— choose —'], ...endpoints.map((e) => e.name)], value: name || '' }), h('button', { type: 'submit', class: 'secondary' }, 'Show reports'));
  add(page, chooser);
  if (!name) return;
  const base = `/api/v1/endpoints/${enc(name)}/monitoring/reports`;
  panel(page, 'Latest report', async (body) => {
    let r;
    try { r = await get(`${base}/latest`); } catch (error) {
      if (error.status === 404) { add(body, h('p', {}, 'No report yet: see riskserve monitor (docs/monitoring.md).')); return; }
      throw error;
    }
    add(body, facts([['Report', h('code', {}, r.id)], ['Status', badge(r.status)], ['Trigger', r.trigger], ['Window', `${fmtTime(r.window.from)} to ${fmtTime(r.window.to)} UTC`],
      ['Rows', `${fmtNum(r.rows, 0)} rows in ${fmtNum(r.records, 0)} records from ${fmtNum(r.files, 0)} files`], r.error && ['Error', r.error]]));
    add(body, r.breaches.length
      ? table(`${r.breaches.length} breaches`, ['Metric', 'Subject', N('Value'), N('Threshold'), 'Severity'], r.breaches.map((b) => [b.metric, b.subject, fmtNum(b.value, 4), fmtNum(b.threshold, 4), badge(b.severity)]))
      : msg('ok', 'No breach in this report.'));
    if (r.drift && !r.drift.no_data) {
      const features = [...r.drift.features].sort((a, b) => (b.stability.index ?? -1) - (a.stability.index ?? -1));
      add(body, h('h3', {}, 'Drift'), h('p', {}, `Score PSI ${fmtNum(r.drift.score.index, 4)} (${r.drift.score.band || '—'}).`),
        table('Drift by feature', ['Feature', N('CSI'), 'Band', N('Missing')], features.map((f) => [f.name, fmtNum(f.stability.index, 4), f.stability.band || '—', fmtPct(f.missing_rate)])));
    }
    const o = r.outcomes;
    if (o && o.rows) {
      add(body, h('h3', {}, 'Outcomes'), facts([['Labelled rows', `${fmtNum(o.rows, 0)} (${fmtNum(o.bad, 0)} bad)`], ['AUC', fmtNum(o.auc, 4)], ['Gini', fmtNum(o.gini, 4)], ['KS', fmtNum(o.ks, 4)], ['Brier', fmtNum(o.brier, 4)],
        o.discrimination_unavailable && ['Note', o.discrimination_unavailable]]));
    }
  });
  panel(page, 'Reports', async (body) => {
    const list = await get(`${base}${qs({ limit: 50 })}`);
    add(body, list.items.length
      ? table(`${plural(list.items.length, 'report')}, newest first`, ['Report', 'Started (UTC)', 'Finished (UTC)', 'Status', N('Breaches')], list.items.map((r) => [h('code', {}, r.id), fmtTime(r.started_at), fmtTime(r.finished_at), badge(r.status), String(r.breaches)]), null, true)
      : h('p', {}, 'No report yet.'));
  });
}

// ---- start ----

async function start() {
  try { session = await get('/console/api/session'); } catch { session = null; }
  showChrome();
  window.addEventListener('hashchange', route);
  await route();
}
start();
