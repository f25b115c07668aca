// @ts-check
/**
 * Browser code of the jobs list page (`GET /jobs`, text/html). It reads `GET /jobs` with
 * `Accept: application/json` (`{jobs: JobView[], nextPageToken?}`), shows each job with its status,
 * progress, model, cost and creation time, linked to its live page, and pages on with `?pageToken=`.
 * The first page is read again every 5 s, so new jobs and their progress show up.

 * Same rule as the common script: text only, never HTML from a string.
 */
const REFRESH_MS = 5000;
const base = location.pathname.replace(/\/+$/, '');
/** id → JobView, in the order shown (newest first, as the API lists them). */
let order = [];
const jobs = new Map();
let nextPageToken = null;
let morePages = 0;
let timer = null;

function merge(list, replaceHead) {
  const ids = [];
  for (const job of list) {
    if (!job || typeof job.id !== 'string') continue;
    jobs.set(job.id, job);
    ids.push(job.id);
  }
  if (replaceHead) order = ids.concat(order.filter((id) => !ids.includes(id)));
  else order = order.concat(ids.filter((id) => !order.includes(id)));
}

function render() {
  const list = $('jobs');
  while (list.firstChild) list.removeChild(list.firstChild);
  for (const id of order) list.appendChild(item(jobs.get(id)));
  $('empty').hidden = order.length > 0;
  $('more').hidden = !nextPageToken;
}

function item(job) {
  const li = el('li');
  li.dataset.jobId = job.id;
  const row = el('div', null, 'row');
  const link = el('a', job.id, 'mono');
  link.href = base + '/' + encodeURIComponent(job.id);
  row.appendChild(link);
  const badge = el('span');
  setStatus(badge, job.status);
  row.appendChild(badge);
  li.appendChild(row);

  const counts = job.counts || {};
  const total = num(counts.total);
  const done = doneOf(counts);
  const barBox = el('div', null, 'bar mini');
  const segments = [el('span', null, 'seg ok'), el('span', null, 'seg err'), el('span', null, 'seg cancel')];
  for (const s of segments) barBox.appendChild(s);
  setBar(segments, counts);
  li.appendChild(barBox);

  const meta = el('p', null, 'meta');
  meta.appendChild(
    el(
      'span',
      fmtInt(done) +
        ' / ' +
        fmtInt(total) +
        ' done' +
        (num(counts.failed) ? ', ' + fmtInt(counts.failed) + ' failed' : ''),
    ),
  );
  meta.appendChild(el('span', job.model || ''));
  if (job.mode) meta.appendChild(el('span', job.mode));
  meta.appendChild(el('span', fmtUsd(job.costUsd)));
  meta.appendChild(el('span', fmtTime(job.createdAt)));
  li.appendChild(meta);
  return li;
}

async function load(pageToken) {
  const url = base + (pageToken ? '?pageToken=' + encodeURIComponent(pageToken) : '');
  const page = await getJson(url);
  const list = page && Array.isArray(page.jobs) ? page.jobs : [];
  return { list, next: page && typeof page.nextPageToken === 'string' ? page.nextPageToken : null };
}

async function refresh() {
  if (timer) clearTimeout(timer);
  timer = null;
  try {
    const page = await load(null);
    merge(page.list, true);
    if (!morePages) nextPageToken = page.next;
    render();
    setConn('Updated ' + new Date().toLocaleTimeString() + '.', false);
  } catch (err) {
    setConn('Could not list the jobs: ' + err.message + '; retrying.', true);
  }
  timer = setTimeout(refresh, REFRESH_MS);
}

$('more').addEventListener('click', async () => {
  const button = $('more');
  button.disabled = true;
  try {
    const page = await load(nextPageToken);
    morePages++;
    merge(page.list, false);
    nextPageToken = page.next;
    render();
  } catch (err) {
    setConn('Could not load more: ' + err.message, true);
  } finally {
    button.disabled = false;
  }
});

refresh();
