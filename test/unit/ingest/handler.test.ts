import { describe, expect, it } from 'vitest';
import { ownerPrefix } from '../../../functions/core/owner-prefix.js';
import { LIMITS } from '../../../functions/core/requests.js';
import { streamEvents } from '../../../functions/ingest/events.js';
import {
  cancelJob,
  createJob,
  getJob,
  type IngestDeps,
  listJobs,
  type ResultEntry,
} from '../../../functions/ingest/handler.js';
import { createPageTokens } from '../../../functions/ingest/page-tokens.js';
import { getResultsPage, RESULTS_PAGE_BYTES, streamResults } from '../../../functions/ingest/results.js';
import type { Caller } from '../../../functions/platform/caller.js';
import {
  NotFoundError,
  PayloadTooLargeError,
  toHttpError,
  ValidationError,
} from '../../../functions/platform/errors.js';
import { createLogger } from '../../../functions/platform/logger.js';
import { fakeWorld } from '../../helpers/fakes.js';
import { createLogCapture } from '../../helpers/log-capture.js';
import { testQuotas } from '../../helpers/test-quotas.js';

/** An admin sees every job; the tests below that are not about owners use one. */
const ADMIN: Caller = { id: 'admin@example.com', admin: true };

function setup() {
  const capture = createLogCapture();
  const logger = createLogger({ destination: capture.stream });
  const world = fakeWorld({ quotas: testQuotas(), logger });
  const store = world.db;
  const deps: IngestDeps = {
    lifecycle: world.lifecycle,
    objects: world.objects,
    quotas: testQuotas(),
    logger,
    pollIntervalMs: 1,
    pageTokens: createPageTokens('unit-test-page-token-key-0123456789'),
  };
  return {
    store,
    tasks: world.tasks,
    objects: world.objects,
    planner: world.planner,
    capture,
    sent: world.sent,
    deps,
  };
}

/** The job `createJob` made (most tests need only that). */
const createJobOf = async (...args: Parameters<typeof createJob>) => (await createJob(...args)).created;

async function thrown(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

const answer = (text: string) => ({ candidates: [{ content: { role: 'model', parts: [{ text }] } }] });
const idOf = (index: number) => String(index).padStart(9, '0');

/** Reads SSE frames from the stream until `until` returns true for one. */
async function readFrames(
  stream: AsyncGenerator<string>,
  until: (frame: string) => boolean,
  frames: string[] = [],
): Promise<string[]> {
  for (;;) {
    const next = await stream.next();
    if (next.done) return frames;
    frames.push(next.value);
    if (until(next.value)) return frames;
  }
}

const eventOf = (frame: string) => /^event: (\w+)$/m.exec(frame)?.[1];
const dataOf = (frame: string) =>
  JSON.parse(/^data: (.*)$/m.exec(frame)?.[1] ?? 'null') as Record<string, unknown>;
const idLine = (frame: string) => /^id: (.*)$/m.exec(frame)?.[1];

describe('createJob', () => {
  it('stores the job and its items and hands enqueuing to a named control task', async () => {
    const { store, tasks, capture, deps } = setup();

    const created = await createJobOf(
      { prompts: ['a', 'b', 'c'], callbackUrl: 'https://example.com/h' },
      deps,
    );

    expect(created).toEqual({
      id: created.id,
      status: 'queued',
      mode: 'realtime',
      total: 3,
      links: {
        self: `/jobs/${created.id}`,
        results: `/jobs/${created.id}/results`,
        events: `/jobs/${created.id}/events`,
        cancel: `/jobs/${created.id}/cancel`,
      },
    });
    expect(store.jobs.get(created.id)).toMatchObject({
      model: 'gemini-2.5-flash',
      total: 3,
      status: 'queued',
      source: 'api',
      callbackUrl: 'https://example.com/h',
    });
    expect([...(store.items.get(created.id)?.keys() ?? [])]).toEqual([idOf(0), idOf(1), idOf(2)]);
    expect([...tasks.controlTasks]).toEqual([
      [`${created.id}-enqueue-0`, { kind: 'enqueue', jobId: created.id, from: 0 }],
    ]);
    expect(capture.events('job.created')).toEqual([
      expect.objectContaining({ jobId: created.id, total: 3, severity: 'INFO' }),
    ]);
  });

  it('gives every job its own id', async () => {
    const { deps } = setup();

    const a = await createJobOf({ prompts: ['a'] }, deps);
    const b = await createJobOf({ prompts: ['a'] }, deps);

    expect(a.id).not.toBe(b.id);
  });

  it('refuses a bad body with a 400 naming each bad field, storing nothing', async () => {
    const { store, tasks, deps } = setup();

    const err = await thrown(createJob({ requests: [{ prompt: 'ok' }, { prompt: '' }] }, deps));

    expect(err).toBeInstanceOf(ValidationError);
    const mapped = toHttpError(err);
    expect(mapped.statusCode).toBe(400);
    expect(mapped.body.error.details).toContainEqual({
      field: 'requests[1].prompt',
      message: 'must not be empty',
    });
    expect(store.jobs.size).toBe(0);
    expect(tasks.controlTasks.size).toBe(0);
  });

  it('refuses too many items with a 413', async () => {
    const { deps } = setup();
    const prompts = Array.from({ length: LIMITS.maxItems + 1 }, () => 'p');

    const err = await thrown(createJob({ prompts }, deps));

    expect(err).toBeInstanceOf(PayloadTooLargeError);
    expect(toHttpError(err).statusCode).toBe(413);
  });

  it('refuses an item too big to store with a 413', async () => {
    const { deps } = setup();

    const err = await thrown(createJob({ prompts: ['x'.repeat(LIMITS.maxItemBytes + 1)] }, deps));

    expect(toHttpError(err).statusCode).toBe(413);
    expect(toHttpError(err).body.error.details).toEqual([expect.objectContaining({ field: 'prompts[0]' })]);
  });

  it('refuses mode batch on a model that takes no batch jobs, with a 400 naming the mode', async () => {
    const { store, deps } = setup();
    const quotas = testQuotas();
    quotas.models['gemini-2.5-pro']!.batch = false;

    const err = await thrown(
      createJob({ mode: 'batch', model: 'gemini-2.5-pro', prompts: ['a'] }, { ...deps, quotas }),
    );

    expect(toHttpError(err).statusCode).toBe(400);
    expect(toHttpError(err).body.error.details).toEqual([expect.objectContaining({ field: 'mode' })]);
    expect(store.jobs.size).toBe(0);
  });

  it.each([
    ['loopback', 'https://127.0.0.1/h'],
    ['loopback as one decimal number', 'https://2130706433/h'],
    ['loopback in octal', 'https://0177.0.0.1/h'],
    ['loopback in hex', 'https://0x7f.0.0.1/h'],
    ['a private range', 'https://10.0.0.7/h'],
    ['another private range', 'https://192.168.1.1:8443/h'],
    ['the metadata server (link-local)', 'https://169.254.169.254/computeMetadata/v1/'],
    ['carrier-grade NAT', 'https://100.64.0.1/h'],
    ['IPv6 loopback', 'https://[::1]/h'],
    ['IPv4-mapped loopback', 'https://[::ffff:127.0.0.1]/h'],
    ['NAT64', 'https://[64:ff9b::a00:7]/h'],
    ['6to4', 'https://[2002:a00:7::1]/h'],
    ['IPv6 link-local', 'https://[fe80::1]/h'],
    ['IPv6 unique-local', 'https://[fd00::1]/h'],
  ])(
    'refuses a callbackUrl at %s with a 400 naming the field, storing nothing',
    async (_what, callbackUrl) => {
      const { store, deps } = setup();

      const err = await thrown(createJob({ prompts: ['a'], callbackUrl }, deps));

      expect(toHttpError(err).statusCode).toBe(400);
      expect(toHttpError(err).body.error.details).toEqual([
        { field: 'callbackUrl', message: 'must not point at a non-public address' },
      ]);
      expect(store.jobs.size).toBe(0);
    },
  );

  it('takes a callbackUrl at a public literal address or a name; the local cloud also takes loopback', async () => {
    const { deps } = setup();
    const local = { ...deps, httpCallbacks: true };

    await createJobOf({ prompts: ['a'], callbackUrl: 'https://8.8.8.8/h' }, deps);
    await createJobOf({ prompts: ['a'], callbackUrl: 'https://[2001:4860:4860::8888]/h' }, deps);
    await createJobOf({ prompts: ['a'], callbackUrl: 'https://hooks.example.com/h' }, deps);
    await createJobOf({ prompts: ['a'], callbackUrl: 'http://127.0.0.1:9000/h' }, local);
    const privateLocally = await thrown(
      createJob({ prompts: ['a'], callbackUrl: 'http://10.0.0.7/h' }, local),
    );

    expect(toHttpError(privateLocally).statusCode).toBe(400);
  });

  it('lets errors of the store through, unmapped', async () => {
    const { store, deps } = setup();
    store.failOnce('items.createMany', new Error('4 DEADLINE_EXCEEDED'));

    const err = await thrown(createJob({ prompts: ['a'] }, deps));

    expect(toHttpError(err).statusCode).toBe(500);
  });
});

describe('createJob: stored means accepted', () => {
  it('answers "created" once the job is stored, even when its enqueue task cannot be created', async () => {
    const { store, tasks, capture, deps } = setup();
    tasks.enqueueControl = async () => {
      throw new Error('14 UNAVAILABLE: Cloud Tasks is unreachable');
    };

    const { created, replayed } = await createJob({ prompts: ['a', 'b'] }, deps);

    expect(replayed).toBe(false);
    expect(created.status).toBe('queued');
    expect(store.jobs.get(created.id)).toMatchObject({ status: 'queued', enqueuedThrough: 0 });
    expect(capture.events('job.enqueue_deferred')).toEqual([
      expect.objectContaining({ severity: 'ERROR', jobId: created.id }),
    ]);
  });

  it('gives the same job for the same Idempotency-Key and body, and stores it once', async () => {
    const { store, tasks, deps } = setup();
    const body = { prompts: ['a', 'b'] };

    const first = await createJob(body, deps, { idempotency: { key: 'nightly-42' } });
    const again = await createJob(structuredClone(body), deps, { idempotency: { key: 'nightly-42' } });

    expect(again).toEqual({ created: first.created, replayed: true });
    expect(first.replayed).toBe(false);
    expect(store.jobs.size).toBe(1);
    expect([...tasks.controlTasks.keys()]).toEqual([`${first.created.id}-enqueue-0`]);
  });

  it('refuses the same Idempotency-Key with another body with a 409, and keys belong to their caller', async () => {
    const { store, deps } = setup();
    await createJob({ prompts: ['a'] }, deps, { idempotency: { key: 'k', caller: 'alice' } });

    const err = await thrown(
      createJob({ prompts: ['b'] }, deps, { idempotency: { key: 'k', caller: 'alice' } }),
    );
    const bobs = await createJob({ prompts: ['b'] }, deps, { idempotency: { key: 'k', caller: 'bob' } });

    expect(toHttpError(err).statusCode).toBe(409);
    expect(toHttpError(err).body.error.message).toMatch(/Idempotency-Key/);
    expect(bobs.replayed).toBe(false);
    expect(store.jobs.size).toBe(2);
  });
});

describe('results of big answers', () => {
  it('serves an answer stored in the bucket as the same result line', async () => {
    const { store, objects, deps } = setup();
    const { id } = await createJobOf({ prompts: ['a'] }, deps);
    const big = answer('y'.repeat(700_000));
    await objects.putJson(`answers/${id}/${idOf(0)}.json`, big);
    const item = store.item(id, idOf(0))!;
    Object.assign(item, {
      state: 'succeeded',
      responseObject: `answers/${id}/${idOf(0)}.json`,
      finishedAtMicros: 1,
    });

    const page = await getResultsPage(id, {}, ADMIN, deps);
    const lines: string[] = [];
    for await (const line of streamResults(id, ADMIN, deps)) lines.push(line);

    expect(page.results).toEqual([{ key: '0', index: 0, response: big }]);
    expect(JSON.parse(lines[0]!)).toEqual({ key: '0', index: 0, response: big });
  });
});

describe('getJob', () => {
  it('shows counts of a job', async () => {
    const { store, deps } = setup();
    const { id } = await createJobOf({ prompts: ['a', 'b'] }, deps);
    store.settle(id, idOf(0), {
      state: 'succeeded',
      response: answer('A'),
      usage: { promptTokens: 3, outputTokens: 4 },
    });

    const view = await getJob(id, ADMIN, deps);

    expect(view).toMatchObject({
      id,
      status: 'queued',
      counts: { total: 2, succeeded: 1, failed: 0, pending: 1 },
      usage: { promptTokens: 3, outputTokens: 4 },
    });
  });

  it('answers 404 for an unknown job', async () => {
    const { deps } = setup();

    const err = await thrown(getJob('nope', ADMIN, deps));

    expect(err).toBeInstanceOf(NotFoundError);
    expect(toHttpError(err).statusCode).toBe(404);
  });
});

describe('owners', () => {
  const alice: Caller = { id: 'alice@example.com', admin: false };
  const bob: Caller = { id: 'bob@example.com', admin: false };

  it("answers 404 for another caller's job on every route, as for a job that does not exist", async () => {
    // Arrange
    const { deps } = setup();
    const { id } = await createJobOf({ prompts: ['a'] }, deps, { owner: alice.id });

    // Act
    const errors = await Promise.all([
      thrown(getJob(id, bob, deps)),
      thrown(getResultsPage(id, {}, bob, deps)),
      thrown(streamResults(id, bob, deps).next()),
      thrown(streamEvents(id, undefined, bob, deps).next()),
      thrown(cancelJob(id, bob, deps)),
    ]);

    // Assert
    for (const err of errors) {
      expect(err).toBeInstanceOf(NotFoundError);
      expect((err as Error).message).toBe(`Job ${id} not found.`);
    }
    expect((await getJob(id, alice, deps)).status).toBe('queued');
    expect((await getJob(id, ADMIN, deps)).id).toBe(id);
  });

  it("lists the caller's own jobs newest first, paged; every job only for an admin", async () => {
    // Arrange
    const { deps } = setup();
    const mine: string[] = [];
    for (let i = 0; i < 3; i++) {
      mine.push((await createJobOf({ prompts: [`a${i}`] }, deps, { owner: alice.id })).id);
      await new Promise((r) => setTimeout(r, 5));
    }
    await createJobOf({ prompts: ['b'] }, deps, { owner: bob.id });

    // Act
    const first = await listJobs(alice, { pageSize: '2' }, deps);
    const second = await listJobs(alice, { pageSize: '2', pageToken: first.nextPageToken ?? '' }, deps);
    const all = await listJobs(ADMIN, { all: 'true' }, deps);

    // Assert
    expect([...first.jobs, ...second.jobs].map((j) => j.id)).toEqual([...mine].reverse());
    expect(first.jobs[0]!.quota).toEqual({ rpm: expect.any(Number), tpm: expect.any(Number) });
    expect(all.jobs).toHaveLength(4);
    expect(await thrown(listJobs(bob, { all: 'true' }, deps))).toMatchObject({ statusCode: 403 });
    expect(await thrown(listJobs(alice, { pageSize: '101' }, deps))).toBeInstanceOf(ValidationError);
  });

  it('refuses a list pageToken made up from a job id, or replayed by another caller', async () => {
    // Arrange: alice's second page starts after one of her job ids; bob knows nothing but ids.
    const { deps } = setup();
    for (let i = 0; i < 3; i++) await createJobOf({ prompts: [`a${i}`] }, deps, { owner: alice.id });
    const first = await listJobs(alice, { pageSize: '1' }, deps);
    const madeUp = Buffer.from(first.jobs[0]!.id).toString('base64url');

    // Act
    const replayed = await thrown(listJobs(bob, { pageToken: first.nextPageToken! }, deps));
    const forged = await thrown(listJobs(bob, { pageToken: madeUp }, deps));
    const asAll = await thrown(listJobs(ADMIN, { all: 'true', pageToken: first.nextPageToken! }, deps));

    // Assert
    for (const err of [replayed, forged, asAll]) expect(err).toBeInstanceOf(ValidationError);
  });
});

describe('getResultsPage', () => {
  async function jobWith(total: number) {
    const ctx = setup();
    const prompts = Array.from({ length: total }, (_, i) => `prompt ${i}`);
    const { id } = await createJobOf({ prompts }, ctx.deps);
    return { ...ctx, id };
  }

  it('pages through every item in input order', async () => {
    const { id, deps } = await jobWith(250);

    const seen: ResultEntry[] = [];
    let pageToken: string | undefined;
    let pages = 0;
    do {
      const page = await getResultsPage(
        id,
        { pageSize: '100', ...(pageToken ? { pageToken } : {}) },
        ADMIN,
        deps,
      );
      seen.push(...page.results);
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken);

    expect(pages).toBe(3);
    expect(seen.map((r) => r.index)).toEqual(Array.from({ length: 250 }, (_, i) => i));
  });

  it('ends a page before it would pass RESULTS_PAGE_BYTES, and the next page goes on from there', async () => {
    // Arrange: 6 answers of 3 MB each.
    const { id, deps, store } = await jobWith(6);
    for (let i = 0; i < 6; i++) {
      store.settle(id, idOf(i), { state: 'succeeded', response: answer('x'.repeat(3_000_000)) });
    }

    // Act
    const first = await getResultsPage(id, { pageSize: '100' }, ADMIN, deps);
    const second = await getResultsPage(
      id,
      { pageSize: '100', pageToken: first.nextPageToken! },
      ADMIN,
      deps,
    );
    const third = await getResultsPage(
      id,
      { pageSize: '100', pageToken: second.nextPageToken! },
      ADMIN,
      deps,
    );

    // Assert
    expect(RESULTS_PAGE_BYTES).toBe(8 * 1024 * 1024);
    expect(first.results.map((r) => r.index)).toEqual([0, 1]);
    expect(second.results.map((r) => r.index)).toEqual([2, 3]);
    expect(third.results.map((r) => r.index)).toEqual([4, 5]);
    expect(third.nextPageToken).toBeUndefined();
  });

  it('has no nextPageToken on the last page when the total is a multiple of the page size', async () => {
    const { id, deps } = await jobWith(200);

    const first = await getResultsPage(id, { pageSize: '100' }, ADMIN, deps);
    const second = await getResultsPage(
      id,
      { pageSize: '100', pageToken: first.nextPageToken ?? '' },
      ADMIN,
      deps,
    );

    expect(first.nextPageToken).toBeDefined();
    expect(second.results).toHaveLength(100);
    expect(second.nextPageToken).toBeUndefined();
  });

  it('shows each item as its result line, or pending', async () => {
    const { id, store, deps } = await jobWith(3);
    store.settle(id, idOf(0), { state: 'succeeded', response: answer('zero') });
    store.settle(id, idOf(2), {
      state: 'failed',
      error: { code: 400, status: 'INVALID_ARGUMENT', message: 'bad request' },
    });

    const page = await getResultsPage(id, {}, ADMIN, deps);

    expect(page).toEqual({
      results: [
        { key: '0', index: 0, response: answer('zero') },
        { key: '1', index: 1, state: 'pending' },
        { key: '2', index: 2, error: { code: 400, status: 'INVALID_ARGUMENT', message: 'bad request' } },
      ],
    });
  });

  it.each(['0', '1001', 'abc', '2.5', '-1'])('refuses pageSize %j with a 400', async (pageSize) => {
    const { id, deps } = await jobWith(3);

    const err = await thrown(getResultsPage(id, { pageSize }, ADMIN, deps));

    expect(err).toBeInstanceOf(ValidationError);
    expect(toHttpError(err).body.error.details).toEqual([expect.objectContaining({ field: 'pageSize' })]);
  });

  it('honours a results pageToken only for the caller and job it was issued for', async () => {
    // Arrange: a token of the admin's for this job, one made up from an index, another job.
    const { id, deps } = await jobWith(3);
    const first = await getResultsPage(id, { pageSize: '1' }, ADMIN, deps);
    const other = await jobWith(3);
    const madeUp = Buffer.from('1').toString('base64url');
    const otherAdmin: Caller = { id: 'root@example.com', admin: true };

    // Act
    const replayedByAnother = await thrown(
      getResultsPage(id, { pageToken: first.nextPageToken! }, otherAdmin, deps),
    );
    const onAnotherJob = await thrown(
      getResultsPage(other.id, { pageToken: first.nextPageToken! }, ADMIN, other.deps),
    );
    const forged = await thrown(getResultsPage(id, { pageToken: madeUp }, ADMIN, deps));
    const honoured = await getResultsPage(id, { pageToken: first.nextPageToken! }, ADMIN, deps);

    // Assert
    for (const err of [replayedByAnother, onAnotherJob, forged]) expect(err).toBeInstanceOf(ValidationError);
    expect(honoured.results[0]!.index).toBe(1);
  });

  it('refuses a pageToken it did not make', async () => {
    const { id, deps } = await jobWith(3);

    const err = await thrown(getResultsPage(id, { pageToken: 'not-a-token' }, ADMIN, deps));

    expect(err).toBeInstanceOf(ValidationError);
  });

  it('answers 404 for an unknown job', async () => {
    const { deps } = setup();

    expect(await thrown(getResultsPage('nope', {}, ADMIN, deps))).toBeInstanceOf(NotFoundError);
  });
});

describe('streamResults', () => {
  it('yields one JSON line per item in input order, over several store pages', async () => {
    const { deps } = setup();
    const { id } = await createJobOf(
      { mode: 'realtime', prompts: Array.from({ length: 1203 }, (_, i) => `p${i}`) },
      deps,
    );

    const lines: string[] = [];
    for await (const line of streamResults(id, ADMIN, deps)) lines.push(line);

    expect(lines).toHaveLength(1203);
    expect(lines.every((l) => l.endsWith('\n') && !l.slice(0, -1).includes('\n'))).toBe(true);
    expect(lines.map((l) => (JSON.parse(l) as { index: number }).index)).toEqual(
      Array.from({ length: 1203 }, (_, i) => i),
    );
  });

  it('answers 404 for an unknown job before yielding anything', async () => {
    const { deps } = setup();

    expect(await thrown(streamResults('nope', ADMIN, deps).next())).toBeInstanceOf(NotFoundError);
  });
});

describe('streamEvents', () => {
  it('yields a result event per finished item as they finish, then done once the job is terminal', async () => {
    const { store, deps } = setup();
    const { id } = await createJobOf({ prompts: ['a', 'b', 'c'] }, deps);
    store.settle(id, idOf(1), { state: 'succeeded', response: answer('one') });
    const stream = streamEvents(id, undefined, ADMIN, deps);

    const early = await readFrames(stream, (f) => eventOf(f) === 'result');
    store.settle(id, idOf(2), { state: 'succeeded', response: answer('two') });
    store.settle(id, idOf(0), { state: 'failed', error: { code: 500, status: 'INTERNAL', message: 'x' } });
    await deps.lifecycle.finishIfDone(id);
    const rest = await readFrames(stream, (f) => eventOf(f) === 'done');
    const after = await stream.next();

    expect(early[0]).toBe('retry: 2000\n\n');
    const all = [...early, ...rest];
    const results = all.filter((f) => eventOf(f) === 'result').map(dataOf);
    expect(results).toEqual([
      { key: '1', index: 1, response: answer('one') },
      { key: '2', index: 2, response: answer('two') },
      { key: '0', index: 0, error: { code: 500, status: 'INTERNAL', message: 'x' } },
    ]);
    const done = all.filter((f) => eventOf(f) === 'done');
    expect(done).toHaveLength(1);
    expect(dataOf(done[0]!)).toMatchObject({ id, status: 'succeeded', counts: { succeeded: 2, failed: 1 } });
    expect(after.done).toBe(true);
  });

  it('resumes after Last-Event-ID without repeating events', async () => {
    const { store, deps } = setup();
    const { id } = await createJobOf({ prompts: ['a', 'b', 'c'] }, deps);
    for (const i of [2, 0, 1]) store.settle(id, idOf(i), { state: 'succeeded', response: answer(String(i)) });
    await deps.lifecycle.finishIfDone(id);
    const first = await readFrames(streamEvents(id, undefined, ADMIN, deps), (f) => eventOf(f) === 'done');
    const firstResult = first.find((f) => eventOf(f) === 'result')!;

    const resumed = await readFrames(
      streamEvents(id, idLine(firstResult), ADMIN, deps),
      (f) => eventOf(f) === 'done',
    );

    expect(first.filter((f) => eventOf(f) === 'result').map((f) => dataOf(f).index)).toEqual([2, 0, 1]);
    expect(resumed.filter((f) => eventOf(f) === 'result').map((f) => dataOf(f).index)).toEqual([0, 1]);
    expect(resumed.filter((f) => eventOf(f) === 'done')).toHaveLength(1);
  });

  it('gives every result event a distinct id', async () => {
    const { store, deps } = setup();
    const { id } = await createJobOf({ prompts: ['a', 'b', 'c'] }, deps);
    for (const i of [0, 1, 2]) store.settle(id, idOf(i), { state: 'succeeded', response: answer(String(i)) });
    await deps.lifecycle.finishIfDone(id);

    const frames = await readFrames(streamEvents(id, undefined, ADMIN, deps), (f) => eventOf(f) === 'done');

    const ids = frames.filter((f) => eventOf(f) === 'result').map(idLine);
    expect(new Set(ids).size).toBe(3);
    expect(ids.every((i) => Boolean(i))).toBe(true);
  });

  it('ends at once with done for a cancelled job, after its cancelled items', async () => {
    const { deps } = setup();
    const { id } = await createJobOf({ prompts: ['a', 'b'] }, deps);
    await cancelJob(id, ADMIN, deps);

    const frames = await readFrames(streamEvents(id, undefined, ADMIN, deps), () => false);

    expect(frames.filter((f) => eventOf(f) === 'result').map((f) => dataOf(f).error)).toEqual([
      expect.objectContaining({ code: 499 }),
      expect.objectContaining({ code: 499 }),
    ]);
    expect(eventOf(frames.at(-1)!)).toBe('done');
  });

  it('stops when the client goes away', async () => {
    const { deps } = setup();
    const { id } = await createJobOf({ prompts: ['a'] }, deps);
    const controller = new AbortController();
    const stream = streamEvents(id, undefined, ADMIN, deps, controller.signal);
    await stream.next();

    controller.abort();
    const frames = await readFrames(stream, () => false);

    expect(frames.some((f) => eventOf(f) === 'done')).toBe(false);
  });

  it('refuses a malformed Last-Event-ID and an unknown job', async () => {
    const { deps } = setup();
    const { id } = await createJobOf({ prompts: ['a'] }, deps);

    expect(await thrown(streamEvents(id, 'garbage', ADMIN, deps).next())).toBeInstanceOf(ValidationError);
    expect(await thrown(streamEvents('nope', undefined, ADMIN, deps).next())).toBeInstanceOf(NotFoundError);
  });
});

describe('cancelJob', () => {
  it('cancels pending items, keeps finished ones, and notifies the callback once', async () => {
    const { store, sent, capture, deps } = setup();
    const { id } = await createJobOf(
      { prompts: ['a', 'b', 'c'], callbackUrl: 'https://example.com/h' },
      deps,
    );
    store.settle(id, idOf(0), { state: 'succeeded', response: answer('zero') });

    const first = await cancelJob(id, ADMIN, deps);
    const second = await cancelJob(id, ADMIN, deps);

    expect(first).toMatchObject({
      status: 'cancelled',
      counts: { total: 3, succeeded: 1, cancelled: 2, pending: 0 },
    });
    expect(second.status).toBe('cancelled');
    expect(store.item(id, idOf(0))?.state).toBe('succeeded');
    expect(store.item(id, idOf(1))?.state).toBe('cancelled');
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ url: 'https://example.com/h', job: { status: 'cancelled' } });
    expect(capture.events('job.cancelled')).toHaveLength(1);
  });

  it('deletes the tasks of the items it cancels, only those enqueued so far', async () => {
    const { tasks, planner, deps } = setup();
    const { id } = await createJobOf({ prompts: ['a', 'b', 'c'] }, deps);
    const job = (await deps.lifecycle.getJob(id))!;
    await planner.enqueuePage(job, 0);
    expect(tasks.itemTasks.size).toBe(3);

    await cancelJob(id, ADMIN, deps);

    expect(tasks.deleted).toEqual([0, 1, 2].map((n) => expect.stringContaining(`${id}-${idOf(n)}`)));
    expect(tasks.itemTasks.size).toBe(0);
  });

  it('answers with final counts even when a worker writes the job while the cancel runs', async () => {
    // Arrange: something writes the job between the cancel's turn and its freeze of the totals.
    const { tasks, deps, store } = setup();
    const { id } = await createJobOf({ prompts: ['a', 'b', 'c'] }, deps);
    const original = tasks.deleteItems.bind(tasks);
    tasks.deleteItems = async (...args) => {
      await store.stores.jobs.setEnqueued(id, 3, Date.now() + 60_000);
      return original(...args);
    };

    // Act
    const view = await cancelJob(id, ADMIN, deps);

    // Assert
    expect(view).toMatchObject({ status: 'cancelled', counts: { cancelled: 3, pending: 0 } });
  });

  it('deletes no task of a job cancelled before anything was enqueued', async () => {
    const { tasks, deps } = setup();
    const { id } = await createJobOf({ prompts: ['a', 'b'] }, deps);

    await cancelJob(id, ADMIN, deps);

    expect(tasks.deleted).toEqual([]);
  });

  it('does not notify when cancelling a job that already finished', async () => {
    const { store, sent, deps } = setup();
    const { id } = await createJobOf({ prompts: ['a'], callbackUrl: 'https://example.com/h' }, deps);
    store.settle(id, idOf(0), { state: 'succeeded', response: answer('zero') });
    await deps.lifecycle.finishIfDone(id);
    const notifiedBefore = sent.length;

    const view = await cancelJob(id, ADMIN, deps);

    expect(view.status).toBe('succeeded');
    expect(sent).toHaveLength(notifiedBefore);
  });

  it('answers 404 for an unknown job', async () => {
    const { deps } = setup();

    expect(await thrown(cancelJob('nope', ADMIN, deps))).toBeInstanceOf(NotFoundError);
  });
});

describe("owners' media at submit", () => {
  const aliceCaller: Caller = { id: 'alice@example.com', admin: false };
  const withMedia = (gcsUri: string) => ({ requests: [{ prompt: 'look', media: [{ gcsUri }] }] });
  const mediaDeps = () => ({
    ...setup().deps,
    mediaGcsAllowed: ['gs://bkt/media/'],
    mediaGcsShared: ['gs://bkt/media/samples/'],
  });

  it("takes the caller's own folder and the shared samples", async () => {
    const deps = mediaDeps();
    const own = `gs://bkt/media/${ownerPrefix(aliceCaller.id)}/a.png`;

    for (const uri of [own, 'gs://bkt/media/samples/red.png']) {
      await expect(createJobOf(withMedia(uri), deps, { owner: aliceCaller.id })).resolves.toMatchObject({
        total: 1,
      });
    }
  });

  it("refuses another owner's object exactly as one that is not there, naming only the caller's locations", async () => {
    const deps = mediaDeps();
    const bob = ownerPrefix('bob@example.com');
    const theirs = `gs://bkt/media/${bob}/a.png`;
    const none = `gs://bkt/media/${bob}/no-such.png`;

    const [a, b] = await Promise.all(
      [theirs, none].map((uri) => thrown(createJobOf(withMedia(uri), deps, { owner: aliceCaller.id }))),
    );

    expect(a).toBeInstanceOf(ValidationError);
    expect((a as Error).message.replace(theirs, 'URI')).toBe((b as Error).message.replace(none, 'URI'));
    expect((a as Error).message).not.toContain(`gs://bkt/media/${bob}/ `);
    expect((a as Error).message).toContain(`gs://bkt/media/${ownerPrefix(aliceCaller.id)}/`);
  });

  it('tells the caller its owner prefix and media locations in GET /jobs', async () => {
    const list = await listJobs(aliceCaller, {}, mediaDeps());

    expect(list.owner).toEqual({
      id: 'alice@example.com',
      prefix: ownerPrefix('alice@example.com'),
      mediaLocations: [`gs://bkt/media/${ownerPrefix('alice@example.com')}/`, 'gs://bkt/media/samples/'],
    });
  });
});
