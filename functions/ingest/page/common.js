// @ts-check
/**
 * Browser code both pages start with: formatting, element building and JSON requests. Plain ES2020
 * with no build step: page.ts reads these files at cold start and inlines them, the common script
 * first, into one scope per page. Everything it shows goes through `textContent` or attributes set
 * one by one: data from the API is never parsed as HTML.
 */
'use strict';

const TERMINAL = ['succeeded', 'failed', 'cancelled'];
const STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
/** The element with this id, as any element (each page knows what its ids are). */
const $ = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function num(value) {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

function fmtInt(value) {
  return Math.round(num(value)).toLocaleString('en-US');
}

function fmtCompact(value) {
  const v = num(value);
  if (v >= 1e6) return (v / 1e6).toFixed(v >= 1e7 ? 0 : 1) + 'M';
  if (v >= 1e3) return (v / 1e3).toFixed(v >= 1e4 ? 0 : 1) + 'k';
  return String(v >= 10 ? Math.round(v) : Math.round(v * 10) / 10);
}

function fmtUsd(value) {
  const v = num(value);
  if (v === 0) return '$0';
  if (v < 0.01) return '$' + v.toFixed(6);
  if (v < 100) return '$' + v.toFixed(4);
  return '$' + v.toFixed(2);
}

function fmtDuration(ms) {
  let s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const pad = (n) => (n < 10 ? '0' : '') + n;
  if (h) return h + 'h ' + pad(m) + 'm';
  if (m) return m + 'm ' + pad(s) + 's';
  return s + 's';
}

function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleString();
}

function setStatus(node, status) {
  const known = STATUSES.includes(status) ? status : 'unknown';
  node.textContent = known === 'unknown' ? String(status || 'unknown') : known;
  node.className = 'badge s-' + known;
  node.dataset.status = known;
}

/** Three segments of a progress bar: succeeded, failed, cancelled, as shares of total. */
function setBar(segments, counts) {
  const total = num(counts?.total);
  const share = (n) => (total > 0 ? (100 * num(n)) / total : 0) + '%';
  segments[0].style.width = share(counts?.succeeded);
  segments[1].style.width = share(counts?.failed);
  segments[2].style.width = share(counts?.cancelled);
}

function doneOf(counts) {
  return num(counts.succeeded) + num(counts.failed) + num(counts.cancelled);
}

function setConn(text, bad) {
  const node = $('conn');
  if (!node) return;
  node.textContent = text;
  node.classList.toggle('bad', Boolean(bad));
}

/** fetch asking for JSON; a non-2xx answer becomes an Error with the API's message and status. */
async function getJson(url, init) {
  const res = await fetch(
    url,
    Object.assign({ cache: 'no-store', credentials: 'same-origin' }, init || {}, {
      headers: Object.assign({ accept: 'application/json' }, init?.headers || {}),
    }),
  );
  let body = null;
  try {
    body = await res.json();
  } catch (_) {
    body = null;
  }
  if (!res.ok) {
    const message =
      body?.error && typeof body.error.message === 'string' ? body.error.message : 'HTTP ' + res.status;
    const err = /** @type {Error & {status?: number}} */ (new Error(message));
    err.status = res.status;
    throw err;
  }
  return body;
}
