// The operator console: plain DOM code over the JSON APIs of this origin.
// Every value from the server is written with textContent, never as HTML.
'use strict';

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = 'console-token';
let timers = [];

function token() { return sessionStorage.getItem(TOKEN_KEY); }

// A request with the admin's token; answers the parsed JSON or throws an
// Error carrying the problem+json title.
async function api(path, options = {}) {
  const headers = Object.assign({ Authorization: 'Bearer ' + token() }, options.headers || {});
  const response = await fetch(path, Object.assign({}, options, { headers }));
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (_) { body = null; }
  if (!response.ok) {
    const title = body && (body.detail || body.title) ? (body.detail || body.title) : response.statusText;
    const error = new Error(response.status + ': ' + title);
    error.status = response.status;
    throw error;
  }
  return body;
}

function cell(row, value, className) {
  const td = document.createElement('td');
  td.textContent = value === null || value === undefined ? '—' : String(value);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function fill(tableId, items, render) {
  const body = $(tableId).querySelector('tbody');
  body.replaceChildren();
  for (const item of items) {
    const row = document.createElement('tr');
    render(row, item);
    body.appendChild(row);
  }
}

function describe(dl, pairs) {
  dl.replaceChildren();
  for (const [name, value, cls] of pairs) {
    const dt = document.createElement('dt');
    dt.textContent = name;
    const dd = document.createElement('dd');
    dd.textContent = value === null || value === undefined ? '—' : String(value);
    if (cls) dd.className = cls;
    dd.dataset.field = name;
    dl.append(dt, dd);
  }
}

function time(text) { return text ? new Date(text).toISOString().replace('T', ' ').slice(0, 19) : null; }
function money(price) { return price ? (price.minor + ' ' + price.currency + ' (minor units)') : null; }

function orderLink(row, orderId) {
  const td = document.createElement('td');
  const a = document.createElement('a');
  a.className = 'order';
  a.textContent = orderId;
  a.addEventListener('click', () => { $('order-id').value = orderId; findOrder(); });
  td.appendChild(a);
  row.appendChild(td);
}

async function findOrder() {
  const id = $('order-id').value.trim();
  $('order-error').textContent = '';
  $('order-view').hidden = true;
  try {
    const [order, saga] = await Promise.all([
      api('/orders/' + encodeURIComponent(id)),
      api('/sagas/' + encodeURIComponent(id)).catch((e) => (e.status === 404 ? null : Promise.reject(e))),
    ]);
    describe($('order-state'), [
      ['order', order.order_id], ['customer', order.customer_id],
      ['order status', order.status, 'status-' + order.status], ['reason', order.status_reason],
      ['total', money(order.total)], ['payment', order.payment_status, 'status-' + order.payment_status],
      ['shipment', order.shipment_status], ['tracking', order.tracking_ref],
      ['placed', time(order.placed_at)], ['version', order.version],
    ]);
    describe($('saga-state'), saga ? [
      ['saga status', saga.status, 'status-' + saga.status], ['current step', saga.current_step],
      ['attempt', saga.attempt], ['deadline', time(saga.deadline)],
      ['last error', saga.last_error], ['reason', saga.reason], ['note', saga.note],
      ['last event', saga.last_event],
    ] : [['saga', 'none yet']]);
    fill('saga-steps', saga ? saga.history : [], (row, s) => {
      cell(row, s.step); cell(row, time(s.started_at)); cell(row, s.attempts); cell(row, s.outcome || 'running');
    });
    fill('events', order.timeline, (row, e) => {
      cell(row, e.source); cell(row, e.sequence); cell(row, e.event_type);
      cell(row, time(e.occurred_at)); cell(row, JSON.stringify(e.detail), 'payload');
    });
    $('order-view').hidden = false;
  } catch (e) {
    $('order-error').textContent = e.message;
  }
}

async function loadRecent() {
  const page = await api('/sagas?limit=10');
  fill('recent', page.sagas, (row, s) => {
    orderLink(row, s.order_id); cell(row, s.status, 'status-' + s.status);
    cell(row, s.current_step); cell(row, time(s.started_at));
  });
}

async function sagaAction(orderId, action, note) {
  const options = { method: 'POST', headers: { 'Idempotency-Key': 'console-' + action + '-' + orderId + '-' + Date.now() } };
  if (action === 'resolve') {
    options.headers['Content-Type'] = 'application/json';
    options.body = JSON.stringify({ note });
  }
  try {
    await api('/console/api/sagas/' + orderId + '/' + action, options);
    $('attention-error').textContent = '';
  } catch (e) {
    $('attention-error').textContent = action + ' ' + orderId + ': ' + e.message;
  }
  await loadAttention();
}

async function loadAttention() {
  const page = await api('/sagas?status=needs_attention&limit=50');
  $('attention-empty').hidden = page.sagas.length > 0;
  fill('attention', page.sagas, (row, s) => {
    row.dataset.orderId = s.order_id;
    orderLink(row, s.order_id); cell(row, s.current_step); cell(row, s.reason);
    cell(row, s.last_error); cell(row, time(s.updated_at));
    const td = document.createElement('td');
    const retry = document.createElement('button');
    retry.textContent = 'Retry';
    retry.className = 'retry';
    retry.addEventListener('click', () => sagaAction(s.order_id, 'retry'));
    const note = document.createElement('input');
    note.className = 'note';
    note.placeholder = 'note (how it was settled)';
    const resolve = document.createElement('button');
    resolve.textContent = 'Resolve';
    resolve.className = 'resolve';
    resolve.addEventListener('click', () => {
      if (!note.value.trim()) { $('attention-error').textContent = 'Resolve needs a note'; return; }
      sagaAction(s.order_id, 'resolve', note.value.trim());
    });
    td.append(retry, ' ', note, ' ', resolve);
    row.appendChild(td);
  });
}

async function loadLag() {
  try {
    const report = await api('/console/api/lag');
    const rows = Object.entries(report.projections || {});
    fill('lag', rows, (row, [name, lag]) => {
      row.dataset.projection = name;
      cell(row, name); cell(row, lag.lag_events, 'lag-events'); cell(row, lag.lag_seconds.toFixed(1));
    });
    $('lag-updated').textContent = 'updated ' + new Date().toLocaleTimeString();
    $('lag-error').textContent = '';
  } catch (e) {
    $('lag-error').textContent = e.message;
  }
}

async function letterAction(id, action) {
  try {
    await api('/console/api/dead-letters/' + id + '/' + action, { method: 'POST' });
    $('dead-letters-error').textContent = '';
  } catch (e) {
    $('dead-letters-error').textContent = action + ' ' + id + ': ' + e.message;
  }
  await loadLetters();
}

async function loadLetters() {
  const page = await api('/dead-letters?limit=50');
  $('dead-letters-empty').hidden = page.dead_letters.length > 0;
  fill('dead-letters', page.dead_letters, (row, l) => {
    row.dataset.id = l.id;
    cell(row, l.id); cell(row, l.projection); cell(row, l.topic + ':' + l.partition + ':' + l.offset);
    cell(row, l.key); cell(row, l.error); cell(row, time(l.created_at));
    const td = document.createElement('td');
    for (const action of ['retry', 'skip']) {
      const button = document.createElement('button');
      button.textContent = action === 'retry' ? 'Retry' : 'Skip';
      button.className = action;
      button.addEventListener('click', () => letterAction(l.id, action));
      td.append(button, ' ');
    }
    row.appendChild(td);
  });
}

function every(ms, load) {
  const run = () => load().catch(() => {});
  run();
  timers.push(setInterval(run, ms));
}

async function signIn() {
  const value = $('token').value.trim() || token();
  if (!value) return;
  sessionStorage.setItem(TOKEN_KEY, value);
  $('login-error').textContent = '';
  try {
    // Every panel needs an admin; a customer's token stops here.
    await api('/sagas?status=needs_attention&limit=1');
  } catch (e) {
    sessionStorage.removeItem(TOKEN_KEY);
    $('login-error').textContent = e.status === 403 ? 'This console is for admins only.' : e.message;
    return;
  }
  $('login-panel').hidden = true;
  $('console').hidden = false;
  $('logout').hidden = false;
  $('who').textContent = 'signed in';
  every(2000, loadLag);
  every(5000, loadAttention);
  every(5000, loadLetters);
  every(10000, loadRecent);
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  timers.forEach(clearInterval);
  timers = [];
  location.reload();
}

document.addEventListener('DOMContentLoaded', () => {
  $('login').addEventListener('click', signIn);
  $('logout').addEventListener('click', signOut);
  $('find').addEventListener('click', findOrder);
  $('order-id').addEventListener('keydown', (e) => { if (e.key === 'Enter') findOrder(); });
  if (token()) signIn();
});
