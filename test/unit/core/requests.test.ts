import { describe, expect, it } from 'vitest';
import { LIMITS, normalizeJobRequest, RequestProblem } from '../../../functions/core/requests.js';
import { testQuotas } from '../../helpers/test-quotas.js';

const quotas = testQuotas();

/** Runs `fn`, expects a RequestProblem, and returns it. */
function problemOf(fn: () => unknown): RequestProblem {
  try {
    fn();
  } catch (err) {
    if (err instanceof RequestProblem) return err;
    throw err;
  }
  throw new Error('expected a RequestProblem');
}

describe('normalizeJobRequest: prompts and requests', () => {
  it('turns prompts into user turns with the default model, index keys and sortable ids', () => {
    // Arrange
    const prompts = Array.from({ length: 12 }, (_, i) => `prompt ${i}`);

    // Act
    const job = normalizeJobRequest({ prompts }, quotas);

    // Assert
    expect(job.model).toBe('gemini-2.5-flash');
    expect(job.mode).toBe('auto');
    expect(job.items.map((i) => i.key)).toEqual(prompts.map((_, i) => String(i)));
    expect(job.items[3]?.request).toEqual({ contents: [{ role: 'user', parts: [{ text: 'prompt 3' }] }] });
    const ids = job.items.map((i) => i.id);
    expect([...ids].sort()).toEqual(ids);
    expect(ids[10]).toBe('000000010');
    for (const item of job.items) expect(item.estimatedTokens).toBeGreaterThan(0);
  });

  it('keeps the keys, requests and media of requests', () => {
    const job = normalizeJobRequest(
      {
        model: 'models/gemini-2.5-pro',
        requests: [
          { key: 'cat', prompt: 'What is this?', media: [{ url: 'https://example.com/cat.png' }] },
          {
            key: 'dog',
            request: { contents: [{ role: 'user', parts: [{ text: 'Hi' }] }] },
            media: [{ gcsUri: 'gs://my-bucket/dog.jpg', mimeType: 'image/jpeg' }],
          },
        ],
        callbackUrl: 'https://example.com/done',
      },
      quotas,
    );

    expect(job.model).toBe('gemini-2.5-pro');
    expect(job.callbackUrl).toBe('https://example.com/done');
    expect(job.items.map((i) => i.key)).toEqual(['cat', 'dog']);
    expect(job.items[0]?.media).toEqual([{ url: 'https://example.com/cat.png' }]);
    expect(job.items[1]?.media).toEqual([{ gcsUri: 'gs://my-bucket/dog.jpg', mimeType: 'image/jpeg' }]);
    // 2 text tokens for "Hi" (ceil(2/4) = 1) plus an image the worker fetches later (4 tiles).
    expect(job.items[1]?.estimatedTokens).toBe(1 + 1032);
  });

  it('refuses a body with both prompts and requests', () => {
    const problem = problemOf(() =>
      normalizeJobRequest({ prompts: ['a'], requests: [{ prompt: 'b' }] }, quotas),
    );

    expect(problem.problems).toContainEqual(expect.objectContaining({ field: 'prompts' }));
    expect(problem.message).toMatch(/exactly one of prompts or requests/);
    expect(problem.tooLarge).toBe(false);
  });

  it('refuses a body with neither prompts nor requests', () => {
    const problem = problemOf(() => normalizeJobRequest({ model: 'gemini-2.5-flash' }, quotas));

    expect(problem.message).toMatch(/exactly one of prompts or requests/);
  });

  it('refuses an empty prompt list', () => {
    const problem = problemOf(() => normalizeJobRequest({ prompts: [] }, quotas));

    expect(problem.problems[0]?.field).toBe('prompts');
  });

  it('refuses a body that is not an object', () => {
    for (const body of [null, 'text', [1, 2], 3]) {
      const problem = problemOf(() => normalizeJobRequest(body, quotas));
      expect(problem.problems[0]?.field).toBe('(body)');
    }
  });

  it('refuses unknown top-level fields', () => {
    const problem = problemOf(() => normalizeJobRequest({ prompts: ['a'], temperature: 1 }, quotas));

    expect(problem.problems.length).toBeGreaterThan(0);
  });
});

describe('normalizeJobRequest: job-wide settings', () => {
  it('turns a string systemInstruction into Content on every item', () => {
    const job = normalizeJobRequest({ systemInstruction: 'Be brief.', prompts: ['a', 'b'] }, quotas);

    for (const item of job.items)
      expect(item.request.systemInstruction).toEqual({ parts: [{ text: 'Be brief.' }] });
  });

  it("keeps a request's own systemInstruction over the job's", () => {
    const own = { parts: [{ text: 'Answer in French.' }] };
    const job = normalizeJobRequest(
      {
        systemInstruction: 'Be brief.',
        requests: [{ request: { contents: [{ parts: [{ text: 'Hi' }] }], systemInstruction: own } }],
      },
      quotas,
    );

    expect(job.items[0]?.request.systemInstruction).toEqual(own);
  });

  it('counts the systemInstruction in the token estimate', () => {
    const plain = normalizeJobRequest({ prompts: ['abcd'] }, quotas);
    const withSystem = normalizeJobRequest({ prompts: ['abcd'], systemInstruction: 'x'.repeat(40) }, quotas);

    expect(plain.items[0]?.estimatedTokens).toBe(1);
    expect(withSystem.items[0]?.estimatedTokens).toBe(11);
  });

  it("merges the job config under a request's own generationConfig", () => {
    const job = normalizeJobRequest(
      {
        config: { temperature: 0.2, maxOutputTokens: 100 },
        requests: [
          { prompt: 'a' },
          {
            request: {
              contents: [{ parts: [{ text: 'b' }] }],
              generationConfig: { temperature: 0.9, topK: 3 },
            },
          },
        ],
      },
      quotas,
    );

    expect(job.items[0]?.request.generationConfig).toEqual({ temperature: 0.2, maxOutputTokens: 100 });
    expect(job.items[1]?.request.generationConfig).toEqual({
      temperature: 0.9,
      maxOutputTokens: 100,
      topK: 3,
    });
  });

  it('does not change the request object the caller passed', () => {
    const request = { contents: [{ parts: [{ text: 'b' }] }] };
    const body = { config: { temperature: 0.2 }, systemInstruction: 'S', requests: [{ request }] };

    normalizeJobRequest(body, quotas);

    expect(request).toEqual({ contents: [{ parts: [{ text: 'b' }] }] });
  });

  it('names the known models when the model is unknown', () => {
    const problem = problemOf(() => normalizeJobRequest({ model: 'gemini-9', prompts: ['a'] }, quotas));

    expect(problem.problems[0]?.field).toBe('model');
    expect(problem.message).toContain('gemini-9');
    expect(problem.message).toContain('gemini-2.5-flash');
    expect(problem.message).toContain('gemini-2.5-pro');
  });

  it('refuses a callbackUrl that is not http(s)', () => {
    const problem = problemOf(() =>
      normalizeJobRequest({ prompts: ['a'], callbackUrl: 'ftp://example.com/x' }, quotas),
    );

    expect(problem.problems[0]?.field).toBe('callbackUrl');
  });
});

describe('normalizeJobRequest: media', () => {
  const withMedia = (media: unknown) => ({ requests: [{ prompt: 'look', media: [media] }] });

  it('refuses a plain http URL, naming the field', () => {
    const problem = problemOf(() =>
      normalizeJobRequest(withMedia({ url: 'http://example.com/a.png' }), quotas),
    );

    expect(problem.problems[0]).toEqual({
      field: 'requests[0].media[0].url',
      message: 'must be an https URL',
    });
  });

  it('refuses a gcsUri that is not gs://bucket/object', () => {
    for (const gcsUri of ['https://bucket/x.png', 'gs://bucket', 'gs://B!/x']) {
      const problem = problemOf(() => normalizeJobRequest(withMedia({ gcsUri }), quotas));
      expect(problem.problems[0]?.field).toBe('requests[0].media[0].gcsUri');
    }
  });

  it('needs exactly one of url or gcsUri', () => {
    const both = problemOf(() =>
      normalizeJobRequest(withMedia({ url: 'https://example.com/a.png', gcsUri: 'gs://bkt/a.png' }), quotas),
    );
    const neither = problemOf(() => normalizeJobRequest(withMedia({ mimeType: 'image/png' }), quotas));

    for (const problem of [both, neither]) {
      expect(problem.problems[0]?.field).toBe('requests[0].media[0]');
      expect(problem.problems[0]?.message).toMatch(/exactly one of url or gcsUri/);
    }
  });

  it('refuses a mimeType that is not a MIME type', () => {
    const problem = problemOf(() =>
      normalizeJobRequest(withMedia({ gcsUri: 'gs://bkt/a.png', mimeType: 'png' }), quotas),
    );

    expect(problem.problems[0]?.field).toBe('requests[0].media[0].mimeType');
  });
});

describe('normalizeJobRequest: problems', () => {
  it('names the bad field of a request, e.g. requests[3].prompt', () => {
    const requests = [{ prompt: 'a' }, { prompt: 'b' }, { prompt: 'c' }, { prompt: '' }];

    const problem = problemOf(() => normalizeJobRequest({ requests }, quotas));

    expect(problem.problems[0]).toEqual({ field: 'requests[3].prompt', message: 'must not be empty' });
    expect(problem.problems.every((p) => p.field.startsWith('requests[3]'))).toBe(true);
    expect(problem.message).toContain('requests[3].prompt');
  });

  it('needs exactly one of prompt or request in a request', () => {
    const problem = problemOf(() =>
      normalizeJobRequest(
        { requests: [{ key: 'k', prompt: 'a', request: { contents: [{ parts: [{ text: 'b' }] }] } }] },
        quotas,
      ),
    );

    expect(problem.problems[0]).toEqual({
      field: 'requests[0]',
      message: 'needs exactly one of prompt or request',
    });
  });

  it('refuses duplicate keys, naming the second one', () => {
    const problem = problemOf(() =>
      normalizeJobRequest(
        {
          requests: [
            { key: 'a', prompt: 'x' },
            { key: 'b', prompt: 'y' },
            { key: 'a', prompt: 'z' },
          ],
        },
        quotas,
      ),
    );

    expect(problem.problems).toEqual([{ field: 'requests[2].key', message: 'duplicate key "a"' }]);
  });

  it('reports at most 20 problems', () => {
    const prompts = Array.from({ length: 30 }, () => '');
    const keys = Array.from({ length: 30 }, () => ({ key: 'same', prompt: 'p' }));

    const schemaProblem = problemOf(() => normalizeJobRequest({ prompts }, quotas));
    const keyProblem = problemOf(() => normalizeJobRequest({ requests: keys }, quotas));

    expect(schemaProblem.problems).toHaveLength(20);
    expect(schemaProblem.problems[19]?.field).toBe('prompts[19]');
    expect(keyProblem.problems).toHaveLength(20);
  });

  it('refuses more items than a job holds as too large', () => {
    const prompts = Array.from({ length: LIMITS.maxItems + 1 }, () => 'p');

    const problem = problemOf(() => normalizeJobRequest({ prompts }, quotas));

    expect(problem.tooLarge).toBe(true);
    expect(problem.problems[0]?.field).toBe('prompts');
    expect(problem.message).toContain(String(LIMITS.maxItems));
  });

  it('accepts exactly the item limit', () => {
    const prompts = Array.from({ length: LIMITS.maxItems }, () => 'p');

    const job = normalizeJobRequest({ prompts }, quotas);

    expect(job.items).toHaveLength(LIMITS.maxItems);
    expect(job.items.at(-1)?.id).toBe('000049999');
  });

  it('refuses an item too large to store as too large, naming its field', () => {
    const prompts = ['small', 'x'.repeat(LIMITS.maxItemBytes + 1)];

    const problem = problemOf(() => normalizeJobRequest({ prompts }, quotas));

    expect(problem.tooLarge).toBe(true);
    expect(problem.problems[0]?.field).toBe('prompts[1]');
    expect(problem.problems[0]?.message).toMatch(/bytes > 262144/);
  });
});

describe('normalizeJobRequest: what a request may ask for', () => {
  it('refuses model names every object has (constructor, __proto__, toString) as unknown', () => {
    for (const model of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      const problem = problemOf(() => normalizeJobRequest({ model, prompts: ['a'] }, quotas));
      expect(problem.problems[0]?.field).toBe('model');
      expect(problem.message).toContain(`Unknown model ${model}`);
    }
  });

  it('caps candidateCount, maxOutputTokens, built-in tools and cachedContent with a 400 naming the item', () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ config: { candidateCount: 8 } }, /candidateCount 8 > 1/],
      [{ config: { maxOutputTokens: 1_000_000 } }, /maxOutputTokens 1000000 > 65536/],
      [
        {
          requests: [{ request: { contents: [{ parts: [{ text: 'x' }] }], tools: [{ googleSearch: {} }] } }],
        },
        /tools other than functionDeclarations \(googleSearch\)/,
      ],
      [
        {
          requests: [
            { request: { contents: [{ parts: [{ text: 'x' }] }], cachedContent: 'cachedContents/x' } },
          ],
        },
        /cachedContent is not allowed/,
      ],
    ];
    for (const [body, message] of cases) {
      const full = body.requests ? body : { prompts: ['a'], ...body };
      const problem = problemOf(() => normalizeJobRequest(full, quotas));
      expect(problem.problems[0]?.field).toMatch(/^(prompts|requests)\[0\]$/);
      expect(problem.problems[0]?.message).toMatch(message);
      expect(problem.tooLarge).toBe(false);
    }
  });

  it('lets function declarations and figures within the caps through', () => {
    const job = normalizeJobRequest(
      {
        config: { candidateCount: 1, maxOutputTokens: 1024 },
        requests: [
          {
            request: {
              contents: [{ parts: [{ text: 'x' }] }],
              tools: [{ functionDeclarations: [{ name: 'f', description: 'd' }] }],
            },
          },
        ],
      },
      quotas,
    );
    expect(job.items).toHaveLength(1);
  });

  it('reads gs:// media only under the allowed prefixes, without path tricks', () => {
    const allowed = ['gs://bkt/media/'];
    const withMedia = (gcsUri: string) => ({ requests: [{ prompt: 'look', media: [{ gcsUri }] }] });
    expect(
      normalizeJobRequest(withMedia('gs://bkt/media/a.png'), quotas, { mediaGcsAllowed: allowed }).items,
    ).toHaveLength(1);
    for (const [uri, message] of [
      ['gs://bkt/inbox/other-user.jsonl', /outside the allowed locations/],
      ['gs://bkt/results/x.jsonl', /outside the allowed locations/],
      ['gs://other/media/a.png', /outside the allowed locations/],
      ['gs://bkt/media/../inbox/a.jsonl', /path trick/],
      ['gs://bkt/media//a.png', /path trick/],
      ['gs://bkt/media/%2e%2e/a.png', /path trick/],
    ] as const) {
      const problem = problemOf(() =>
        normalizeJobRequest(withMedia(uri), quotas, { mediaGcsAllowed: allowed }),
      );
      expect(problem.problems[0]?.message).toMatch(message);
    }
  });

  it('takes an https callbackUrl; http only where told (the local cloud)', () => {
    const http = { prompts: ['a'], callbackUrl: 'http://example.com/cb' };
    expect(problemOf(() => normalizeJobRequest(http, quotas)).problems[0]).toEqual({
      field: 'callbackUrl',
      message: 'must be an https URL',
    });
    expect(normalizeJobRequest(http, quotas, { httpCallbacks: true }).callbackUrl).toBe(http.callbackUrl);
    expect(
      normalizeJobRequest({ prompts: ['a'], callbackUrl: 'https://example.com/cb' }, quotas).callbackUrl,
    ).toBe('https://example.com/cb');
  });

  it('refuses a callbackUrl with credentials or over 2048 characters', () => {
    for (const callbackUrl of ['https://user:pw@example.com/cb', `https://example.com/${'a'.repeat(2050)}`]) {
      const problem = problemOf(() => normalizeJobRequest({ prompts: ['a'], callbackUrl }, quotas));
      expect(problem.problems[0]?.field).toBe('callbackUrl');
    }
  });
});

describe('normalizeJobRequest: fileData parts (Files API URIs are shared by every job of a deployment)', () => {
  const FILE = 'https://generativelanguage.googleapis.com/v1beta/files/someone-elses';

  it.each([
    ['in the contents', { contents: [{ parts: [{ text: 'x' }, { fileData: { fileUri: FILE } }] }] }],
    [
      'in a model turn',
      {
        contents: [
          { role: 'model', parts: [{ fileData: { fileUri: FILE, mimeType: 'image/png' } }] },
          { role: 'user', parts: [{ text: 'and this?' }] },
        ],
      },
    ],
    [
      'in the system instruction',
      {
        contents: [{ parts: [{ text: 'x' }] }],
        systemInstruction: { parts: [{ fileData: { fileUri: FILE } }] },
      },
    ],
  ])('refuses a fileData part %s, pointing at media[] instead', (_where, request) => {
    const problem = problemOf(() => normalizeJobRequest({ requests: [{ request }] }, quotas));

    expect(problem.problems[0]).toEqual({
      field: 'requests[0]',
      message: expect.stringMatching(/fileData parts are not accepted.*media\[\]\.url or media\[\]\.gcsUri/),
    });
  });

  it('takes the same request with the medium as media[]', () => {
    const job = normalizeJobRequest(
      {
        requests: [
          {
            request: { contents: [{ parts: [{ text: 'x' }] }] },
            media: [{ url: 'https://example.com/a.png' }],
          },
        ],
      },
      quotas,
    );

    expect(job.items).toHaveLength(1);
  });
});
