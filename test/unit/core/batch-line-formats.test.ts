import { describe, expect, it } from 'vitest';
import { entryKey, resultEntrySchema, resultLineSchema } from '../../../functions/api/jobs.js';
import { firstLineModel, parseInputLine } from '../../../functions/core/bucket-input.js';
import { requestLimitsFor } from '../../../functions/core/quotas.js';
import { normalizeJobRequest, RequestProblem } from '../../../functions/core/requests.js';
import { errorLine, pendingEntry, successLine } from '../../../functions/core/results.js';
import { testQuotas } from '../../helpers/test-quotas.js';

// The Batch file formats people already have: OpenAI's `{"custom_id", "request"}` (as the seed shows
// it) and Gemini's own `{"key", "request"}`, each line's `request.model` checked against the job's.

const quotas = testQuotas();
const MODEL = quotas.defaultModel;
const OTHER = Object.keys(quotas.models).find((m) => m !== MODEL)!;
const rules = { limits: requestLimitsFor(quotas, MODEL), model: MODEL };
const contents = [{ role: 'user', parts: [{ text: 'Summarise the plot of Hamlet.' }] }];
const line = (o: unknown) => ({ text: JSON.stringify(o) });

describe('a bucket line in a Batch file format', () => {
  it('takes custom_id as the key and remembers its name; the request leaves without its model', () => {
    const parsed = parseInputLine(
      line({ custom_id: 'req-1', request: { model: `models/${MODEL}`, contents } }),
      1,
      0,
      {},
      rules,
    );

    expect(parsed).toMatchObject({ ok: true, item: { key: 'req-1', keyField: 'custom_id', index: 0 } });
    expect(parsed.ok && parsed.item.request).toEqual({ contents });
  });

  it('takes Gemini’s own {key, request} with a bare model name, and names no key field', () => {
    const parsed = parseInputLine(line({ key: 'k', request: { model: MODEL, contents } }), 1, 0, {}, rules);

    expect(parsed.ok && parsed.item.key).toBe('k');
    expect(parsed.ok && 'keyField' in parsed.item).toBe(false);
  });

  it('makes a line naming another model an error line that says so, with its key named as it came', () => {
    const parsed = parseInputLine(
      line({ custom_id: 'req-2', request: { model: OTHER, contents } }),
      4,
      3,
      {},
      rules,
    );

    expect(parsed).toEqual({
      ok: false,
      key: 'req-2',
      keyField: 'custom_id',
      error: {
        code: 400,
        status: 'INVALID_ARGUMENT',
        message: expect.stringMatching(
          new RegExp(`^line 4: request.model ${OTHER} is not the job's model ${MODEL}`),
        ),
      },
    });
  });

  it('refuses a line naming its key twice, and the OpenAI envelope fields the seed does not show', () => {
    const twice = parseInputLine(line({ key: 'a', custom_id: 'b', request: { contents } }), 1, 0, {}, rules);
    const envelope = parseInputLine(
      line({ custom_id: 'c', method: 'POST', url: '/v1/chat/completions', request: { contents } }),
      2,
      1,
      {},
      rules,
    );

    expect(twice).toMatchObject({
      ok: false,
      key: 'a',
      error: { message: expect.stringMatching(/key or custom_id/) },
    });
    expect(envelope).toMatchObject({
      ok: false,
      key: 'c',
      keyField: 'custom_id',
      error: { message: expect.stringMatching(/Unrecognized key/) },
    });
  });

  it('reads the model of a file’s first line, with or without models/, and nothing from other lines', () => {
    expect(
      firstLineModel(JSON.stringify({ custom_id: 'a', request: { model: `models/${OTHER}`, contents } })),
    ).toBe(OTHER);
    expect(firstLineModel(JSON.stringify({ prompt: 'x' }))).toBeUndefined();
    expect(firstLineModel('not json')).toBeUndefined();
    expect(firstLineModel(undefined)).toBeUndefined();
  });
});

describe('POST /jobs requests in a Batch file format', () => {
  const request = (custom_id: string, model?: string) => ({
    custom_id,
    request: { ...(model ? { model } : {}), contents },
  });

  it('takes custom_id as the key and the first item’s model as the job’s when the body names none', () => {
    const job = normalizeJobRequest(
      { requests: [request('a', `models/${OTHER}`), request('b', OTHER)] },
      quotas,
    );

    expect(job.model).toBe(OTHER);
    expect(job.items.map((i) => [i.key, i.keyField])).toEqual([
      ['a', 'custom_id'],
      ['b', 'custom_id'],
    ]);
    expect(job.items[0]!.request).toEqual({ contents });
  });

  it('refuses an item naming another model than the job’s, naming the item', () => {
    const attempt = () =>
      normalizeJobRequest({ model: MODEL, requests: [request('a', MODEL), request('b', OTHER)] }, quotas);

    expect(attempt).toThrow(RequestProblem);
    expect(attempt).toThrow(/requests\[1\] request.model/);
  });

  it('counts custom_id and key as one set of keys: the same value twice is a duplicate', () => {
    const attempt = () =>
      normalizeJobRequest(
        {
          requests: [
            { key: 'a', prompt: 'x' },
            { custom_id: 'a', prompt: 'y' },
          ],
        },
        quotas,
      );

    expect(attempt).toThrow(/duplicate key "a"/);
  });
});

describe('result lines name the key as the input did', () => {
  it('echoes custom_id in success, error and pending entries, and key otherwise', () => {
    const error = { code: 400, status: 'INVALID_ARGUMENT', message: 'no' };

    expect(JSON.stringify(successLine('req-1', 0, { ok: 1 }, 'custom_id'))).toBe(
      '{"custom_id":"req-1","index":0,"response":{"ok":1}}',
    );
    expect(errorLine('req-1', 2, error, 'custom_id')).toEqual({ custom_id: 'req-1', index: 2, error });
    expect(pendingEntry('req-1', 3, 'custom_id')).toEqual({ custom_id: 'req-1', index: 3, state: 'pending' });
    expect(successLine('k', 0, {})).toEqual({ key: 'k', index: 0, response: {} });
  });

  it('is a result line of the contract, whose key entryKey reads under either name', () => {
    const line = resultLineSchema.parse({ custom_id: 'req-1', index: 0, response: {} });
    const pending = resultEntrySchema.parse({ custom_id: 'req-9', index: 9, state: 'pending' });

    expect(entryKey(line)).toBe('req-1');
    expect(entryKey(pending)).toBe('req-9');
    expect(entryKey(resultLineSchema.parse({ key: 'k', index: 0, response: {} }))).toBe('k');
  });
});
