/**
 * The seed's second pattern: every call at once with `Promise.all`, no limit, no retry. Each call
 * catches its own error (else the first rejection would throw away every answer).
 *
 * `npx tsx bench/contenders/promise-all.ts --base-url URL --model M --n 100` (see harness.ts).
 */
import { GoogleGenAI } from '@google/genai';
import { isRateLimited, runContender } from './harness.js';

await runContender('promise-all', async ({ baseUrl, model, prompts }, tally) => {
  const ai = new GoogleGenAI({ apiKey: 'local', httpOptions: { baseUrl } });
  await Promise.all(
    prompts.map(async (prompt, i) => {
      try {
        const response = await ai.models.generateContent({ model, contents: prompt });
        tally.results[i] = response.text ?? '';
      } catch (err) {
        if (isRateLimited(err)) tally.rateLimited429++;
        tally.failed++;
      }
    }),
  );
});
