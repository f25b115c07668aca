/**
 * The clients of a simulated run: each submits its job as a client of the jobs API would (ingest's
 * path: the lifecycle's create with an Idempotency-Key, then the first enqueue task), sends it again
 * when the call fails or hangs, and cancels it if its plan says so.
 */
import { queueIdForModel } from '../../functions/core/quotas.js';
import { normalizeJobRequest } from '../../functions/core/requests.js';
import type { SimClock } from './clock.js';
import { promptOf } from './gemini.js';
import type { Scenario } from './scenario.js';
import type { Trace } from './trace.js';
import type { World } from './world.js';

const CALLBACK_URL = 'https://example.test/callback';

/** The clients: submit each job (retrying as a client would), and cancel the ones meant to be. */
export class Clients {
  busy = 0;

  constructor(
    private readonly scenario: Scenario,
    private readonly w: World,
    private readonly clock: SimClock,
    private readonly trace: Trace,
  ) {}

  start(): void {
    this.scenario.jobs.forEach((plan, k) => {
      this.busy++;
      this.clock.at(plan.createAtMs, () => void this.submit(k).finally(() => this.busy--));
    });
  }

  /** `POST /jobs` with an Idempotency-Key; a failed or hung call is sent again, up to 4 times. */
  private async submit(k: number): Promise<void> {
    const plan = this.scenario.jobs[k]!;
    for (let attempt = 0; attempt < 4; attempt++) {
      // Ingest names a job anew on every request; the prompts carry the name, for Gemini's books.
      const id = `j${k}${'abcd'[attempt]}`;
      const media = [{ url: `https://media.example.test/${id}.png`, mimeType: 'image/png' }];
      const body = {
        model: plan.model,
        requests: Array.from({ length: plan.items }, (_, i) => ({
          prompt: promptOf(id, i),
          ...(plan.media ? { media } : {}),
        })),
        ...(plan.callback ? { callbackUrl: CALLBACK_URL } : {}),
      };
      const normalized = normalizeJobRequest(body, this.w.quotas);
      const spec = { id, model: plan.model, mode: 'realtime' as const, total: plan.items, source: 'api' };
      const call = (async () => {
        const stored = await this.w.lifecycle.create(
          {
            ...spec,
            paths: { realtime: plan.items, batch: 0 },
            ...(plan.callback ? { callbackUrl: CALLBACK_URL } : {}),
          },
          normalized.items,
          { keyId: `key-${k}`, bodyHash: `body-${k}` },
        );
        if (!stored.replayed) await this.w.lifecycle.startEnqueue(stored.jobId);
        return stored.jobId;
      })();
      const answer = await Promise.race([call.catch((e: Error) => e), this.clock.sleep(30_000)]);
      if (typeof answer === 'string') {
        this.trace.add(
          `client ${k}: job ${answer} created (${queueIdForModel(plan.model)}, ${plan.items} items)`,
        );
        if (plan.cancelAtMs !== undefined) await this.cancel(answer, plan.cancelAtMs);
        return;
      }
      this.trace.add(`client ${k}: create ${id} ${answer ? `failed: ${answer.message}` : 'timed out'}`);
      await this.clock.sleep(1000);
    }
  }

  private async cancel(jobId: string, atMs: number): Promise<void> {
    await this.clock.sleep(atMs - this.clock.now());
    for (let attempt = 0; attempt < 3; attempt++) {
      const answer = await Promise.race([
        this.w.lifecycle.cancel(jobId).then(
          () => 'ok',
          (e: Error) => e.message,
        ),
        this.clock.sleep(30_000).then(() => 'timed out'),
      ]);
      this.trace.add(`client: cancel ${jobId}: ${answer}`);
      if (answer === 'ok') return;
      await this.clock.sleep(1000);
    }
  }
}
