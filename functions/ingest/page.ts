/**
 * The live job page (`GET /jobs/{id}` with `Accept: text/html`) and the jobs list page (`GET /jobs`).
 * Each export returns a whole HTML document: markup, one inline stylesheet and one inline script,
 * no external resources and no framework. The page then reads the same URLs as JSON (and the job's
 * event stream) from the browser.
 *
 * Serve them with {@link pageHeaders}. The browser code and style are files of their own (`page/`),
 * read once per instance. The route validates the job id; it is escaped here all the same.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The page's browser files: `page/*.js` (checked with `// @ts-check`, linted) and `page/style.css`. */
const PAGE_DIR = join(import.meta.dirname, 'page');

function cspHash(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

interface PageAssets {
  jobScript: string;
  jobsScript: string;
  style: string;
  headers: Readonly<Record<string, string>>;
}

let assets: PageAssets | undefined;

/**
 * Reads the browser files once per instance (the first page served: a cold start's work) and
 * hashes them for the Content-Security-Policy. One script per page: the shared helpers and the
 * page's own code, in a scope of their own.
 */
function pageAssets(): PageAssets {
  if (assets) return assets;
  const read = (name: string) => readFileSync(join(PAGE_DIR, name), 'utf8');
  const scope = (...names: string[]) => `(() => {\n${names.map(read).join('\n')}})();`;
  const jobScript = scope('common.js', 'chart.js', 'results.js', 'steps.js', 'job.js');
  const jobsScript = scope('common.js', 'jobs.js');
  const style = read('style.css');
  const csp = [
    "default-src 'none'",
    `script-src ${cspHash(jobScript)} ${cspHash(jobsScript)}`,
    `style-src ${cspHash(style)}`,
    "connect-src 'self'",
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "require-trusted-types-for 'script'",
    "trusted-types 'none'",
  ].join('; ');
  assets = {
    jobScript,
    jobsScript,
    style,
    // `Vary: Accept` because the same URL answers JSON to API clients; `no-store` because the page
    // is only a shell and a cached one would hide a newer script.
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': csp,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'cache-control': 'no-store',
      vary: 'Accept',
    },
  };
  return assets;
}

/**
 * The headers of a page answer. Its Content-Security-Policy allows exactly the inline script and
 * style of these pages by their SHA-256 hashes (no `unsafe-inline`, no nonce to thread through),
 * requests to this origin only, and Trusted Types so no script can write HTML from a string.
 */
export function pageHeaders(): Readonly<Record<string, string>> {
  return pageAssets().headers;
}

/** Escapes text for an HTML text node or a quoted attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function documentOf(title: string, body: string, script: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>${title}</title>
<style>${pageAssets().style}</style>
</head>
<body>
<main>
${body}
</main>
<script>${script}</script>
</body>
</html>
`;
}

/** The live page of one job. */
export function jobPageHtml(jobId: string): string {
  const id = escapeHtml(jobId);
  const count = (name: string, label: string) =>
    `<div><dt>${label}</dt><dd id="count-${name}" class="c-${name}">–</dd></div>`;
  const body = `<nav><a id="all-jobs" href="./">All jobs</a></nav>
<div class="head">
  <div>
    <h1>Job <code id="job-id">${id}</code></h1>
    <p class="meta"><span id="status" class="badge">loading</span><span id="model"></span><span id="mode"></span><span id="created"></span><span id="elapsed"></span></p>
  </div>
  <div><button id="cancel" type="button" disabled>Cancel job</button> <span id="cancel-note" class="muted" role="status"></span></div>
</div>
<p id="conn" class="conn" role="status">Loading…</p>
<p id="notice" class="notice" hidden></p>
<section aria-labelledby="h-progress">
  <h2 id="h-progress">Progress</h2>
  <div id="bar" class="bar" role="progressbar" aria-label="Items finished" aria-valuemin="0" aria-valuemax="100" aria-valuenow="0">
    <span id="bar-succeeded" class="seg ok"></span><span id="bar-failed" class="seg err"></span><span id="bar-cancelled" class="seg cancel"></span>
  </div>
  <div class="progress-line"><span><span id="percent" class="percent">0%</span> <span id="done-of" class="muted"></span></span><span id="eta" class="muted"></span></div>
  <dl class="counts">
    ${count('total', 'Total')}
    ${count('succeeded', 'Succeeded')}
    ${count('failed', 'Failed')}
    ${count('cancelled', 'Cancelled')}
    ${count('pending', 'Pending')}
  </dl>
</section>
<section id="steps-section" aria-labelledby="h-steps" hidden>
  <h2 id="h-steps">Steps</h2>
  <ol id="steps" class="steps"></ol>
</section>
<div class="grid">
  <section aria-labelledby="h-rate">
    <h2 id="h-rate">Rate against the quota</h2>
    <figure><svg id="chart-rpm" class="chart" viewBox="0 0 320 120" role="img" aria-label="Requests per minute over time"></svg><figcaption id="rpm-caption"></figcaption></figure>
    <figure><svg id="chart-tpm" class="chart" viewBox="0 0 320 120" role="img" aria-label="Input tokens per minute over time"></svg><figcaption id="tpm-caption"></figcaption></figure>
  </section>
  <div class="stack">
    <section aria-labelledby="h-usage">
      <h2 id="h-usage">Tokens and cost</h2>
      <dl id="usage" class="counts"></dl>
    </section>
    <section aria-labelledby="h-paths">
      <h2 id="h-paths">Paths taken</h2>
      <dl class="counts">
        <div><dt>Realtime</dt><dd id="path-realtime">–</dd></div>
        <div><dt>Batch API</dt><dd id="path-batch">–</dd></div>
      </dl>
    </section>
  </div>
</div>
<section id="batches-section" aria-labelledby="h-batches" hidden>
  <h2 id="h-batches">Batches</h2>
  <div class="scroll"><table>
    <thead><tr><th>Batch</th><th>State</th><th>Items</th><th>Succeeded</th><th>Failed</th><th>Pending</th><th>Fallback</th></tr></thead>
    <tbody id="batches"></tbody>
  </table></div>
</section>
<section aria-labelledby="h-results">
  <h2 id="h-results">Latest results</h2>
  <p class="meta"><span id="received"></span><a id="download" href="">All results (JSONL)</a></p>
  <p id="results-empty" class="muted">None yet.</p>
  <ol id="results" class="results"></ol>
</section>`;
  return documentOf(`Job ${id}`, body, pageAssets().jobScript);
}

/** The caller's jobs, as the API lists them, each linking to its live page. */
export function jobsPageHtml(): string {
  const body = `<h1>Jobs</h1>
<p id="conn" class="conn" role="status">Loading…</p>
<section aria-label="Jobs">
  <p id="empty" class="muted" hidden>No jobs yet.</p>
  <ul id="jobs" class="jobs"></ul>
</section>
<button id="more" class="plain" type="button" hidden>Load more</button>`;
  return documentOf('Jobs', body, pageAssets().jobsScript);
}
