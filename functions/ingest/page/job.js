// @ts-check
/**
 * Browser code of the live job page (`GET /jobs/{id}`, text/html). It reads the job with
 * `Accept: application/json` every 1.5 s until the job is terminal, listens to
 * `GET /jobs/{id}/events` (EventSource: `result` per finished item, `done` with the final job) for
 * the latest results (results.js), a pipeline's steps (steps.js), draws the request and token rates of successive
 * readings against the model's quota (`quota: {rpm, tpm}` in the job, when the server knows it;
 * chart.js), and cancels with `POST /jobs/{id}/cancel` after a second tap. Every URL is
 * derived from the page's own path, so the page works wherever the function is mounted.

 * Same rule as the common script: text only, never HTML from a string.
 */
const POLL_MS = 1500;
const RATE_WINDOW_MS = 10000;
const KEEP_READINGS_MS = 15 * 60 * 1000;
const LATEST = 20;
const SVG_NS = 'http://www.w3.org/2000/svg';

const base = location.pathname.replace(/\/+$/, '');
const listLink = $('all-jobs');
if (listLink) listLink.href = base.replace(/\/[^/]*$/, '') || '/';
$('download').href = base + '/results?format=jsonl';

const bar = [$('bar-succeeded'), $('bar-failed'), $('bar-cancelled')];
let view = null;
let readings = [];
let latest = [];
let received = 0;
let renderTimer = null;
let pollTimer = null;
let polling = false;
let settleUntil = 0;
let source = null;

function terminal(v) {
  return Boolean(v) && TERMINAL.includes(v.status);
}

/** Terminal with nothing pending: a cancel turns the job cancelled first and its items just after. */
function settled(v) {
  return terminal(v) && num(v.counts.pending) === 0;
}

/** Applies a JobView, unless it is older than the one shown (jobs never leave a terminal status). */
function apply(v) {
  if (!v || typeof v !== 'object' || !v.counts) return;
  if (terminal(view) && (!terminal(v) || num(v.counts.pending) > num(view.counts.pending))) return;
  // A view that leaves the quota out (the stream's done event) keeps the one last read.
  if (v.quota === undefined && view && view.quota) v.quota = view.quota;
  view = v;
  record(v);
  render();
}

function record(v) {
  const now = Date.now();
  readings.push({
    t: now,
    requests: num(v.counts.succeeded) + num(v.counts.failed),
    tokens: num(v.usage?.promptTokens),
  });
  readings = readings.filter((r) => now - r.t <= KEEP_READINGS_MS);
}

/** Per-minute rate of a reading field, each point over the readings of the last RATE_WINDOW_MS. */
function rates(field) {
  const points = [];
  let j = 0;
  for (let i = 1; i < readings.length; i++) {
    const r = readings[i];
    while (j < i - 1 && r.t - readings[j + 1].t >= RATE_WINDOW_MS) j++;
    const from = readings[j];
    const dt = r.t - from.t;
    if (dt < 500) continue;
    points.push({ t: r.t, v: Math.max(0, ((r[field] - from[field]) * 60000) / dt) });
  }
  return points;
}

function render() {
  if (!view) return;
  const c = view.counts;
  const total = num(c.total);
  const done = doneOf(c);
  const pct = total > 0 ? Math.floor((100 * done) / total) : terminal(view) ? 100 : 0;

  setStatus($('status'), view.status);
  document.title = 'Job ' + view.id + ' · ' + view.status;
  $('model').textContent = view.model || '';
  $('mode').textContent = view.mode ? view.mode + ' path' : '';
  $('created').textContent = view.createdAt ? 'created ' + fmtTime(view.createdAt) : '';
  const start = view.startedAt ? Date.parse(view.startedAt) : NaN;
  const end = view.finishedAt ? Date.parse(view.finishedAt) : Date.now();
  $('elapsed').textContent = Number.isNaN(start)
    ? ''
    : (view.finishedAt ? 'took ' : 'running for ') + fmtDuration(end - start);

  const notice = $('notice');
  notice.hidden = !view.notice;
  notice.textContent = view.notice || '';

  setBar(bar, c);
  const barBox = $('bar');
  barBox.setAttribute('aria-valuenow', String(pct));
  barBox.setAttribute('aria-valuetext', pct + '% (' + fmtInt(done) + ' of ' + fmtInt(total) + ')');
  $('percent').textContent = pct + '%';
  $('done-of').textContent = fmtInt(done) + ' of ' + fmtInt(total) + ' items finished';
  for (const name of ['total', 'succeeded', 'failed', 'cancelled', 'pending']) {
    $('count-' + name).textContent = fmtInt(c[name]);
  }

  renderRates();
  renderSteps(view);
  renderUsage();
  renderPaths();
  renderBatches();

  const cancel = $('cancel');
  if (terminal(view)) {
    cancel.disabled = true;
    disarm();
  } else if (!cancelling) cancel.disabled = false;
}

function humanize(key) {
  const words = String(key)
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function renderUsage() {
  const box = $('usage');
  while (box.firstChild) box.removeChild(box.firstChild);
  const usage = view.usage && typeof view.usage === 'object' ? view.usage : {};
  const keys = Object.keys(usage).filter((k) => typeof usage[k] === 'number');
  keys.sort((a, b) => rank(a) - rank(b));
  for (const k of keys) box.appendChild(pair(humanize(k), fmtInt(usage[k]), 'usage-' + k));
  box.appendChild(pair('Cost', fmtUsd(view.costUsd), 'cost'));
  renderTiers(box);
}

const TIERS = ['standard', 'flex', 'priority', 'batch'];
const TIER_NAMES = { standard: 'Standard', flex: 'Flex', priority: 'Priority', batch: 'Batch API' };

/** Items and cost per tier that served them, and the money saved against all-standard. */
function renderTiers(box) {
  const tiers = view.tiers && typeof view.tiers === 'object' ? view.tiers : null;
  if (!tiers) return;
  for (const tier of TIERS) {
    const t = tiers[tier];
    if (!t || typeof t !== 'object') continue;
    const items = num(t.items);
    const label = TIER_NAMES[tier] + ' (' + fmtInt(items) + (items === 1 ? ' item)' : ' items)');
    box.appendChild(pair(label, fmtUsd(t.costUsd), 'tier-' + tier));
  }
  if (typeof view.savedUsd === 'number') {
    const saved = view.savedUsd;
    box.appendChild(
      saved >= 0
        ? pair('Saved against standard', fmtUsd(saved), 'saved')
        : pair('Over standard', fmtUsd(-saved), 'saved'),
    );
  }
  // Gemini's implicit cache: the share of answers that read cached input, and what it saved.
  const ic = view.implicitCache && typeof view.implicitCache === 'object' ? view.implicitCache : null;
  if (ic) {
    const rate =
      Math.round(num(ic.hitRate) * 100) + '% of answers, ' + fmtInt(num(ic.cachedTokens)) + ' tokens';
    box.appendChild(pair('Implicit cache', rate, 'implicit-cache'));
    box.appendChild(pair('Saved by the implicit cache', fmtUsd(ic.savedUsd), 'implicit-cache-saved'));
  }
}

function rank(key) {
  const i = ['promptTokens', 'outputTokens'].indexOf(key);
  return i < 0 ? 2 : i;
}

function pair(label, value, id) {
  const div = el('div');
  div.appendChild(el('dt', label));
  const dd = el('dd', value);
  if (id) dd.dataset.field = id;
  div.appendChild(dd);
  return div;
}

function renderPaths() {
  const paths = view.paths && typeof view.paths === 'object' ? view.paths : null;
  $('path-realtime').textContent = paths
    ? fmtInt(paths.realtime)
    : view.mode === 'realtime'
      ? fmtInt(view.counts.total)
      : '0';
  $('path-batch').textContent = paths
    ? fmtInt(paths.batch)
    : view.mode === 'batch'
      ? fmtInt(view.counts.total)
      : '0';
}

function renderBatches() {
  const batches = Array.isArray(view.batches) ? view.batches : [];
  $('batches-section').hidden = batches.length === 0;
  const body = $('batches');
  while (body.firstChild) body.removeChild(body.firstChild);
  for (const b of batches) {
    const tr = el('tr');
    const s = b.stats || null;
    tr.appendChild(el('td', b.name || '(not created yet)', 'mono'));
    tr.appendChild(el('td', b.state));
    tr.appendChild(el('td', fmtInt(b.items)));
    tr.appendChild(el('td', s ? fmtInt(s.successfulRequestCount) : '–'));
    tr.appendChild(el('td', s ? fmtInt(s.failedRequestCount) : '–'));
    tr.appendChild(el('td', s ? fmtInt(s.pendingRequestCount) : '–'));
    tr.appendChild(el('td', b.fallback || ''));
    body.appendChild(tr);
  }
}

// Counts, from the job itself: read until the job is settled, and at most a minute after it ended.

async function refresh() {
  pollTimer = null;
  polling = true;
  try {
    apply(await getJson(base));
  } catch (err) {
    if (err.status === 404) {
      setStatus($('status'), 'not found');
      setConn('No such job (or it belongs to someone else).', true);
      if (source) source.close();
      return;
    }
    setConn('Could not read the job: ' + err.message + '; retrying.', true);
  } finally {
    polling = false;
  }
  if (terminal(view) && !settleUntil) settleUntil = Date.now() + 60000;
  if (!settled(view) && (!settleUntil || Date.now() < settleUntil)) pollTimer = setTimeout(refresh, POLL_MS);
  else if (source && source.readyState === EventSource.CLOSED) setConn('Finished.', false);
}

function keepPolling() {
  if (!pollTimer && !polling && !settled(view)) refresh();
}

// Cancel: a first tap arms the button, a second within a few seconds cancels.

let armed = null;
let cancelling = false;

function disarm() {
  if (armed) clearTimeout(armed);
  armed = null;
  const button = $('cancel');
  button.classList.remove('armed');
  button.textContent = 'Cancel job';
}

$('cancel').addEventListener('click', async () => {
  const button = $('cancel');
  const note = $('cancel-note');
  if (!armed) {
    armed = setTimeout(() => {
      disarm();
      note.textContent = '';
    }, 5000);
    button.classList.add('armed');
    button.textContent = 'Tap again to cancel';
    note.textContent = 'Pending items will not be sent.';
    return;
  }
  disarm();
  cancelling = true;
  button.disabled = true;
  note.textContent = 'Cancelling…';
  try {
    apply(
      await getJson(base + '/cancel', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      }),
    );
    note.textContent = 'Cancelled.';
    keepPolling();
  } catch (err) {
    note.textContent = 'Cancel failed: ' + err.message;
    button.disabled = terminal(view);
  } finally {
    cancelling = false;
  }
});

refresh();
listen();
