/**
 * The seed's third pattern: `Promise.all` behind a semaphore of 10 (p-limit), each call retried up
 * to 3 times on 429 after sleeping 2^attempt seconds (1, 2, 4 s), holding its slot while it sleeps.
 * Other errors, and a 429 after the third retry, lose the prompt.
 *
 * `npx tsx bench/contenders/semaphore-retry.ts --base-url URL --model M --n 100` (see harness.ts).
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GoogleGenAI } from '@google/genai';
import pLimit from 'p-limit';
import { type ContenderSettings, isRateLimited, runContender, type Tally } from './harness.js';

const RETRIES = 3;

/** Runs every prompt through a semaphore of `concurrency` with the 2^n retry on 429. */
export async function semaphoreWithRetry(
  { baseUrl, model, prompts }: ContenderSettings,
  tally: Tally,
  concurrency: number,
): Promise<void> {
  const ai = new GoogleGenAI({ apiKey: 'local', httpOptions: { baseUrl } });
  const limit = pLimit(concurrency);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  async function generateWithRetry(prompt: string): Promise<string> {
    for (let attempt = 0; ; attempt++) {
      try {
        const response = await ai.models.generateContent({ model, contents: prompt });
        return response.text ?? '';
      } catch (err) {
        if (!isRateLimited(err)) throw err;
        tally.rateLimited429++;
        if (attempt >= RETRIES) throw err;
        await sleep(2 ** attempt * 1000);
      }
    }
  }

  await Promise.all(
    prompts.map((prompt, i) =>
      limit(async () => {
        try {
          tally.results[i] = await generateWithRetry(prompt);
        } catch {
          tally.failed++;
        }
      }),
    ),
  );
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await runContender('semaphore-10', (settings, tally) => semaphoreWithRetry(settings, tally, 10));
}
