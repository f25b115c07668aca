import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

  async function open(path: string, viewport = { width: 1000, height: 1160 }): Promise<Page> {
    const page = await browser.newPage({ viewport });
    page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
    });
    const res = await page.goto(`${stack().ingestUrl}${path}`);
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
});
