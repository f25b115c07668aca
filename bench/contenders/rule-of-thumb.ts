/**
 * The seed's fourth pattern: the semaphore and 2^n retry of semaphore-retry.ts, sized by the seed's
 * rule of thumb, concurrency = ceil(RPM/60 × latency_s) × 0.7 (rounded down, at least 1). The rule
 * knows requests per minute only: TPM does not enter it.
 *
 * `npx tsx bench/contenders/rule-of-thumb.ts --base-url URL --model M --n 100 --rpm 3000 --latency-s 0.3`
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runContender } from './harness.js';
import { semaphoreWithRetry } from './semaphore-retry.js';

/** The seed's rule of thumb for the semaphore's size. */
export function ruleOfThumbConcurrency(rpm: number, latencySeconds: number): number {
  return Math.max(1, Math.floor(Math.ceil((rpm / 60) * latencySeconds) * 0.7));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await runContender('rule-of-thumb', (settings, tally) => {
    if (settings.rpm === undefined || settings.latencySeconds === undefined) {
      throw new Error('the rule of thumb needs --rpm and --latency-s (or RPM and LATENCY_S)');
    }
    return semaphoreWithRetry(settings, tally, ruleOfThumbConcurrency(settings.rpm, settings.latencySeconds));
  });
}
