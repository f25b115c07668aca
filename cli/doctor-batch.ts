/**
 * `doctor --batch`: two lines through the Batch API as the tick sends a staged part (upload, create,
 * poll, collect), with the same client (functions/platform/gemini/batch-api.ts). Opt-in: it costs cents.
 */
import type { BatchApi, BatchInfo } from '../functions/platform/gemini/batch-api.js';
import { type CheckResult, errorText, fail, geminiAdvice, ok } from './doctor-checks.js';

export interface BatchCheckOptions {
  batch: BatchApi;
  model: string;
  /** How long to wait for the batch to end; the Batch API promises 24 h, most small ones take minutes. */
  timeoutMs: number;
  pollMs: number;
  sleep: (ms: number) => Promise<void>;
  now: () => number;
}

const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED', 'EXPIRED']);

/** Two lines through the Batch API: upload, create, poll, collect; the files are deleted after. */
export async function checkBatch(o: BatchCheckOptions): Promise<CheckResult> {
  const name = 'Batch API round trip';
  const lines = ['a', 'b'].map(
    (key) =>
      `${JSON.stringify({ key, request: { contents: [{ role: 'user', parts: [{ text: 'Reply OK.' }] }] } })}\n`,
  );
  const bytes = Buffer.byteLength(lines.join(''));
  const displayName = `fanout-doctor-${o.now()}`;
  let step = 'upload';
  const files: string[] = [];
  try {
    const file = await o.batch.uploadJsonl(asAsync(lines), { displayName, sizeBytes: bytes });
    files.push(file.name);
    step = 'create';
    let info: BatchInfo = await o.batch.createBatch(o.model, file.name, displayName);
    step = 'poll';
    const deadline = o.now() + o.timeoutMs;
    while (!TERMINAL.has(info.state)) {
      if (o.now() > deadline) {
        await o.batch.cancelBatch(info.name).catch(() => undefined);
        return fail(
          name,
          `${info.name} still ${info.state} after ${Math.round(o.timeoutMs / 1000)} s (cancelled)`,
          'the Batch API may take up to 24 h: run again with a longer --batch-timeout',
          false,
        );
      }
      await o.sleep(o.pollMs);
      info = await o.batch.getBatch(info.name);
    }
    if (info.state !== 'SUCCEEDED' || !info.responsesFile) {
      return fail(
        name,
        `${info.name} ended ${info.state}${info.error ? `: ${info.error.message}` : ''}`,
        'read the batch error; a FAILED batch on a valid two-line file usually means the model takes no batches (batch: false in the quotas file)',
      );
    }
    step = 'collect';
    files.push(info.responsesFile);
    let answered = 0;
    for await (const line of o.batch.responseLines(info.responsesFile)) {
      if ((JSON.parse(line) as { response?: unknown }).response) answered++;
    }
    if (answered !== 2)
      return fail(
        name,
        `${answered} of 2 lines answered`,
        'read the responses file: the lines carry their errors',
      );
    return ok(name, `${info.name}: upload, create, poll and collect; 2 of 2 lines answered`);
  } catch (err) {
    return fail(name, `${step}: ${errorText(err)}`, geminiAdvice(err, 'the Batch API', o.model));
  } finally {
    for (const f of files) await o.batch.deleteFile(f).catch(() => undefined);
  }
}

async function* asAsync(lines: string[]): AsyncIterable<string> {
  yield* lines;
}
