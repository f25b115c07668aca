/**
 * The seed's first pattern: a `for` loop that awaits each call before the next (T × N). A failed
 * call is recorded and the loop goes on (the seed's bare loop would stop at the first error).
 *
 * `npx tsx bench/contenders/sequential.ts --base-url URL --model M --n 100` (see harness.ts).
 */
import { GoogleGenAI } from '@google/genai';
import { isRateLimited, runContender } from './harness.js';

await runContender('sequential', async ({ baseUrl, model, prompts }, tally) => {
  const ai = new GoogleGenAI({ apiKey: 'local', httpOptions: { baseUrl } });
  for (let i = 0; i < prompts.length; i++) {
    try {
      const response = await ai.models.generateContent({ model, contents: prompts[i]! });
      tally.results[i] = response.text ?? '';
    } catch (err) {
      if (isRateLimited(err)) tally.rateLimited429++;
      tally.failed++;
    }
  }
});
