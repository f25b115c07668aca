import { describe, expect, it } from 'vitest';
import { cancelJob, createJob, getJob, type IngestDeps } from '../../../functions/ingest/handler.js';
import { createPageTokens } from '../../../functions/ingest/page-tokens.js';
import { retryJob } from '../../../functions/ingest/retry-job.js';
import type { Caller } from '../../../functions/platform/caller.js';
import { ConflictError, NotFoundError, ValidationError } from '../../../functions/platform/errors.js';
import { createLogger } from '../../../functions/platform/logger.js';
import { fakeWorld } from '../../helpers/fakes.js';
import { createLogCapture } from '../../helpers/log-capture.js';
import { testQuotas } from '../../helpers/test-quotas.js';

const OWNER: Caller = { id: 'owner@example.com', admin: false };
const OTHER: Caller = { id: 'other@example.com', admin: false };

function setup() {
  const logger = createLogger({ destination: createLogCapture().stream });
  const world = fakeWorld({ quotas: testQuotas(), logger });
  const deps: IngestDeps = {
    lifecycle: world.lifecycle,
    objects: world.objects,
    quotas: testQuotas(),
    logger,
    pageTokens: createPageTokens('unit-test-page-token-key-0123456789'),
  };
  return { store: world.db, tasks: world.tasks, deps };
}

const idOf = (index: number) => String(index).padStart(9, '0');
const answer = { candidates: [{ content: { role: 'model', parts: [{ text: 'ok' }] } }] };
const failure = { code: 400, status: 'INVALID_ARGUMENT', message: 'bad' };

async function thrown(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => err,
  );
}

/** A finished job of four keyed prompts: a and c answered, b failed, d cancelled. */
async function finishedJob(deps: IngestDeps, store: ReturnType<typeof setup>['store']) {
  const requests = ['a', 'b', 'c', 'd'].map((key) => ({ key, prompt: `prompt ${key}` }));
  const { created } = await createJob({ requests }, deps, { owner: OWNER.id });
  const id = created.id;
  store.settle(id, idOf(0), { state: 'succeeded', response: answer });
  store.settle(id, idOf(1), { state: 'failed', error: failure });
  store.settle(id, idOf(2), { state: 'succeeded', response: answer });
  await cancelJob(id, OWNER, deps);
  return { id, requests };
}

describe('retryJob', () => {
  it('re-runs the failed and cancelled items as a new job linked both ways, keys kept', async () => {
    const { store, deps } = setup();
    const { id } = await finishedJob(deps, store);

    const { created, replayed } = await retryJob(id, {}, OWNER, deps);

    expect(replayed).toBe(false);
    expect(created).toMatchObject({ status: 'queued', mode: 'realtime', total: 2 });
    expect([store.item(created.id, idOf(0))?.key, store.item(created.id, idOf(1))?.key]).toEqual(['b', 'd']);
    expect(store.item(created.id, idOf(1))?.request).toEqual(store.item(id, idOf(3))?.request);
    expect((await getJob(created.id, OWNER, deps)).retryOf).toBe(id);
    expect((await getJob(id, OWNER, deps)).retries).toEqual([created.id]);
  });

  it("answers 404 for another caller's job and creates nothing", async () => {
    const { store, deps } = setup();
    const { id } = await finishedJob(deps, store);
    const jobs = store.jobs.size;

    expect(await thrown(retryJob(id, {}, OTHER, deps))).toBeInstanceOf(NotFoundError);
    expect(store.jobs.size).toBe(jobs);
  });

  it('answers 409 while the job is still running, and when every item succeeded', async () => {
    const { store, deps } = setup();
    const { created } = await createJob({ prompts: ['x', 'y'] }, deps, { owner: OWNER.id });

    const running = await thrown(retryJob(created.id, {}, OWNER, deps));
    store.settle(created.id, idOf(0), { state: 'succeeded', response: answer });
    store.settle(created.id, idOf(1), { state: 'succeeded', response: answer });
    await deps.lifecycle.finishIfDone(created.id);
    const allDone = await thrown(retryJob(created.id, {}, OWNER, deps));

    expect(running).toBeInstanceOf(ConflictError);
    expect((running as Error).message).toMatch(/is queued; retry it once it has finished/);
    expect(allDone).toBeInstanceOf(ConflictError);
    expect((allDone as Error).message).toMatch(/every item of job .* succeeded/);
  });

  it('with a new prompt set, runs only the lines whose request changed, whatever their state', async () => {
    const { store, deps } = setup();
    const { id, requests } = await finishedJob(deps, store);
    const next = requests.map((r) =>
      r.key === 'b' || r.key === 'c' ? { ...r, prompt: `${r.prompt}, fixed` } : r,
    );

    const { created } = await retryJob(id, { requests: next }, OWNER, deps);
    const unchanged = await thrown(retryJob(id, { requests }, OWNER, deps));

    expect(created.total).toBe(2);
    expect([store.item(created.id, idOf(0))?.key, store.item(created.id, idOf(1))?.key]).toEqual(['b', 'c']);
    expect(JSON.stringify(store.item(created.id, idOf(0))?.request)).toContain('prompt b, fixed');
    expect(unchanged).toBeInstanceOf(ConflictError);
  });

  it('refuses a body that would change the model or mode', async () => {
    const { store, deps } = setup();
    const { id } = await finishedJob(deps, store);

    const err = await thrown(retryJob(id, { model: 'gemini-other', prompts: ['x'] }, OWNER, deps));

    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).details).toEqual([{ field: 'model', message: 'not allowed in a retry' }]);
  });

  it('honours an Idempotency-Key: the same key and body give the same job, another body 409', async () => {
    const { store, deps } = setup();
    const { id, requests } = await finishedJob(deps, store);
    const key = { key: 'retry-1', caller: OWNER.id };

    const first = await retryJob(id, {}, OWNER, deps, key);
    const again = await retryJob(id, {}, OWNER, deps, key);
    const changed = requests.map((r) => ({ ...r, prompt: `${r.prompt}, again` }));
    const other = await thrown(retryJob(id, { requests: changed }, OWNER, deps, key));

    expect(again).toEqual({ created: { ...first.created, status: 'queued' }, replayed: true });
    expect(other).toBeInstanceOf(ConflictError);
    expect((other as Error).message).toMatch(/Idempotency-Key was used with another body/);
    expect((await getJob(id, OWNER, deps)).retries).toEqual([first.created.id]);
  });
});
