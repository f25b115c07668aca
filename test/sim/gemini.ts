/**
 * A simulated Gemini behind the worker's `GeminiClient`: deterministic answers (the answer and
 * its token counts derive from the prompt), and the faults upstream shows: 429 with a
 * `retryDelay`, 429 for the day, 503, calls that time out (the client gives up at its `timeoutMs`), slow answers.
 * It counts calls and billed answers per prompt, for the invariants.
 */
import type { GenerateContentRequest } from '../../functions/core/jobs.js';
import { estimateContentTokens } from '../../functions/core/tokens.js';
import {
  GeminiCallError,
  type GeminiClient,
  type GenerateResult,
} from '../../functions/platform/gemini/client.js';
import { quotaBody } from '../helpers/gemini-errors.js';
import type { SimClock } from './clock.js';
import type { Rng } from './rng.js';
import type { Trace } from './trace.js';

export interface GeminiKnobs {
  quotaShare: number;
  /** Share of calls refused for the day (the model's queue is paused until Pacific midnight). */
  dayQuotaShare: number;
  /** The daily reset: after it, the day's quota is fresh again and no call is refused for the day. */
  dayResetMs: number;
  unavailableShare: number;
  /** Share of calls upstream never answers (the client times out). */
  hangShare: number;
  /** Share of answers that take 5–40 s (past the client's timeout, it gives up). */
  slowShare: number;
  countFailShare: number;
}

/** The prompt of item `index` of job `jobId` in the simulation. */
export const promptOf = (jobId: string, index: number) => `sim ${jobId} #${index}`;

/** The answer the simulated Gemini gives a prompt, and what it bills for it. */
export function answerOf(prompt: string) {
  let h = 0;
  for (const c of prompt) h = (Math.imul(h, 31) + c.charCodeAt(0)) >>> 0;
  return { text: `answer to ${prompt}`, promptTokens: 5 + (h % 20), outputTokens: 3 + ((h >>> 8) % 10) };
}

const textOf = (request: GenerateContentRequest) =>
  request.contents.flatMap((c) => c.parts.map((p) => p.text ?? '')).join('');

export class SimGemini implements GeminiClient {
  /** Calls per prompt. */
  readonly calls = new Map<string, number>();
  /** Answers returned (billed) per prompt. */
  readonly billed = new Map<string, number>();

  constructor(
    private readonly clock: SimClock,
    private readonly rng: Rng,
    private readonly trace: Trace,
    private readonly knobs: GeminiKnobs,
  ) {}

  async generate(
    _model: string,
    request: GenerateContentRequest,
    options: { timeoutMs?: number } = {},
  ): Promise<GenerateResult> {
    const prompt = textOf(request);
    this.calls.set(prompt, (this.calls.get(prompt) ?? 0) + 1);
    const timeoutMs = options.timeoutMs ?? 300_000;
    const k = this.knobs;
    const roll = this.rng.float();
    let edge = this.clock.now() < k.dayResetMs ? k.dayQuotaShare : 0;
    if (roll < edge) {
      await this.clock.sleep(this.rng.int(50, 300));
      this.trace.add(`gemini 429 per day "${prompt}"`);
      throw new GeminiCallError('quota', 429, quotaBody('GenerateRequestsPerDayPerProjectPerModel'));
    }
    edge += k.quotaShare;
    if (roll < edge) {
      await this.clock.sleep(this.rng.int(50, 300));
      const delay = `${this.rng.int(1, 40)}s`;
      this.trace.add(`gemini 429 "${prompt}" retryDelay ${delay}`);
      throw new GeminiCallError(
        'quota',
        429,
        quotaBody('GenerateRequestsPerMinutePerProjectPerModel', delay),
      );
    }
    edge += k.unavailableShare;
    if (roll < edge) {
      await this.clock.sleep(this.rng.int(50, 2000));
      this.trace.add(`gemini 503 "${prompt}"`);
      throw new GeminiCallError('unavailable', 503, {
        error: { code: 503, status: 'UNAVAILABLE', message: 'The model is overloaded.' },
      });
    }
    edge += k.hangShare;
    const latency =
      roll < edge
        ? Number.POSITIVE_INFINITY
        : roll < edge + k.slowShare
          ? this.rng.int(5000, 40_000)
          : this.rng.int(100, 3000);
    if (latency > timeoutMs) {
      await this.clock.sleep(timeoutMs);
      this.trace.add(`gemini timeout "${prompt}" after ${timeoutMs} ms`);
      throw new GeminiCallError('timeout', undefined, undefined);
    }
    await this.clock.sleep(latency);
    this.billed.set(prompt, (this.billed.get(prompt) ?? 0) + 1);
    this.trace.add(`gemini answers "${prompt}" (${this.billed.get(prompt)} billed)`);
    return answerFor(prompt);
  }

  async countTokens(_model: string, request: GenerateContentRequest): Promise<number> {
    await this.clock.sleep(this.rng.int(20, 200));
    if (this.rng.chance(this.knobs.countFailShare))
      throw new GeminiCallError('unavailable', 503, { error: { code: 503, status: 'UNAVAILABLE' } });
    return estimateContentTokens(request);
  }
}

function answerFor(prompt: string): GenerateResult {
  const a = answerOf(prompt);
  const usageMetadata = { promptTokenCount: a.promptTokens, candidatesTokenCount: a.outputTokens };
  return {
    response: {
      candidates: [{ content: { role: 'model', parts: [{ text: a.text }] }, finishReason: 'STOP' }],
      usageMetadata: { ...usageMetadata, totalTokenCount: a.promptTokens + a.outputTokens },
    },
    usageMetadata,
  };
}
