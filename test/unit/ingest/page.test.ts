import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { jobPageHtml, jobsPageHtml, pageHeaders } from '../../../functions/ingest/page.js';

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
const between = (html: string, open: string, close: string) => {
  const start = html.indexOf(open) + open.length;
  return html.slice(start, html.indexOf(close, start));
};

describe('job pages', () => {
  it('allow exactly their own inline script and style by hash, nothing inline besides', () => {
    const csp = pageHeaders()['content-security-policy']!;

    for (const html of [jobPageHtml('1f2e'), jobsPageHtml()]) {
      expect(csp).toContain(sha256(between(html, '<script>', '</script>')));
      expect(csp).toContain(sha256(between(html, '<style>', '</style>')));
    }
    expect(csp).not.toContain('unsafe-inline');
  });

  it('inline the browser files, the common script first, each page in a scope of its own', () => {
    const job = between(jobPageHtml('1f2e'), '<script>', '</script>');
    const jobs = between(jobsPageHtml(), '<script>', '</script>');

    expect(job.startsWith('(() => {')).toBe(true);
    expect(job.indexOf("'use strict'")).toBeLessThan(job.indexOf('function renderRates'));
    expect(job).toContain('function answerText');
    expect(jobs).toContain('const REFRESH_MS');
    expect(jobs).not.toContain('function renderRates');
  });

  it("hold a pipeline's steps section, hidden until the view has steps, drawn by steps.js before job.js runs", () => {
    const html = jobPageHtml('1f2e');
    const job = between(html, '<script>', '</script>');

    expect(html).toMatch(/<section id="steps-section" [^>]*hidden>/);
    expect(html).toContain('<ol id="steps" class="steps"></ol>');
    expect(job.indexOf('function renderSteps')).toBeGreaterThan(0);
    expect(job.indexOf('function renderSteps')).toBeLessThan(job.indexOf('renderSteps(view)'));
  });

  it('escapes the job id in the markup', () => {
    expect(jobPageHtml('<b>"x"</b>')).not.toContain('<b>"x"</b>');
  });
});
