import type { JobsClient } from '../../functions/api/client.js';
import type { JobView } from '../../functions/api/jobs.js';
import type { StandInControl } from '../../infra/local/gemini/control.js';

/**
 * The cold-queue case of `npm run bench` (issue 22): 660 prompts at 600 RPM on a queue that has sent
 * nothing for over a minute, against N·60/RPM + latency; with the time to the first result and the
 * items planned again because they fell behind their plan (`item.replanned` in the worker's log).
 */
export const COLD_CASE = { model: 'gemini-bench-cold', items: 660, rpm: 600 };

/** Issue 22's target for a cold queue on the strict profile. */
export const COLD_TARGET = 1.15;

export async function measureCold(
  jobs: JobsClient,
  standIn: StandInControl,
  options: {
    runs: number;
    latencyMs: number;
    replans: () => number;
    waitDone: (id: string) => Promise<JobView>;
  },
) {
  const boundMs = (COLD_CASE.items * 60_000) / COLD_CASE.rpm + options.latencyMs;
  // Warm the functions and emulators on another model first: the case measures the cold queue, not a
  // freshly booted stack.
  const warm = await jobs.submit({
    model: 'gemini-bench',
    mode: 'realtime',
    prompts: Array.from({ length: 300 }, (_, i) => `warm ${i}`),
  });
  await options.waitDone(warm.id);
  const runs: Array<{
    wallMs: number;
    ratio: number;
    firstResultMs: number;
    replanned: number;
    rejected429: number;
  }> = [];
  for (let run = 0; run < options.runs; run++) {
    // Idle for over a minute: the queue is cold again (and its ledger's last minute empty).
    await new Promise((r) => setTimeout(r, 66_000));
    await standIn.reset();
    const replansBefore = options.replans();
    const prompts = Array.from({ length: COLD_CASE.items }, (_, i) => `Cold run ${run} prompt ${i}: say hi.`);
    const t0 = Date.now();
    const job = await jobs.submit({ model: COLD_CASE.model, mode: 'realtime', prompts });
    let firstResultMs = Number.NaN;
    for (;;) {
      const view = await jobs.get(job.id);
      if (
        view.counts.succeeded + view.counts.failed > 0 ||
        (view.status !== 'running' && view.status !== 'queued')
      ) {
        firstResultMs = Date.now() - t0;
        break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    await options.waitDone(job.id);
    const wallMs = Date.now() - t0;
    const model = (await standIn.stats()).models[COLD_CASE.model]!;
    runs.push({
      wallMs,
      ratio: Math.round((wallMs / boundMs) * 1000) / 1000,
      firstResultMs,
      replanned: options.replans() - replansBefore,
      rejected429: model.rejected429,
    });
  }
  const median = [...runs].sort((a, b) => a.ratio - b.ratio)[Math.floor(runs.length / 2)]!;
  return {
    ...COLD_CASE,
    latencyMs: options.latencyMs,
    boundMs,
    medianRatio: median.ratio,
    target: `≤ ${COLD_TARGET}`,
    runs,
  };
}
