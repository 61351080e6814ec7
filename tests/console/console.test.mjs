// The web console in a real browser: Debian's Chromium (headless, a fresh profile) driven by Playwright
// (playwright-core, over the DevTools protocol), against the riskserve binary ($RISKSERVE_BIN) on a fresh data
// directory. Sign-in, deployment seen on the overview, charts, "try it" with its reasons, the audit trail's filters,
// paging and verification, the built-in roles, CSRF refusal, sign-out; a screenshot of every page at 1280 and 390 px
// and an axe-core check of each (no serious or critical violation); the budgets (page weight, time to first render
// of the overview with 100 endpoints) printed as a JSON line and written to $CONSOLE_ARTIFACTS/budgets.json.
//
// Run: cd tests/console && npm ci && RISKSERVE_BIN=... node --test --test-concurrency=1 console.test.mjs
// Missing Chromium, node modules or binary fail the run: nothing here skips.

import { describe, it, before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const BIN = process.env.RISKSERVE_BIN;
const ARTIFACTS = path.resolve(repo, process.env.CONSOLE_ARTIFACTS || 'target/console-artifacts');
const AXE = path.join(here, 'node_modules/axe-core/axe.min.js');
const EXAMPLE = path.join(repo, 'examples/german-credit/xgboost');
const CONSOLE_FILES = path.join(repo, 'crates/riskserve-server/console');
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
const WIDTHS = [[1280, 900], [390, 844]];
/** Budgets the test enforces (docs/console.md). */
// The weight is checked here; the first render is measured and reported (budgets.json), never asserted: timings
// on a shared machine are for benchmarks, not tests. Its target is a median of at most 3 s.
const BUDGET = { console_bytes: 60 * 1024, first_render_ms: 3000 };

let chromium = null;
let loadError = null;
try {
  ({ chromium } = await import('playwright-core'));
} catch (error) {
  loadError = error;
}

const token = () => `rsk_${randomBytes(32).toString('base64url')}`;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const children = [];
const scratch = [];

/** Waits for a line matching `pattern` on a child's stream; the match, or a rejection with what it printed. */
function waitForLine(child, stream, pattern, what, timeoutMs = 60000) {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`${what}: no line matching ${pattern} within ${timeoutMs} ms; it printed:\n${text}`)), timeoutMs);
    child[stream].on('data', (chunk) => {
      text += chunk;
      const found = text.match(pattern);
      if (found) { clearTimeout(timer); resolve({ found, text }); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`${what} exited (${code}) before printing ${pattern}:\n${text}`)); });
  });
}

/** A riskserve server on a fresh data directory; its address, admin token and the access key it printed. */
async function startServer() {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'riskserve-console-data-'));
  scratch.push(dataDir);
  const adminToken = token();
  const env = { ...process.env, RISKSERVE_ADMIN_TOKEN: adminToken };
  for (const name of ['RISKSERVE_ADMIN_ACCESS_KEY_ID', 'RISKSERVE_ADMIN_SECRET_ACCESS_KEY', 'RISKSERVE_LISTEN', 'RISKSERVE_DATA_DIR', 'RISKSERVE_STORE', 'RISKSERVE_ARTIFACTS']) delete env[name];
  const child = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  child.stdout.resume();
  // The whole line: a chunk may end inside the address.
  const { found, text } = await waitForLine(child, 'stderr', /riskserve listening on (http:\/\/\S+)\r?\n/, 'riskserve serve');
  assert.match(found[1], /^http:\/\/127\.0\.0\.1:\d+$/, 'the server listens on the loopback address asked for');
  const accessKeyId = text.match(/access key id:\s+(\S+)/)?.[1];
  const secret = text.match(/secret access key:\s+(\S+)/)?.[1];
  return { base: found[1], adminToken, accessKeyId, secret, child };
}

async function call(server, method, route, body, { tokenOf = server.adminToken, type } = {}) {
  const headers = { Authorization: `Bearer ${tokenOf}` };
  let payload = body;
  if (body !== undefined && !Buffer.isBuffer(body) && typeof body !== 'string') { payload = JSON.stringify(body); headers['Content-Type'] = 'application/json'; }
  if (type) headers['Content-Type'] = type;
  const response = await fetch(server.base + route, { method, headers, body: payload });
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = text; }
  return { status: response.status, json, headers: response.headers };
}
async function must(server, method, route, body, options) {
  const answer = await call(server, method, route, body, options);
  assert.ok(answer.status < 300, `${method} ${route} → ${answer.status} ${JSON.stringify(answer.json)}`);
  return answer.json;
}
const errorCode = (json) => json?.error?.code ?? json?.code;

/** Uploads the German Credit XGBoost pipeline and creates the model `name`. */
async function createModel(server, name) {
  const model = await must(server, 'PUT', '/api/v1/artifacts', readFileSync(path.join(EXAMPLE, 'model.json')), { type: 'application/octet-stream' });
  const pipeline = await must(server, 'PUT', '/api/v1/artifacts', readFileSync(path.join(EXAMPLE, 'pipeline.json')), { type: 'application/octet-stream' });
  return must(server, 'POST', '/api/v1/models', { name, artifacts: [{ name: 'model.json', digest: model.digest }], pipeline: pipeline.digest, tags: { team: 'cards' }, description: 'German Credit, XGBoost with calibration, scaling and reason codes' });
}
async function waitInService(server, names, timeoutMs = 120000) {
  const deadline = Date.now() + timeoutMs;
  for (const name of names) {
    for (;;) {
      const endpoint = await must(server, 'GET', `/api/v1/endpoints/${name}`);
      if (endpoint.status === 'InService') break;
      assert.notEqual(endpoint.status, 'Failed', `${name} failed: ${endpoint.failure_reason}`);
      assert.ok(Date.now() < deadline, `${name} is still ${endpoint.status}`);
      await sleep(100);
    }
  }
}

/** Debian's Chromium with a fresh profile, headless, driven over the DevTools protocol. */
async function launchChromium() {
  const profile = mkdtempSync(path.join(tmpdir(), 'riskserve-console-chromium-'));
  scratch.push(profile);
  const child = spawn(CHROMIUM, ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage', '--hide-scrollbars', `--user-data-dir=${profile}`, '--remote-debugging-port=0', 'about:blank'],
  { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  children.push(child);
  child.stdout.resume();
  const { found } = await waitForLine(child, 'stderr', /DevTools listening on (ws:\/\/\S+)\r?\n/, 'chromium');
  child.stderr.resume();
  return chromium.connectOverCDP(found[1]);
}

let server, browser;
const axeSource = () => readFileSync(AXE, 'utf8');
const shots = [];
const axeReports = [];

/** A fresh browser context (no cookies), whose pages fail the test on a script error or a CSP violation. */
async function newPage() {
  const context = await browser.newContext({ viewport: { width: WIDTHS[0][0], height: WIDTHS[0][1] } });
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (error) => page.problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && !/status of 40[134]/.test(message.text())) page.problems.push(`console error: ${message.text()}`);
    if (/Content Security Policy/i.test(message.text())) page.problems.push(`CSP: ${message.text()}`);
  });
  return page;
}
const noProblems = (page) => assert.deepEqual(page.problems, [], 'the page had errors');

/** A fresh load of a console page (a hash change alone would not reload the document). */
async function open(page, hash = '') {
  await page.goto('about:blank');
  await page.goto(`${server.base}/console${hash && `#/${hash}`}`);
}

async function signIn(page, secret) {
  await open(page);
  await page.getByLabel('Token', { exact: true }).fill(secret);
  await page.getByRole('button', { name: 'Sign in with token' }).click();
  await page.locator('#who').getByRole('button', { name: 'Sign out' }).waitFor();
}

/** axe-core in the page (evaluated through the DevTools protocol, which the page's CSP does not govern). */
async function axe(page, name) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(axeSource());
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  axeReports.push({ page: name, violations: result.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length })) });
  assert.deepEqual(bad.map((v) => `${v.id} (${v.impact}): ${v.help}: ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`), [], `axe on ${name}`);
}

/**
 * Opens `hash` at each width (a fresh load, so charts are drawn for that width), waits for `ready`, checks that the
 * page does not scroll sideways, saves a full-page screenshot and runs axe-core.
 */
async function visit(page, name, hash, ready) {
  for (const [width, height] of WIDTHS) {
    await page.setViewportSize({ width, height });
    await open(page, hash);
    await page.locator('#main h1').waitFor();
    await ready(page);
    await page.waitForLoadState('networkidle').catch(() => {});
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 1, `${name} at ${width} px scrolls sideways by ${overflow} px`);
    const file = path.join(ARTIFACTS, `${name}-${width}.png`);
    await page.screenshot({ path: file, fullPage: true });
    shots.push(path.basename(file));
    await axe(page, `${name} at ${width} px`);
  }
  await page.setViewportSize({ width: WIDTHS[0][0], height: WIDTHS[0][1] });
  noProblems(page);
}

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
const [csvHeader, ...csvRows] = readFileSync(path.join(EXAMPLE, 'input.csv'), 'utf8').trim().split('\n');
const expected = readFileSync(path.join(EXAMPLE, 'expected.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));

/** What the test needs; missing, it fails (a failed test, and the suite's tests cancelled): it never skips. */
function prerequisites() {
  assert.equal(loadError, null, `playwright-core is not installed (run npm ci in tests/console): ${loadError?.message}`);
  assert.ok(existsSync(AXE), `axe-core is not installed: ${AXE} is missing (run npm ci in tests/console)`);
  assert.ok(existsSync(CHROMIUM), `Chromium is missing at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM)`);
  assert.ok(BIN && existsSync(BIN), `RISKSERVE_BIN must name the riskserve binary (got ${BIN})`);
}

test('Chromium, playwright-core, axe-core and the riskserve binary are there', prerequisites);

describe('the web console in Chromium', { timeout: 15 * 60 * 1000 }, () => {
  let admin;

  before(async () => {
    prerequisites();
    mkdirSync(ARTIFACTS, { recursive: true });
    server = await startServer();
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close().catch(() => {});
    for (const child of children) {
      try { if (child.spawnargs[0] === CHROMIUM) process.kill(-child.pid, 'SIGKILL'); else child.kill('SIGTERM'); } catch { /* gone */ }
    }
    await sleep(300);
    for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
  });

  it('serves its three files without credentials, with the strict CSP and no data', async () => {
    for (const [route, type] of [['/console', 'text/html'], ['/console/assets/app.js', 'text/javascript'], ['/console/assets/app.css', 'text/css']]) {
      const response = await fetch(server.base + route);
      assert.equal(response.status, 200, route);
      assert.equal(response.headers.get('content-security-policy'), CSP, route);
      assert.match(response.headers.get('content-type'), new RegExp(type), route);
      const text = await response.text();
      assert.equal(text, readFileSync(path.join(CONSOLE_FILES, route === '/console' ? 'index.html' : path.basename(route)), 'utf8'), `${route} is the file in the repository`);
      assert.doesNotMatch(text, /rsk_[A-Za-z0-9_-]{20}|AKIA[A-Z0-9]{16}/, `${route} holds no credential`);
    }
    const html = readFileSync(path.join(CONSOLE_FILES, 'index.html'), 'utf8');
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>|\sstyle=|\son[a-z]+=/i, 'no inline script, style attribute or handler');
    const none = await fetch(`${server.base}/console/api/session`);
    assert.equal(none.status, 401);
  });

  it('signs in with a token (a wrong one is refused) and keeps the session in an HttpOnly, SameSite=Strict cookie', async () => {
    admin = await newPage();
    await open(admin);
    await admin.getByRole('heading', { name: 'Sign in', level: 1 }).waitFor();
    await visit(admin, 'sign-in', 'signin', (page) => page.getByLabel('Access key id').waitFor());
    await admin.getByLabel('Token', { exact: true }).fill(token());
    await admin.getByRole('button', { name: 'Sign in with token' }).click();
    await admin.getByText('Sign-in refused').waitFor();
    await signIn(admin, server.adminToken);
    await admin.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
    await admin.getByText('No endpoint yet').waitFor();
    const cookies = await admin.context().cookies();
    const cookie = cookies.find((c) => c.name === 'riskserve_session');
    assert.ok(cookie, 'the session cookie is set');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    assert.equal(cookie.path, '/');
    const stored = await admin.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie);
    assert.equal(stored, '{}{}', 'nothing in web storage or readable cookies');
    noProblems(admin);
  });

  it('shows an endpoint deployed through the API on the overview', async () => {
    await createModel(server, 'credit');
    await must(server, 'POST', '/api/v1/endpoint-configs', { name: 'credit-v1', variants: [{ name: 'main', model: 'credit', instances: 1 }], tags: { team: 'cards' }, data_capture: { sampling_percentage: 100 } });
    await must(server, 'POST', '/api/v1/endpoint-configs', { name: 'credit-v2', variants: [{ name: 'main', model: 'credit', instances: 2 }] });
    await must(server, 'POST', '/api/v1/endpoints', { name: 'credit', config: 'credit-v1', tags: { team: 'cards' } });
    await waitInService(server, ['credit']);
    await must(server, 'PUT', '/api/v1/endpoints/credit/monitoring/baseline', readFileSync(path.join(EXAMPLE, 'input.csv')), { type: 'text/csv' });
    // Traffic for the charts, the overview and the cost report: scored rows, and some refused as invalid (4xx).
    for (let i = 0; i < 12; i++) {
      await must(server, 'POST', '/endpoints/credit/invocations', `${csvRows.slice(i * 5, i * 5 + 5).join('\n')}\n`, { type: 'text/csv' });
    }
    for (let i = 0; i < 3; i++) {
      const bad = await call(server, 'POST', '/endpoints/credit/invocations', { instances: [{ duration_in_month: 'many' }] });
      assert.equal(bad.status, 400);
    }
    // The history takes a new variant in at its next one-second sample: wait until it counts the traffic.
    const hour = async (metric) => (await must(server, 'GET', `/api/v1/endpoints/credit/metrics?metric=${metric}&stat=sum&start=-60m`)).datapoints.reduce((a, d) => a + d.value, 0);
    let invocations, errors4xx, errors5xx;
    for (let i = 0; i < 50; i++) {
      [invocations, errors4xx, errors5xx] = [await hour('invocations'), await hour('errors_4xx'), await hour('errors_5xx')];
      if (invocations >= 15 && errors4xx === 3) break;
      await sleep(100);
    }
    assert.ok(invocations >= 15 && errors4xx === 3 && errors5xx === 0, `the history counted ${invocations} invocations, ${errors4xx} 4xx, ${errors5xx} 5xx`);
    await open(admin, 'overview');
    const row = admin.locator('#endpoints-table tbody tr', { hasText: 'credit' });
    await row.waitFor();
    assert.match(await row.innerText(), /InService/);
    await row.locator('td').nth(4).filter({ hasText: /^[\d,]+$/ }).waitFor();
    assert.equal(await row.locator('td').nth(4).innerText(), invocations.toLocaleString('en-US'), 'invocations of the last hour');
    assert.equal(await row.locator('td').nth(5).innerText(), `${errors4xx} / ${errors5xx}`, 'errors 4xx / 5xx of the last hour');
    assert.match(await row.locator('td').nth(6).innerText(), /^[\d.]+ ms$/, 'p99 of the last hour');
    await visit(admin, 'overview', 'overview', (page) => page.locator('#endpoints-table tbody tr td:nth-child(5)').filter({ hasText: /^\d+$/ }).first().waitFor());
  });

  it('opens the endpoint: charts from the history, variants, and a weight and instance change', async () => {
    await open(admin, 'overview');
    await admin.getByRole('link', { name: 'credit', exact: true }).click();
    await admin.getByRole('heading', { name: 'Endpoint credit', level: 1 }).waitFor();
    const charts = admin.locator('figure svg[role="img"]');
    await charts.nth(3).waitFor();
    assert.equal(await charts.count(), 4);
    const labels = await charts.evaluateAll((svgs) => svgs.map((svg) => svg.getAttribute('aria-label')));
    assert.match(labels[0], /^Invocations per minute, .* invocations: latest [\d,]+, highest [\d,]+/);
    assert.match(labels[1], /model p99: latest [\d.]+ ms.*overhead p99: latest [\d.]+ ms/);
    assert.match(labels[2], /4xx: latest [\d,]+, highest [1-3]\b/);
    assert.match(labels[3], /instances: latest [\d.]+/);
    assert.ok(await admin.locator('figure').first().locator('polyline, circle').count() > 0, 'the invocations chart has data drawn');
    // Admins may change the endpoint: the form sends the CSRF token with the cookie.
    const form = admin.getByRole('form', { name: 'Change a variant' });
    await form.getByLabel('Instances').fill('2');
    await form.getByRole('button', { name: 'Apply change' }).click();
    await admin.getByText('Variant main: weight 1, 2 instances').waitFor();
    assert.equal((await must(server, 'GET', '/api/v1/endpoints/credit')).variants[0].instances, 2);
    // A scaling policy whose minimum is above the count: the autoscaler's next tick (10 s) scales out, an activity to mark.
    await must(server, 'PUT', '/api/v1/endpoints/credit/variants/main/scaling-policy', { min_instances: 3, max_instances: 4, target: 100000 });
    let activity;
    for (let i = 0; i < 150 && !activity; i++) {
      activity = (await must(server, 'GET', '/api/v1/endpoints/credit')).scaling_activities.find((a) => a.to === 3);
      if (!activity) await sleep(100);
    }
    assert.ok(activity, 'the autoscaler scaled the variant out to its minimum');
    await visit(admin, 'endpoint', 'endpoints/credit', async (page) => {
      const figure = page.locator('figure').filter({ has: page.locator('figcaption', { hasText: /^Instances$/ }) });
      const instances = figure.locator('svg[role="img"]');
      await instances.waitFor();
      assert.match(await instances.getAttribute('aria-label'), /1 scaling activities marked/);
      assert.match(await instances.locator('g title').first().textContent(), /main 2 → 3 instances/);
      await figure.locator('li', { hasText: /main 2 → 3 instances \(2 instances is below the policy's minimum\)/ }).waitFor();
    });
    await must(server, 'DELETE', '/api/v1/endpoints/credit/variants/main/scaling-policy');
  });

  it('tries a row and reads its reasons as a bar chart', async () => {
    await open(admin, 'try/credit');
    await admin.getByLabel('Fill from a CSV row').fill(csvRows[0]);
    await admin.getByRole('button', { name: 'Fill the fields' }).click();
    assert.equal(await admin.getByLabel('credit_amount', { exact: true }).inputValue(), '1169');
    await admin.getByRole('button', { name: 'Score this row' }).click();
    const prediction = admin.locator('#prediction');
    await prediction.waitFor();
    const want = expected[0];
    assert.equal(await prediction.locator('dd[data-name="grade"]').innerText(), want.grade);
    assert.equal(await prediction.locator('dd[data-name="decision"]').innerText(), want.decision);
    assert.equal(await prediction.locator('dd[data-name="probability of default"]').innerText(), `${(want.probability * 100).toFixed(1)} %`);
    assert.equal(await prediction.locator('dd[data-name="score"]').innerText(), want.score.toFixed(1));
    const codes = await prediction.locator('table').first().locator('tbody tr td:first-child').allInnerTexts();
    assert.deepEqual(codes, want.reasons.map((r) => r.code), 'the reason codes, most adverse first');
    const chart = prediction.locator('svg[role="img"]');
    assert.equal(await chart.locator('rect.bar').count(), want.reasons.length, 'one bar a reason');
    const label = await chart.getAttribute('aria-label');
    for (const reason of want.reasons) assert.ok(label.includes(reason.code), `the chart names ${reason.code}`);
    await visit(admin, 'try-it', 'try/credit', async (page) => {
      await page.getByLabel('Fill from a CSV row').fill(csvRows[1]);
      await page.getByRole('button', { name: 'Fill the fields' }).click();
      await page.getByRole('button', { name: 'Score this row' }).click();
      await page.locator('#prediction svg[role="img"]').waitFor();
    });
  });

  it('lists models, cost and monitoring', async () => {
    await visit(admin, 'models', 'models', async (page) => {
      const card = page.getByRole('article', { name: 'Model credit' });
      await card.waitFor();
      const text = await card.innerText();
      assert.match(text, /pipeline/);
      assert.match(text, /sha256:[0-9a-f]{64}/);
      assert.match(text, /team=cards/);
      // The pipeline's framework and steps, read from the model's pipeline file.
      await card.getByText('Pipeline: framework and steps').click();
      const pipeline = card.locator('details.pipeline');
      await pipeline.getByText('xgboost-json (model.json)').waitFor();
      const steps = await pipeline.locator('ol li').allInnerTexts();
      const spec = JSON.parse(readFileSync(path.join(EXAMPLE, 'pipeline.json'), 'utf8'));
      assert.equal(steps.length, spec.steps.length);
      assert.match(steps[0], new RegExp(`^${spec.steps[0].step}`));
      assert.match(await pipeline.innerText(), /A, B, C, D, E/);
    });
    await visit(admin, 'cost', 'cost?by=endpoint&from=-24h', async (page) => {
      const row = page.locator('table tbody tr', { hasText: 'credit' });
      await row.waitFor();
      await page.locator('figure svg[role="img"]').first().waitFor();
    });
    await visit(admin, 'cost-by-principal', 'cost?by=principal&from=-24h', (page) => page.locator('table tbody tr', { hasText: 'admin' }).waitFor());
    await visit(admin, 'cost-by-tag', 'cost?by=tag&from=-24h', (page) => page.locator('table tbody tr', { hasText: 'team=cards' }).waitFor());
    // A monitoring run over the captured invocations (the capture is written in the background: run until it is read).
    let report;
    for (let i = 0; i < 60; i++) {
      report = await must(server, 'POST', '/api/v1/endpoints/credit/monitoring/runs');
      if (report.status === 'completed') break;
      await sleep(500);
    }
    assert.equal(report.status, 'completed', JSON.stringify(report));
    await visit(admin, 'monitoring', 'monitoring/credit', async (page) => {
      const latest = page.getByRole('region', { name: 'Latest report', exact: true });
      await latest.getByText(report.id).waitFor();
      assert.match(await latest.innerText(), new RegExp(`completed[\\s\\S]*${report.rows} rows in ${report.records} records`));
      await latest.getByText(/Score PSI [\d.]+/).waitFor();
      await page.getByRole('region', { name: 'Reports', exact: true }).locator('tbody tr').first().waitFor();
    });
  });

  it('filters the audit trail, pages through it and verifies it', async () => {
    await open(admin, 'audit');
    await admin.getByLabel('Action', { exact: true }).fill('sagemaker:CreateEndpointConfig');
    await admin.getByRole('button', { name: 'Apply filters' }).click();
    await admin.getByText(/events where action = sagemaker:CreateEndpointConfig/).waitFor();
    const actions = await admin.locator('table tbody tr td:nth-child(4)').allInnerTexts();
    assert.equal(actions.length, 2, 'the two configs created');
    assert.ok(actions.every((a) => a === 'sagemaker:CreateEndpointConfig'), actions.join(', '));
    await admin.getByLabel('Action', { exact: true }).fill('sagemaker:InvokeEndpoint');
    await admin.getByLabel('Outcome').selectOption('failed');
    await admin.getByRole('button', { name: 'Apply filters' }).click();
    await admin.getByText(/events where action = sagemaker:InvokeEndpoint, outcome = failed/).waitFor();
    const failed = await admin.locator('table tbody tr td:nth-child(6)').allInnerTexts();
    assert.deepEqual(failed, ['failed', 'failed', 'failed']);
    await admin.getByRole('button', { name: 'Clear' }).click();
    await admin.getByText(/^\d+ events$/).waitFor();
    await admin.getByLabel('Rows per page').selectOption('25');
    await admin.getByRole('button', { name: 'Apply filters' }).click();
    await admin.getByText('25 events').waitFor();
    await admin.getByRole('button', { name: 'Next page' }).click();
    await admin.getByText(/after event #25/).waitFor();
    assert.equal(await admin.locator('table tbody tr td:first-child').first().innerText(), '26');
    await admin.getByRole('button', { name: 'Verify the trail' }).click();
    await admin.getByText('The trail verifies.').waitFor();
    await visit(admin, 'audit', 'audit?action=sagemaker%3AInvokeEndpoint', (page) => page.locator('table tbody tr').first().waitFor());
  });

  it('shows users, keys and policies to admins and creates a token', async () => {
    await open(admin, 'admin');
    const form = admin.getByRole('form', { name: 'Create a user' });
    await form.getByLabel('Name').fill('dana');
    await form.getByLabel('Roles').fill('deployer');
    await form.getByRole('button', { name: 'Create user' }).click();
    await admin.getByText('User dana created with roles deployer').waitFor();
    await admin.reload();
    await admin.getByRole('button', { name: 'New token for dana' }).click();
    const secret = await admin.locator('.secret').innerText();
    assert.match(secret, /^rsk_/);
    assert.equal((await call(server, 'GET', '/api/v1/endpoints', undefined, { tokenOf: secret })).status, 200, 'the new token works');
    await visit(admin, 'users-and-policies', 'admin', (page) => page.getByText('builtin', { exact: true }).waitFor());
  });

  it('refuses a state change with the cookie but without the CSRF token', async () => {
    const probe = (withToken) => admin.evaluate(async (withToken) => {
      const headers = { 'Content-Type': 'application/json' };
      if (withToken) headers['X-CSRF-Token'] = (await (await fetch('/console/api/session')).json()).csrf_token;
      const response = await fetch('/api/v1/endpoint-configs', { method: 'POST', headers, body: JSON.stringify({ name: withToken ? 'csrf-with' : 'csrf-without', variants: [{ name: 'main', model: 'credit' }] }) });
      return { status: response.status, body: await response.json() };
    }, withToken);
    const refused = await probe(false);
    assert.equal(refused.status, 403);
    assert.equal(errorCode(refused.body), 'csrf_failed');
    assert.equal((await call(server, 'GET', '/api/v1/endpoint-configs/csrf-without')).status, 404, 'nothing was created');
    const accepted = await probe(true);
    assert.equal(accepted.status, 201, JSON.stringify(accepted.body));
    const signOut = await admin.evaluate(async () => (await fetch('/console/api/sign-out', { method: 'POST' })).status);
    assert.equal(signOut, 403, 'sign-out needs the CSRF token too');
  });

  it('holds each built-in role to what Cedar allows it', async () => {
    for (const [name, role] of [['ivan', 'invoker'], ['audrey', 'auditor']]) await must(server, 'POST', '/api/v1/users', { name, roles: [role] });
    const invokerToken = (await must(server, 'POST', '/api/v1/users/ivan/tokens')).token;
    const auditorToken = (await must(server, 'POST', '/api/v1/users/audrey/tokens')).token;

    const invoker = await newPage();
    await signIn(invoker, invokerToken);
    await invoker.getByRole('heading', { name: 'Try it', level: 1 }).waitFor();
    const invokerNav = await invoker.locator('#nav a').allInnerTexts();
    assert.deepEqual(invokerNav, ['Try it'], 'an invoker sees only "Try it"');
    await open(invoker, 'overview');
    await invoker.getByText('Not allowed for your role').waitFor();
    assert.equal(await invoker.locator('#endpoints-table').count(), 0, 'no endpoint list');
    await visit(invoker, 'invoker-overview', 'overview', (page) => page.getByText('Not allowed for your role').waitFor());
    await visit(invoker, 'invoker-admin', 'admin', (page) => page.getByText('Not allowed for your role').first().waitFor());
    await open(invoker, 'try/credit');
    const values = csvFields(csvRows[0]);
    const row = Object.fromEntries(csvFields(csvHeader).map((field, i) => [field, values[i]]));
    await invoker.getByLabel('Row (JSON object of field: value)').fill(JSON.stringify(row));
    await invoker.getByRole('button', { name: 'Score this row' }).click();
    await invoker.locator('#prediction dd[data-name="grade"]').waitFor();
    await visit(invoker, 'invoker-try-it', 'try/credit', (page) => page.getByLabel('Row (JSON object of field: value)').waitFor());

    const auditor = await newPage();
    await signIn(auditor, auditorToken);
    await auditor.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
    const auditorNav = await auditor.locator('#nav a').allInnerTexts();
    assert.ok(auditorNav.includes('Audit trail') && !auditorNav.includes('Users & policies') && !auditorNav.includes('Try it'), auditorNav.join(', '));
    await open(auditor, 'audit');
    await auditor.locator('table tbody tr').first().waitFor();
    await open(auditor, 'endpoints/credit');
    await auditor.locator('figure svg[role="img"]').nth(3).waitFor();
    assert.equal(await auditor.getByRole('form', { name: 'Change a variant' }).count(), 0, 'no update form for an auditor');
    assert.equal(await auditor.getByRole('form', { name: 'Update to another config' }).count(), 0);
    const patched = await auditor.evaluate(async () => {
      const { csrf_token: csrf } = await (await fetch('/console/api/session')).json();
      const response = await fetch('/api/v1/endpoints/credit/variants/main', { method: 'PATCH', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf }, body: '{"instances": 3}' });
      return { status: response.status, body: await response.json() };
    });
    assert.equal(patched.status, 403, 'Cedar refuses the change even with the CSRF token');
    assert.equal(errorCode(patched.body), 'access_denied');
    await open(auditor, 'admin');
    await auditor.getByText('Not allowed for your role').first().waitFor();
    assert.equal(await auditor.locator('table').count(), 0, 'no users table for an auditor');
    await visit(auditor, 'auditor-endpoint', 'endpoints/credit', (page) => page.locator('figure svg[role="img"]').nth(3).waitFor());
    await visit(auditor, 'auditor-admin', 'admin', (page) => page.getByText('Not allowed for your role').first().waitFor());
    // A deployer changes endpoints but reads neither the audit trail nor users: refused by Cedar, said on the page.
    await must(server, 'POST', '/api/v1/users', { name: 'dora', roles: ['deployer'] });
    const deployerToken = (await must(server, 'POST', '/api/v1/users/dora/tokens')).token;
    const deployer = await newPage();
    await signIn(deployer, deployerToken);
    await deployer.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
    const deployerNav = await deployer.locator('#nav a').allInnerTexts();
    assert.ok(deployerNav.includes('Try it') && !deployerNav.includes('Audit trail') && !deployerNav.includes('Users & policies'), deployerNav.join(', '));
    await open(deployer, 'endpoints/credit');
    await deployer.getByRole('form', { name: 'Change a variant' }).waitFor();
    await open(deployer, 'audit');
    await deployer.getByText('Not allowed for your role').first().waitFor();
    assert.equal(await deployer.locator('table tbody tr').count(), 0, 'no audit rows for a deployer');
    await visit(deployer, 'deployer-endpoint', 'endpoints/credit', (page) => page.getByRole('form', { name: 'Change a variant' }).waitFor());
    await visit(deployer, 'deployer-audit', 'audit', (page) => page.getByText('Not allowed for your role').first().waitFor());
    await invoker.context().close();
    await auditor.context().close();
    await deployer.context().close();
  });

  it('updates the endpoint to another config from its page', async () => {
    await open(admin, 'endpoints/credit');
    const form = admin.getByRole('form', { name: 'Update to another config' });
    await form.getByLabel('Config').selectOption('credit-v2');
    await form.getByRole('button', { name: 'Update endpoint' }).click();
    await admin.getByText('moving to config credit-v2').waitFor();
    await waitInService(server, ['credit']);
    assert.equal((await must(server, 'GET', '/api/v1/endpoints/credit')).config, 'credit-v2');
    noProblems(admin);
  });

  it('signs in with an access key and signs out', async () => {
    assert.ok(server.accessKeyId && server.secret, 'the server printed the administrator\'s access key');
    const page = await newPage();
    // The overview's list of endpoints is held until the server has ended the session, and the sign-out's answer
    // until that list has come back refused (401): a page request still in flight during a sign-out must not turn
    // it into "your session has ended" (it did, now and then, in CI).
    let serverSignedOut, listRefused;
    const signedOutOnServer = new Promise((resolve) => { serverSignedOut = resolve; });
    const refused = new Promise((resolve) => { listRefused = resolve; });
    await page.route(/\/api\/v1\/endpoints(\?|$)/, async (route) => {
      await signedOutOnServer;
      await route.continue();
    });
    page.on('response', (response) => {
      if (/\/api\/v1\/endpoints(\?|$)/.test(response.url()) && response.status() === 401) listRefused();
    });
    await page.route('**/console/api/sign-out', async (route) => {
      const response = await route.fetch();
      serverSignedOut();
      await refused;
      // Let the page's code take the refused list before the sign-out completes.
      await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 100)));
      await route.fulfill({ response });
    });
    // Every notice the sign-in page shows, in order.
    await page.addInitScript(() => {
      window.notices = [];
      new MutationObserver(() => {
        const status = document.getElementById('signin-status');
        if (status && status.textContent && window.notices.at(-1) !== status.textContent) window.notices.push(status.textContent);
      }).observe(document, { subtree: true, childList: true, characterData: true });
    });
    await open(page);
    await page.getByLabel('Access key id').fill(server.accessKeyId);
    await page.getByLabel('Secret access key').fill(server.secret);
    await page.getByLabel('Secret access key').press('Enter');
    await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
    await page.locator('#who').getByRole('button', { name: 'Sign out' }).click();
    await page.getByText('You are signed out.').waitFor();
    await page.getByRole('heading', { name: 'Sign in', level: 1 }).waitFor();
    // Still the sign-out's notice once every request has settled, and never "your session has ended".
    await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 300)));
    assert.ok(await page.getByText('You are signed out.').isVisible(), 'the notice is still the sign-out\'s');
    assert.deepEqual(await page.evaluate(() => window.notices), ['You are signed out.']);
    await page.unrouteAll({ behavior: 'ignoreErrors' });
    await page.getByRole('heading', { name: 'Sign in', level: 1 }).waitFor();
    assert.equal((await page.context().cookies()).filter((c) => c.name === 'riskserve_session' && c.value).length, 0, 'the cookie is cleared');
    assert.equal(await page.evaluate(async () => (await fetch('/console/api/session')).status), 401);
    assert.equal(await page.evaluate(async () => (await fetch('/api/v1/endpoints')).status), 401, 'the API refuses the browser again');
    await open(page, 'overview');
    await page.getByRole('heading', { name: 'Sign in', level: 1 }).waitFor();
    noProblems(page);
    await page.context().close();
  });

  it('meets the budgets: page weight, and first render of the overview with 100 endpoints', async () => {
    await admin.context().close();
    const bench = await startServer();
    const saved = server;
    server = bench;
    try {
      await createModel(bench, 'bench');
      await must(bench, 'POST', '/api/v1/endpoint-configs', { name: 'bench', variants: [{ name: 'main', model: 'bench', instances: 1 }] });
      const names = Array.from({ length: 100 }, (_, i) => `bench-${String(i).padStart(3, '0')}`);
      for (const name of names) await must(bench, 'POST', '/api/v1/endpoints', { name, config: 'bench' });
      await waitInService(bench, names);
      const page = await newPage();
      await signIn(page, bench.adminToken);
      const renders = [];
      let weight = null;
      for (let run = 0; run < 3; run++) {
        await page.goto('about:blank');
        await page.goto(`${bench.base}/console#/overview`);
        const handle = await page.waitForFunction(() => document.querySelectorAll('#endpoints-table tbody tr').length === 100 && performance.now(), null, { polling: 'raf', timeout: 30000 });
        renders.push(Math.round(await handle.jsonValue()));
        if (run === 0) {
          weight = await page.evaluate(() => performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))
            .filter((e) => new URL(e.name).pathname.startsWith('/console') && !new URL(e.name).pathname.startsWith('/console/api'))
            .map((e) => ({ path: new URL(e.name).pathname, transfer: e.transferSize, encoded: e.encodedBodySize, decoded: e.decodedBodySize })));
        }
      }
      await visit(page, 'overview-100-endpoints', 'overview', (p) => p.locator('#endpoints-table tbody tr').nth(99).waitFor());
      await page.context().close();
      const files = Object.fromEntries(['index.html', 'app.js', 'app.css'].map((f) => [f, statSync(path.join(CONSOLE_FILES, f)).size]));
      const fileBytes = Object.values(files).reduce((a, b) => a + b, 0);
      assert.equal(weight.length, 3, `three console files loaded: ${JSON.stringify(weight)}`);
      const budgets = {
        console_files_bytes: files,
        console_files_total_bytes: fileBytes,
        transferred: weight,
        transferred_total_bytes: weight.reduce((a, e) => a + e.transfer, 0),
        overview_100_endpoints_first_render_ms: renders,
        overview_100_endpoints_first_render_ms_median: [...renders].sort((a, b) => a - b)[1],
        budget: BUDGET,
        chromium: browser.version(),
        binary: BIN,
        screenshots: shots,
        axe: axeReports,
      };
      writeFileSync(path.join(ARTIFACTS, 'budgets.json'), `${JSON.stringify(budgets, null, 2)}\n`);
      console.log(JSON.stringify({ console_files_total_bytes: fileBytes, transferred_total_bytes: budgets.transferred_total_bytes, overview_100_endpoints_first_render_ms: renders, screenshots: shots.length }));
      assert.ok(fileBytes <= BUDGET.console_bytes, `the console's files weigh ${fileBytes} bytes, over ${BUDGET.console_bytes}`);
    } finally {
      server = saved;
    }
  });
});
