import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobPageHtml, pageHeaders } from '../../functions/ingest/page.js';
import { pipelineStepsFixture, pipelineViewFixture } from '../fixtures/pipeline-view.js';
import { createJob, getJob, stack } from '../helpers/e2e.js';

/**
 * The live job page and the jobs list page in a real browser (Debian's chromium driven by
 * playwright-core) against the local cloud: the page must run under the CSP ingest serves it with,
 * follow a job to its end, and cancel one. Screenshots go to `.local/` as artefacts.
 */
// The default model's 3,000 RPM is shared by tests that make no per-minute assertions; a few hundred
// items then take some seconds, so the page is seen moving.
// Its own model at 480 RPM: 80 items take about 17 s on a cold queue (it ramps up from a fifth of
// its rate), so the page sees them arrive even when the browser is slow to start on a loaded machine
// (at 3,000 RPM the job could end before the page loaded).
const MODEL = 'gemini-e2e-page';
const ARTEFACTS = resolve(import.meta.dirname, '..', '..', '.local');

/** Debian's chromium: found on PATH, else the package's standard path. */
function chromiumPath(): string {
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      const found = execFileSync('which', [name], { encoding: 'utf8' }).trim();
      if (found) return found;
    } catch {
      // not on PATH under this name
    }
  }
  const standard = '/usr/bin/chromium';
  if (!existsSync(standard)) throw new Error('chromium is not installed: apt-get install chromium');
  return standard;
}

const text = async (page: Page, selector: string) => (await page.locator(selector).textContent()) ?? '';
const count = async (page: Page, name: string) =>
  Number((await text(page, `#count-${name}`)).replace(/,/g, ''));

describe('the live job page, in a browser', () => {
  let browser: Browser;
  /** Uncaught errors and console errors (a CSP violation is one) of every page opened. */
  const problems: string[] = [];

  async function open(
    path: string,
    viewport = { width: 1000, height: 1160 },
    origin?: string,
  ): Promise<Page> {
    const page = await browser.newPage({ viewport });
    page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
    });
    const res = await page.goto(`${origin ?? stack().ingestUrl}${path}`);
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-type']).toMatch(/^text\/html/);
    expect(res?.headers()['content-security-policy']).toMatch(/script-src 'sha256-/);
    return page;
  }

  beforeAll(async () => {
    mkdirSync(ARTEFACTS, { recursive: true });
    browser = await chromium.launch({ executablePath: chromiumPath(), headless: true });
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('follows a job to its end: the counts rise, the bar reaches 100%, results show their keys', async () => {
    // Arrange
    const total = 80;
    const id = await createJob({
      model: MODEL,
      mode: 'realtime',
      requests: Array.from({ length: total }, (_, i) => ({
        key: `page-${i}`,
        prompt: `Live page item ${i}`,
      })),
    });

    // Act: read the page as it updates until the job is over.
    const page = await open(`/jobs/${id}`);
    const seen: number[] = [];
    let midway = false;
    const deadline = Date.now() + 45_000;
    while ((await page.locator('#status').getAttribute('data-status')) !== 'succeeded') {
      if (Date.now() > deadline)
        throw new Error(`the page did not show the job succeeded: ${seen.join(',')}`);
      const done = await count(page, 'succeeded');
      if (seen.at(-1) !== done) seen.push(done);
      if (!midway && done >= total / 3) {
        midway = true;
        await page.screenshot({ path: resolve(ARTEFACTS, 'job-page.png') });
      }
      await page.waitForTimeout(200);
    }
    await page.locator('#results li').first().waitFor();
    await page.screenshot({ path: resolve(ARTEFACTS, 'job-page-done.png'), fullPage: true });
    const phone = await open(`/jobs/${id}`, { width: 390, height: 844 });
    await phone.locator('#results li').first().waitFor();
    await phone.screenshot({ path: resolve(ARTEFACTS, 'job-page-phone.png') });
    const phoneOverflow = await phone.evaluate<number>('document.documentElement.scrollWidth - innerWidth');

    // Assert
    expect(seen.some((n) => n > 0 && n < total)).toBe(true);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(await text(page, '#percent')).toBe('100%');
    expect(await page.locator('#bar').getAttribute('aria-valuenow')).toBe('100');
    const [bar, filled] = await Promise.all([
      page.locator('#bar').boundingBox(),
      page.locator('#bar-succeeded').boundingBox(),
    ]);
    expect(filled!.width).toBeCloseTo(bar!.width, 0);
    expect(await count(page, 'total')).toBe(total);
    expect(await count(page, 'succeeded')).toBe(total);
    expect(await count(page, 'pending')).toBe(0);
    const first = page.locator('#results li').first();
    expect(await first.getAttribute('data-key')).toMatch(/^page-\d+$/);
    expect(await first.locator('.key').textContent()).toMatch(/^page-\d+$/);
    expect(await first.locator('.tag').textContent()).toBe('ok');
    expect(await page.locator('#chart-rpm polyline').count()).toBe(1);
    expect(await text(page, '#rpm-caption')).toMatch(/quota 480\/min/);
    expect(await text(page, '#path-realtime')).toBe(String(total));
    expect(await text(page, '[data-field="cost"]')).toMatch(/^\$0\.\d+$/);
    // Every answer came from the standard tier: its row costs the whole job, and nothing was saved.
    expect(await text(page, '[data-field="tier-standard"]')).toBe(await text(page, '[data-field="cost"]'));
    expect(await text(page, '[data-field="saved"]')).toBe('$0');
    expect(await page.locator('#cancel').isDisabled()).toBe(true);
    expect(phoneOverflow).toBeLessThanOrEqual(0);
    expect(problems).toEqual([]);
  }, 60_000);

  it('cancels a running job with the button (a second tap confirms)', async () => {
    // Arrange: enough items to keep the job running for a while.
    const id = await createJob({
      model: MODEL,
      mode: 'realtime',
      prompts: Array.from({ length: 600 }, (_, i) => `to cancel ${i}`),
    });
    const page = await open(`/jobs/${id}`);
    await page.locator('#cancel:enabled').waitFor();

    // Act
    await page.locator('#cancel').click();
    const armed = await text(page, '#cancel');
    await page.locator('#cancel').click();
    await page.locator('#status[data-status="cancelled"]').waitFor({ timeout: 10_000 });
    // The job turns cancelled at once; its pending items end just after (the page reads on until then).
    await page.locator('#count-pending').filter({ hasText: /^0$/ }).waitFor({ timeout: 30_000 });
    await page.screenshot({ path: resolve(ARTEFACTS, 'job-page-cancelled.png'), fullPage: true });
    const job = await getJob(id);

    // Assert
    expect(armed).toBe('Tap again to cancel');
    expect(job.status).toBe('cancelled');
    expect(job.counts.cancelled).toBeGreaterThan(0);
    expect(await count(page, 'cancelled')).toBe(job.counts.cancelled);
    expect(await text(page, '#percent')).toBe('100%');
    expect(await page.locator('#cancel').isDisabled()).toBe(true);
    expect(problems).toEqual([]);
  }, 50_000);

  it("lists the caller's jobs, each linking to its live page, which shows markup in data as text", async () => {
    // Arrange
    const key = '<img src=x onerror="document.title=1">';
    const id = await createJob({ model: MODEL, requests: [{ key, prompt: 'listed <b>bold</b>' }] });

    // Act
    const page = await open('/jobs');
    const link = page.locator(`#jobs li[data-job-id="${id}"] a`);
    await link.waitFor();
    await page.screenshot({ path: resolve(ARTEFACTS, 'jobs-page.png'), fullPage: true });
    await link.click();
    await page.waitForURL(`**/jobs/${id}`);
    await page.locator('#status[data-status="succeeded"]').waitFor({ timeout: 20_000 });
    await page.locator('#results li').first().waitFor();

    // Assert
    expect(await text(page, '#job-id')).toBe(id);
    expect(await count(page, 'succeeded')).toBe(1);
    expect(await text(page, '#results li .key')).toBe(key);
    expect(await text(page, '#results li .snippet')).toContain('<b>bold</b>');
    expect(await page.locator('#results img, #results b').count()).toBe(0);
    expect(problems).toEqual([]);
  }, 45_000);

  it("shows a pipeline's steps: a row per step with its own bar, and each model's share of a fan-out", async () => {
    // Arrange: the page as ingest serves it, in front of a job view with steps (the fixture's running
    // three-step pipeline); a model name with markup in it must show as text.
    const steps = pipelineStepsFixture();
    const byModel = steps[1]!.byModel!;
    byModel['<b>odd</b>'] = byModel['gemini-2.5-pro']!;
    delete byModel['gemini-2.5-pro'];
    const view = pipelineViewFixture({ steps });
    const server = createServer((req, res) => {
      if (req.url === '/jobs/job-1' && /text\/html/.test(req.headers.accept ?? '')) {
        res.writeHead(200, pageHeaders()).end(jobPageHtml('job-1'));
      } else if (req.url === '/jobs/job-1') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(view));
      } else if (req.url === '/jobs/job-1/events') {
        res.writeHead(200, { 'content-type': 'text/event-stream' }).write(': open\n\n');
      } else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    try {
      // Act
      const page = await open('/jobs/job-1', undefined, origin);
      await page.locator('#steps li.step').nth(2).waitFor();
      await page.screenshot({ path: resolve(ARTEFACTS, 'job-page-steps.png'), fullPage: true });
      const row = (name: string) => page.locator(`#steps li.step[data-step="${name}"]`);
      // The share each segment is given (its inline width: the drawn width animates towards it).
      const width = async (name: string, seg: string) =>
        Number.parseFloat(
          await row(name)
            .locator(`.seg.${seg}`)
            .evaluate((e) => (e as unknown as { style: { width: string } }).style.width),
        ) / 100;

      // Assert
      expect(await page.locator('#steps-section').isVisible()).toBe(true);
      expect(
        await page.locator('#steps li.step').evaluateAll((l) => l.map((e) => e.getAttribute('data-step'))),
      ).toEqual(['extract', 'answer', 'judge']);
      expect(await row('extract').locator('.step-done').textContent()).toBe('100% · 10 of 10');
      expect(await row('answer').locator('.step-done').textContent()).toBe('55% · 11 of 20');
      expect(await row('answer').locator('.bar').getAttribute('aria-valuenow')).toBe('55');
      expect(await width('extract', 'ok')).toBeCloseTo(0.9, 2);
      expect(await width('extract', 'err')).toBeCloseTo(0.1, 2);
      expect(await width('answer', 'ok')).toBeCloseTo(0.55, 2);
      expect(await width('judge', 'ok')).toBeCloseTo(0.2, 2);
      expect(await row('answer').locator('.mono').textContent()).toBe('gemini-2.5-flash // gemini-2.5-pro');
      expect(await row('extract').locator('.step-figures').textContent()).toBe(
        '9 succeeded · 1 failed · 0 pending · 1,200 in / 300 out tokens · $0.001200',
      );
      expect(await row('answer').locator('.step-models li').allTextContents()).toEqual([
        'gemini-2.5-flash: 6 succeeded · 0 failed · 1,200 in / 600 out tokens · $0.001800',
        '<b>odd</b>: 5 succeeded · 0 failed · 1,000 in / 500 out tokens · $0.0137',
      ]);
      expect(await page.locator('#steps b').count()).toBe(0);
      expect(await row('judge').locator('.step-models').count()).toBe(0);
      expect(problems).toEqual([]);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  }, 30_000);
});
