/**
 * Simulated media fetching behind the worker's `MediaFetcher`: each item's media take simulated
 * time (mostly short, sometimes close to the item's media deadline, which the real fetcher enforces
 * by aborting: past it the fetch fails), and some fetches fail as a flaky origin would.
 */
import type { GenerateContentRequest, MediaRef } from '../../functions/core/jobs.js';
import type { MediaFetcher } from '../../functions/platform/media/index.js';
import type { SimClock } from './clock.js';
import type { Rng } from './rng.js';
import type { Trace } from './trace.js';

export interface MediaKnobs {
  /** Share of fetches that take up to the whole media deadline. */
  slowShare: number;
  failShare: number;
  /** The item's media deadline (`mediaDeadlinesFor`). */
  deadlineMs: number;
}

export class SimMedia implements MediaFetcher {
  constructor(
    private readonly clock: SimClock,
    private readonly rng: Rng,
    private readonly trace: Trace,
    private readonly knobs: MediaKnobs,
  ) {}

  async attach(request: GenerateContentRequest, media: MediaRef[]): Promise<GenerateContentRequest> {
    const k = this.knobs;
    const slow = this.rng.chance(k.slowShare);
    const ms = slow ? this.rng.int(k.deadlineMs / 2, k.deadlineMs + 5000) : this.rng.int(50, 1500);
    await this.clock.sleep(Math.min(ms, k.deadlineMs));
    if (ms > k.deadlineMs || this.rng.chance(k.failShare)) {
      this.trace.add(`media failed after ${Math.min(ms, k.deadlineMs)} ms`);
      throw Object.assign(new Error('media: the origin did not answer in time'), { permanent: false });
    }
    if (slow) this.trace.add(`media slow: ${ms} ms`);
    const parts = media.map((m) => ({ inlineData: { mimeType: m.mimeType ?? 'image/png', data: 'AAAA' } }));
    const contents = request.contents.map((c) => ({ ...c, parts: [...c.parts] }));
    contents.at(-1)?.parts.push(...parts);
    return { ...request, contents };
  }
}
