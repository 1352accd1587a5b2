// rapport operator dashboard: the layer matrix, open alerts and a vehicle's readings and
// timeline, read from the cloud's /api/v1 with the operator's bearer token.
//
// Routes live in the fragment: `#/` (optionally `#/?axis=car&category=commercial&limit=50`)
// and `#/vehicle/<VIN>` (optionally `?kind=<filter>`, a key of TIMELINE_FILTERS). The token
// comes from `#token=…` (never sent to the server, removed from the address bar at once) or
// from the form, and is kept in sessionStorage (this tab).
//
// Time is the cloud's: ages and SLA times come from the API (`age_ms`, `sla_remaining_ms`,
// `now`), never from this browser's clock — the cloud may run on simulated time.
//
// Everything the API returns is untrusted: it reaches the page only through textContent and
// attribute setters, never as markup. Charts are SVG elements built the same way.
//
// Modules (same origin, no build step): format.js builds elements and formats values,
// chart.js draws a readings series; this file holds the state, the routes and the views.

import { chart } from './chart.js';
import { ALERT_KINDS, KM, describe, el, formatDate, formatDuration, formatTime, km, num, str, words } from './format.js';

const TOKEN_KEY = 'rapport.operator-token';
const REFRESH_MS = 5000;
const DEFAULT_LIMIT = 50;
const AXES = ['service', 'car'];
const CATEGORIES = ['passenger', 'commercial'];
const READINGS = ['odometer', 'engine_hours'];

/**
 * The vehicle page's timeline filters: the API's kinds each shows (`null`: every kind) and
 * whether the API folds runs of readings (`fold=readings`). The keys go in the route
 * (`#/vehicle/<VIN>?kind=faults`).
 */
const TIMELINE_FILTERS = {
  '': { label: 'everything (readings folded)', kinds: null, fold: true },
  events: {
    label: 'events (no readings)',
    kinds: ['dtc_appeared', 'dtc_cleared', 'dtc_snapshot', 'maintenance', 'prompt', 'consent', 'unknown', 'layer', 'strategy', 'suppressed', 'alert', 'registered'],
  },
  prompts: { label: 'prompts & responses', kinds: ['prompt'] },
  faults: { label: 'faults', kinds: ['dtc_appeared', 'dtc_cleared', 'dtc_snapshot'] },
  maintenance: { label: 'maintenance', kinds: ['maintenance'] },
  layers: { label: 'layer changes', kinds: ['layer'] },
  alerts: { label: 'alerts', kinds: ['alert'] },
  strategies: { label: 'strategies', kinds: ['strategy', 'suppressed'] },
  registry: { label: 'registry & consents', kinds: ['registered', 'consent'] },
  readings: { label: 'readings only', kinds: READINGS },
};

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------
// The token and the API

class AuthError extends Error {}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** Moves `#token=…` into sessionStorage and out of the address bar (and the history). */
function takeTokenFromFragment() {
  const hash = location.hash;
  if (!hash.startsWith('#token=')) return;
  let value = hash.slice('#token='.length);
  try {
    value = decodeURIComponent(value);
  } catch {
    // Not %-encoded text: take it as it is.
  }
  value = value.trim();
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  history.replaceState(null, '', `${location.pathname}${location.search}#/`);
}

/** GET an /api/v1 path as JSON. 401/403 end the session; other errors say what failed. */
async function api(path) {
  const t = token();
  if (!t) throw new AuthError('');
  let response;
  try {
    response = await fetch(path, {
      headers: { Authorization: `Bearer ${t}`, Accept: 'application/json' },
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch (e) {
    throw new ApiError(0, 'network', `cannot reach the cloud (${e.message})`);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  const error = body && typeof body === 'object' && body.error ? body.error : null;
  const message = error && typeof error.message === 'string' ? error.message : response.statusText;
  if (response.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    throw new AuthError(`The token was refused (401): ${message}`);
  }
  if (response.status === 403) {
    sessionStorage.removeItem(TOKEN_KEY);
    throw new AuthError(`This token may not open the dashboard (403: the operator's token is needed): ${message}`);
  }
  if (!response.ok) {
    throw new ApiError(response.status, error && error.code, `${path}: ${response.status} ${message}`);
  }
  if (body === null) throw new ApiError(response.status, 'bad_json', `${path}: the answer is not JSON`);
  return body;
}

// ---------------------------------------------------------------------------------------
// Status line, login, refresh

function showStatus(message) {
  const s = $('status');
  s.textContent = message || '';
  s.hidden = !message;
}

function showLogin(message) {
  stopRefresh();
  for (const id of ['view-fleet', 'view-vehicle', 'nav']) $(id).hidden = true;
  showStatus('');
  $('login').hidden = false;
  $('login-message').textContent = message || '';
  $('token-input').value = '';
  $('token-input').focus();
}

/** Runs a view's loader; an auth failure goes back to the form, anything else to the status line. */
async function guarded(work) {
  try {
    await work();
    showStatus('');
  } catch (e) {
    if (e instanceof AuthError) showLogin(e.message);
    else showStatus(e && e.message ? e.message : String(e));
  }
}

let refreshTimer = null;

function startRefresh(work) {
  stopRefresh();
  refreshTimer = setInterval(() => guarded(work), REFRESH_MS);
}

function stopRefresh() {
  if (refreshTimer !== null) clearInterval(refreshTimer);
  refreshTimer = null;
}

// ---------------------------------------------------------------------------------------
// Routing

function parseRoute() {
  const hash = location.hash.replace(/^#/, '');
  const [path, query] = hash.split('?', 2);
  const vehicle = /^\/vehicle\/([^/]+)$/.exec(path);
  if (vehicle) {
    let vin = vehicle[1];
    try {
      vin = decodeURIComponent(vin);
    } catch {
      // Leave it: the API will say it is not a VIN.
    }
    const kind = new URLSearchParams(query || '').get('kind') || '';
    return { view: 'vehicle', vin, kind: Object.hasOwn(TIMELINE_FILTERS, kind) ? kind : '' };
  }
  const p = new URLSearchParams(query || '');
  const limit = Number.parseInt(p.get('limit') || '', 10);
  return {
    view: 'fleet',
    axis: AXES.includes(p.get('axis')) ? p.get('axis') : 'service',
    category: CATEGORIES.includes(p.get('category')) ? p.get('category') : '',
    limit: Number.isInteger(limit) && limit >= 1 && limit <= 1000 ? limit : DEFAULT_LIMIT,
  };
}

function fleetHash(route) {
  const p = new URLSearchParams();
  if (route.axis !== 'service') p.set('axis', route.axis);
  if (route.category) p.set('category', route.category);
  if (route.limit !== DEFAULT_LIMIT) p.set('limit', String(route.limit));
  const q = p.toString();
  return q ? `#/?${q}` : '#/';
}

/** Bumped on every navigation: answers for an older view are dropped. */
let generation = 0;

function render() {
  generation += 1;
  const gen = generation;
  stopRefresh();
  if (!token()) {
    showLogin('');
    return;
  }
  $('login').hidden = true;
  $('nav').hidden = false;
  const route = parseRoute();
  if (route.view === 'vehicle') {
    $('view-fleet').hidden = true;
    $('view-vehicle').hidden = false;
    guarded(() => loadVehicle(route, gen));
  } else {
    $('view-vehicle').hidden = true;
    $('view-fleet').hidden = false;
    showFleet(route, gen);
  }
}

// ---------------------------------------------------------------------------------------
// The fleet view: matrix, a cell's vehicles, open alerts

/** The open cell: which one, and where its paging stands. */
let cell = null;

function showFleet(route, gen) {
  $('axis').value = route.axis;
  $('category').value = route.category;
  if (cell && (cell.axis !== route.axis || cell.category !== route.category || cell.limit !== route.limit)) {
    closeCell();
  }
  const refresh = async () => {
    await Promise.all([loadMatrix(route, gen), loadAlerts(gen)]);
  };
  guarded(async () => {
    await refresh();
    if (cell && gen === generation) await loadCell(route, cell.maturity, cell.activity, gen, false);
  });
  startRefresh(refresh);
}

/** What the matrix table shows now, and the alerts list (as their JSON). */
let shownMatrix = null;
let shownAlerts = null;

async function loadMatrix(route, gen) {
  const q = new URLSearchParams({ axis: route.axis });
  if (route.category) q.set('category', route.category);
  const m = await api(`/api/v1/layers?${q}`);
  if (gen !== generation) return;
  // Unchanged counts keep the table as it is (focus, selection, no flicker).
  const key = JSON.stringify([route.axis, route.category, m]);
  if (key === shownMatrix && $('matrix')) return;
  shownMatrix = key;
  const activities = Array.isArray(m.activities) ? m.activities.map(str) : [];
  const rows = Array.isArray(m.rows) ? m.rows : [];
  let max = 0;
  for (const r of rows) for (const c of Array.isArray(r.counts) ? r.counts : []) max = Math.max(max, num(c) ?? 0);

  const head = el('tr', {}, el('th', { scope: 'col', class: 'corner' }, `${route.axis} maturity ↓ · activity →`));
  for (const a of activities) head.append(el('th', { scope: 'col', testid: `col-${a}` }, a));
  head.append(el('th', { scope: 'col' }, 'total'));

  const colTotals = activities.map(() => 0);
  const body = el('tbody');
  for (const r of rows) {
    const maturity = str(r.maturity);
    const tr = el('tr', { testid: `row-${maturity}` }, el('th', { scope: 'row' }, maturity));
    let rowTotal = 0;
    activities.forEach((a, i) => {
      const n = num(Array.isArray(r.counts) ? r.counts[i] : null) ?? 0;
      rowTotal += n;
      colTotals[i] += n;
      const button = el('button', { type: 'button', title: `${maturity} · ${a}: ${n} driver${n === 1 ? '' : 's'}` }, String(n));
      // The table can outlive this render (it is kept while its counts are the same), so
      // a click reads the route and generation of its own moment.
      button.addEventListener('click', () => {
        const now = parseRoute();
        if (now.view !== 'fleet') return;
        cell = { axis: now.axis, category: now.category, limit: now.limit, maturity, activity: a };
        const g = generation;
        guarded(() => loadCell(now, maturity, a, g, false));
      });
      const td = el('td', { testid: `cell-${maturity}-${a}`, class: 'cell', 'data-count': n }, button);
      const heat = max > 0 ? n / max : 0;
      td.style.setProperty('--heat', heat.toFixed(3));
      if (heat > 0.55) td.classList.add('hot');
      if (n === 0) td.classList.add('zero');
      if (cell && cell.maturity === maturity && cell.activity === a) td.classList.add('selected');
      tr.append(td);
    });
    tr.append(el('td', { testid: `row-total-${maturity}`, class: 'total' }, String(rowTotal)));
    body.append(tr);
  }
  const foot = el('tr', {}, el('th', { scope: 'row' }, 'total'));
  activities.forEach((a, i) => foot.append(el('td', { testid: `col-total-${a}`, class: 'total' }, String(colTotals[i]))));
  foot.append(el('td', { testid: 'matrix-total', class: 'total grand' }, String(num(m.total) ?? 0)));

  const caption = el('caption', {}, `${route.category || 'all'} vehicles by ${route.axis} maturity and activity`);
  const table = el(
    'table',
    { id: 'matrix', testid: 'matrix', class: 'matrix', 'data-axis': route.axis, 'data-category': route.category || 'all' },
    caption,
    el('thead', {}, head),
    body,
    el('tfoot', {}, foot),
  );
  $('matrix-box').replaceChildren(table);
}

function closeCell() {
  cell = null;
  $('cell-vehicles').hidden = true;
  $('cell-list').replaceChildren();
  for (const td of document.querySelectorAll('#matrix td.selected')) td.classList.remove('selected');
}

/** The vehicles of a cell, one page at a time (`append`: the next page after the last VIN). */
async function loadCell(route, maturity, activity, gen, append) {
  const q = new URLSearchParams({ [route.axis]: maturity, activity, limit: String(route.limit) });
  if (route.category) q.set('category', route.category);
  if (append && cell && cell.next) q.set('after', cell.next);
  const page = await api(`/api/v1/vehicles?${q}`);
  if (gen !== generation || !cell || cell.maturity !== maturity || cell.activity !== activity) return;
  const list = Array.isArray(page.vehicles) ? page.vehicles : [];
  cell.next = typeof page.next_after === 'string' ? page.next_after : null;
  for (const td of document.querySelectorAll('#matrix td.selected')) td.classList.remove('selected');
  const selected = document.querySelector(`#matrix td[data-testid="cell-${CSS.escape(maturity)}-${CSS.escape(activity)}"]`);
  if (selected) selected.classList.add('selected');

  $('cell-title').textContent = `${route.category || 'all'} · ${route.axis} ${maturity} · ${activity}`;
  const rows = list.map((v) => {
    const vin = str(v.vin);
    const l = v.layers && typeof v.layers === 'object' ? v.layers : {};
    return el(
      'tr',
      { testid: `cell-row-${vin}` },
      el('td', {}, el('a', { href: `#/vehicle/${encodeURIComponent(vin)}`, testid: `vehicle-link-${vin}`, class: 'vin' }, vin)),
      el('td', {}, str(l.category)),
      el('td', {}, str(l.car)),
      el('td', {}, str(l.service)),
      el('td', {}, str(l.activity)),
      el('td', {}, str(l.lifecycle)),
    );
  });
  if (append) $('cell-list').append(...rows);
  else $('cell-list').replaceChildren(...rows);
  $('cell-empty').hidden = $('cell-list').children.length > 0;
  $('cell-more').hidden = cell.next === null;
  $('cell-vehicles').hidden = false;
}

/** What an alert's SLA cell adds to its state: the time left (or past), open alerts only. */
function slaLeft(a) {
  const left = num(a.sla_remaining_ms);
  if (left === null) return a.answered_at !== undefined && a.answered_at !== null ? `answered ${formatTime(a.answered_at)}` : '';
  return left >= 0 ? `${formatDuration(left)} left` : `${formatDuration(-left)} over`;
}

/** The running promise's clock: its stage and the time left (or past); '' when none runs. */
function promiseLeft(a) {
  const p = a.promise && typeof a.promise === 'object' ? a.promise : null;
  const left = p ? num(p.remaining_ms) : null;
  if (left === null) return '';
  const what = words(p.stage);
  return left >= 0 ? `${what} in ${formatDuration(left)}` : `${what} ${formatDuration(-left)} over`;
}

/** The alerts' JSON without what moves with the clock (ages, time left). */
function alertsKey(alerts) {
  return JSON.stringify(alerts.map((a) => ({
    ...a,
    age_ms: null,
    sla_remaining_ms: null,
    promise: a.promise && typeof a.promise === 'object' ? { ...a.promise, remaining_ms: null } : null,
  })));
}

async function loadAlerts(gen) {
  const body = await api('/api/v1/alerts?state=unresolved&limit=200');
  if (gen !== generation) return;
  const alerts = Array.isArray(body.alerts) ? body.alerts : [];
  $('alerts-updated').textContent = num(body.now) === null ? '' : `cloud time ${formatTime(body.now)}`;
  const key = alertsKey(alerts);
  if (key === shownAlerts) {
    // Same alerts: only their ages and time left move.
    for (const a of alerts) {
      const id = CSS.escape(str(a.id));
      const age = document.querySelector(`[data-testid="alert-age-${id}"]`);
      if (age) age.textContent = formatDuration(a.age_ms);
      const left = document.querySelector(`[data-testid="alert-sla-left-${id}"]`);
      if (left) left.textContent = slaLeft(a);
      const clock = document.querySelector(`[data-testid="alert-promise-${id}"]`);
      if (clock) clock.textContent = promiseLeft(a);
    }
    return;
  }
  shownAlerts = key;
  const rows = alerts.map((a) => {
    const id = str(a.id);
    const vin = str(a.vin);
    const sla = str(a.sla_state);
    // Who has it now (the cloud says: who acknowledged it, else the fallback once escalated).
    const holder = str(a.holder || a.partner);
    const partner = el('td', { testid: `alert-partner-${id}`, 'data-holder': holder }, holder);
    if (a.escalated && typeof a.escalated === 'object') {
      const to = str(a.escalated.to);
      const hint = holder === to ? ` escalated from ${str(a.partner)}` : ` escalated to ${to}`;
      partner.append(el('span', { class: 'hint' }, hint));
    }
    return el(
      'tr',
      { testid: `alert-${id}`, 'data-state': str(a.state), 'data-sla': sla },
      el('td', {}, id),
      el('td', { testid: `alert-kind-${id}` }, ALERT_KINDS[a.kind] || words(a.kind)),
      el('td', {}, str(a.subject)),
      el('td', {}, el('a', { href: `#/vehicle/${encodeURIComponent(vin)}`, testid: `alert-vehicle-${id}`, class: 'vin' }, vin)),
      partner,
      el('td', { testid: `alert-state-${id}` }, words(a.state)),
      el('td', { testid: `alert-stage-${id}`, 'data-stage': str(a.stage), title: `step ${str(a.step)}` }, words(a.stage)),
      el(
        'td',
        {
          testid: `alert-promise-${id}`,
          'data-due': a.promise && typeof a.promise === 'object' ? str(a.promise.due) : '',
          title: a.promise && typeof a.promise === 'object' ? `due ${formatTime(a.promise.due)}` : 'no promise running',
        },
        promiseLeft(a),
      ),
      el(
        'td',
        { title: `SLA due ${formatTime(a.sla_due)}` },
        el('span', { testid: `alert-sla-${id}`, class: `sla sla-${sla.replace(/[^a-z_]/g, '')}` }, words(sla)),
        el('span', { testid: `alert-sla-left-${id}`, class: 'hint sla-left' }, slaLeft(a)),
      ),
      el('td', { testid: `alert-age-${id}`, title: `raised ${formatTime(a.created_at)}` }, formatDuration(a.age_ms)),
    );
  });
  $('alerts-list').replaceChildren(...rows);
  $('alerts-empty').hidden = rows.length > 0;
}

// ---------------------------------------------------------------------------------------
// The vehicle view

function fact(dl, label, value, testid) {
  dl.append(el('dt', {}, label), el('dd', { testid }, value));
}

async function loadVehicle(route, gen) {
  const vin = route.vin;
  $('vehicle-title').textContent = vin;
  document.title = `${vin} · rapport`;
  const path = `/api/v1/vehicles/${encodeURIComponent(vin)}`;
  const [v, readings] = await Promise.all([api(path), api(`${path}/readings`)]);
  if (gen !== generation) return;

  const dl = $('vehicle-detail');
  dl.replaceChildren();
  const r = v.registration && typeof v.registration === 'object' ? v.registration : null;
  fact(dl, 'Category', r ? str(r.category) : 'not registered (counts as passenger)', 'detail-category');
  fact(dl, 'Line', r ? str(r.line) || '—' : '—', 'detail-line');
  fact(dl, 'Delivered', r ? formatDate(r.delivered) : '—', 'detail-delivered');
  fact(dl, 'Dealer', r ? str(r.dealer) || '—' : '—', 'detail-dealer');
  fact(dl, 'Region', r ? str(r.region) || '—' : '—', 'detail-region');
  const l = v.layers && typeof v.layers === 'object' ? v.layers : {};
  for (const axis of ['car', 'service', 'activity', 'lifecycle']) {
    fact(dl, axis === 'car' || axis === 'service' ? `${axis[0].toUpperCase()}${axis.slice(1)} maturity` : `${axis[0].toUpperCase()}${axis.slice(1)}`, str(l[axis]) || '—', `layer-${axis}`);
  }
  const o = v.odometer && typeof v.odometer === 'object' ? v.odometer : null;
  fact(dl, 'Odometer', o ? `${km(o.meters)} (${str(o.source)}, ${formatTime(o.at_ms)})` : '—', 'detail-odometer');
  const h = v.engine_hours && typeof v.engine_hours === 'object' ? v.engine_hours : null;
  if (h) fact(dl, 'Engine hours', `${KM.format((num(h.seconds) ?? 0) / 3600)} h`, 'detail-engine-hours');
  const faults = Array.isArray(v.active_dtcs) ? v.active_dtcs : [];
  fact(dl, 'Active faults', faults.length ? faults.map((f) => `${str(f.code)} (${str(f.severity)})`).join(', ') : 'none', 'detail-faults');
  if (num(v.last_seen_ms) !== null) fact(dl, 'Last record', formatTime(v.last_seen_ms), 'detail-last-seen');

  const items = Array.isArray(v.maintenance) ? v.maintenance : [];
  $('checklist').replaceChildren(
    ...items.map((i) =>
      el(
        'tr',
        { testid: `checklist-${str(i.item)}` },
        el('td', {}, str(i.item)),
        el('td', {}, words(i.status)),
        el('td', {}, num(i.due_odometer_km) === null ? '—' : `${KM.format(i.due_odometer_km)} km`),
        el('td', {}, formatDate(i.due_at)),
        el('td', {}, words(i.driver_response) || '—'),
      ),
    ),
  );
  $('checklist-empty').hidden = items.length > 0;

  drawReadings(readings);
  timeline = { vin, kind: route.kind, entries: [], next: null };
  $('timeline-kind').value = route.kind;
  await loadTimeline(gen, false);
}

// ---------------------------------------------------------------------------------------
// The vehicle's readings, as small SVG charts (chart.js)

function drawReadings(r) {
  const charts = [];
  const names = { odometer: 'Odometer', engine_hours: 'Engine hours' };
  for (const key of READINGS) {
    const series = r && typeof r === 'object' && r[key] && typeof r[key] === 'object' ? r[key] : null;
    if (series && (num(series.count) ?? 0) > 0) charts.push(chart(key, names[key], series));
  }
  $('readings').replaceChildren(...charts);
  $('readings-empty').hidden = charts.length > 0;
}

// ---------------------------------------------------------------------------------------
// The vehicle's timeline: events, with runs of readings folded, a filter by kind, paging

/** What the timeline shows: its vehicle and filter, the entries (newest first), the cursor. */
let timeline = null;

/** Two folds of one run cut by a page boundary (`newer` above `older`) as one. */
function joinRuns(newer, older) {
  const kmNewer = newer.odometer_km && typeof newer.odometer_km === 'object' ? newer.odometer_km : null;
  const kmOlder = older.odometer_km && typeof older.odometer_km === 'object' ? older.odometer_km : null;
  return {
    ...newer,
    first_at: older.first_at,
    first_seq: older.first_seq,
    count: (num(newer.count) ?? 0) + (num(older.count) ?? 0),
    odometer: (num(newer.odometer) ?? 0) + (num(older.odometer) ?? 0),
    engine_hours: (num(newer.engine_hours) ?? 0) + (num(older.engine_hours) ?? 0),
    odometer_km: kmNewer && kmOlder ? { from: kmOlder.from, to: kmNewer.to } : kmNewer || kmOlder,
  };
}

/** Fetches a page (the first, or the next older one) and shows the timeline again. */
async function loadTimeline(gen, older) {
  const t = timeline;
  const filter = TIMELINE_FILTERS[t.kind] || TIMELINE_FILTERS[''];
  let next = older ? t.next : null;
  // A page may come back empty when a filter matches little on a long log: go on a few
  // pages before asking the user to.
  for (let tries = 0; tries < 10; tries += 1) {
    const q = new URLSearchParams();
    if (filter.kinds) q.set('kind', filter.kinds.join(','));
    if (filter.fold) q.set('fold', 'readings');
    if (next) q.set('before', next);
    const page = await api(`/api/v1/vehicles/${encodeURIComponent(t.vin)}/timeline?${q}`);
    if (gen !== generation || timeline !== t) return;
    const entries = Array.isArray(page.entries) ? page.entries.slice().reverse() : [];
    next = typeof page.next_before === 'string' ? page.next_before : null;
    const last = t.entries[t.entries.length - 1];
    if (last && last.kind === 'readings' && entries.length > 0 && entries[0].kind === 'readings') {
      t.entries[t.entries.length - 1] = joinRuns(last, entries.shift());
    }
    t.entries.push(...entries);
    if (entries.length > 0 || next === null) break;
  }
  t.next = next;
  renderTimeline(t);
}

function entryItem(e) {
  const [label, detail] = describe(e);
  const source = str(e.source);
  return el(
    'li',
    { testid: 'timeline-entry', 'data-kind': str(e.kind), 'data-source': source, 'data-at': str(e.at), class: `entry from-${source === 'car' ? 'car' : 'cloud'}` },
    el('time', { datetime: num(e.at) === null ? null : new Date(e.at).toISOString() }, formatTime(e.at)),
    el('span', { class: 'source', testid: 'entry-source' }, source),
    el('span', { class: 'label', testid: 'entry-label' }, label),
    detail ? el('span', { class: 'detail' }, detail) : null,
  );
}

/** The readings of a fold, oldest first: the readings page just below its newest seq. */
async function runReadings(vin, run) {
  const count = Math.min(num(run.count) ?? 0, 1000);
  const q = new URLSearchParams({ kind: READINGS.join(','), before: `${(num(run.last_seq) ?? 0) + 1}.-`, limit: String(Math.max(count, 1)) });
  const page = await api(`/api/v1/vehicles/${encodeURIComponent(vin)}/timeline?${q}`);
  const first = num(run.first_seq) ?? 0;
  return (Array.isArray(page.entries) ? page.entries : []).filter((e) => (num(e.seq) ?? 0) >= first);
}

/** A run of readings the API folded, as one line; its readings are fetched on opening. */
function foldItem(vin, run) {
  const count = num(run.count) ?? 0;
  const odometer = num(run.odometer) ?? 0;
  const hours = num(run.engine_hours) ?? 0;
  let what = `${KM.format(count)} readings (${KM.format(odometer)} odometer, ${KM.format(hours)} engine hours)`;
  if (hours === 0) what = `${KM.format(count)} odometer readings`;
  if (odometer === 0) what = `${KM.format(count)} engine-hours readings`;
  const details = [];
  const range = run.odometer_km && typeof run.odometer_km === 'object' ? run.odometer_km : null;
  if (range) details.push(`${KM.format(num(range.from) ?? 0)} km → ${KM.format(num(range.to) ?? 0)} km`);
  details.push(`${formatTime(run.first_at)} – ${formatTime(run.at)}`);
  if (count > 1000) details.push('the newest 1,000 open');
  const list = el('ol', { class: 'folded', testid: 'timeline-folded', hidden: true });
  const toggle = el('button', { type: 'button', class: 'fold-toggle', testid: 'timeline-fold-toggle', 'aria-expanded': 'false' }, `… ${what}`);
  toggle.addEventListener('click', () => {
    const open = list.hidden;
    toggle.setAttribute('aria-expanded', String(open));
    list.hidden = !open;
    if (open && list.children.length === 0) {
      guarded(async () => {
        const readings = await runReadings(vin, run);
        list.replaceChildren(...readings.reverse().map(entryItem));
      });
    }
  });
  return el(
    'li',
    { testid: 'timeline-fold', class: 'fold', 'data-count': count, 'data-at': str(run.at) },
    el('time', { datetime: num(run.at) === null ? null : new Date(run.at).toISOString() }, formatTime(run.at)),
    el('span', { class: 'source' }, 'car'),
    el('span', { class: 'label' }, toggle),
    el('span', { class: 'detail' }, details.join(' · ')),
    list,
  );
}

function renderTimeline(t) {
  $('timeline').replaceChildren(...t.entries.map((e) => (e.kind === 'readings' ? foldItem(t.vin, e) : entryItem(e))));
  $('timeline-empty').hidden = t.entries.length > 0;
  $('timeline-more').hidden = t.next === null;
}

// ---------------------------------------------------------------------------------------
// Wiring

function navigateFleet(change) {
  const route = parseRoute();
  const base = route.view === 'fleet' ? route : { axis: 'service', category: '', limit: DEFAULT_LIMIT };
  location.hash = fleetHash({ ...base, ...change });
}

function start() {
  takeTokenFromFragment();
  $('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const value = $('token-input').value.trim();
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    $('token-input').value = '';
    render();
  });
  $('sign-out').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin('Signed out.');
  });
  $('axis').addEventListener('change', (e) => navigateFleet({ axis: e.target.value }));
  $('category').addEventListener('change', (e) => navigateFleet({ category: e.target.value }));
  $('cell-close').addEventListener('click', closeCell);
  $('timeline-kind').replaceChildren(
    ...Object.entries(TIMELINE_FILTERS).map(([value, f]) => el('option', { value }, f.label)),
  );
  $('timeline-kind').addEventListener('change', (e) => {
    const route = parseRoute();
    if (route.view !== 'vehicle') return;
    const kind = e.target.value;
    location.hash = `#/vehicle/${encodeURIComponent(route.vin)}${kind ? `?kind=${encodeURIComponent(kind)}` : ''}`;
  });
  $('timeline-more').addEventListener('click', () => {
    if (timeline && timeline.next) {
      const gen = generation;
      guarded(() => loadTimeline(gen, true));
    }
  });
  $('cell-more').addEventListener('click', () => {
    const route = parseRoute();
    if (cell && route.view === 'fleet') {
      guarded(() => loadCell(route, cell.maturity, cell.activity, generation, true));
    }
  });
  window.addEventListener('hashchange', () => {
    if (location.hash.startsWith('#token=')) takeTokenFromFragment();
    render();
  });
  render();
}

start();
