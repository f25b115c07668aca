/**
 * `GET /jobs/{id}/events` sends `done` only once the counts are final (issue 17, scenario 10): a
 * cancelled job whose sweep has not finished (`cancelPending`) is terminal but its counts still move.
 */
import { describe, expect, it } from 'vitest';
import { streamEvents } from '../../../functions/ingest/events.js';
import { createJob, type IngestDeps } from '../../../functions/ingest/handler.js';
import { createPageTokens } from '../../../functions/ingest/page-tokens.js';
import type { Caller } from '../../../functions/platform/caller.js';
import { createLogger } from '../../../functions/platform/logger.js';
import { roundTrip } from '../../helpers/fake-stores.js';
import { fakeWorld } from '../../helpers/fakes.js';
import { testQuotas } from '../../helpers/test-quotas.js';

const ADMIN: Caller = { id: 'admin@example.com', admin: true };
const eventOf = (frame: string) => /^event: (\w+)$/m.exec(frame)?.[1];
const dataOf = (frame: string) => JSON.parse(/^data: (.*)$/m.exec(frame)![1]!);

function setup() {
  const logger = createLogger({ level: 'silent' });
  const world = fakeWorld({ quotas: testQuotas(), logger });
  const deps: IngestDeps = {
    lifecycle: world.lifecycle,
    objects: world.objects,
    quotas: testQuotas(),
    logger,
    pollIntervalMs: 1,
    pageTokens: createPageTokens('unit-test-page-token-key-0123456789'),
  };
  return { db: world.db, lifecycle: world.lifecycle, deps };
}

describe('events: done only when the counts are final', () => {
  it('sends no done while a cancel is still sweeping, then done with the final counts', async () => {
    // Arrange: a cancel that turned the job terminal and stopped before its sweep (it crashed).
    const { db, lifecycle, deps } = setup();
    const { id } = (await createJob({ prompts: ['a', 'b'] }, deps)).created;
    await db.stores.jobs.cancel(id);
    const stream = streamEvents(id, undefined, ADMIN, deps);
    expect((await stream.next()).value).toBe('retry: 2000\n\n');

    // Act: let the stream poll the cancelled job several times, then let the cancel finish.
    const frames: string[] = [];
    let ended = false;
    const reading = (async () => {
      for (;;) {
        const next = await stream.next();
        if (next.done) break;
        frames.push(next.value);
        if (eventOf(next.value) === 'done') break;
      }
      ended = true;
    })();
    const polls = db.calls['jobs.get'] ?? 0;
    while ((db.calls['jobs.get'] ?? 0) < polls + 5 && !ended) await roundTrip();
    const beforeCancelEnded = [...frames];
    await lifecycle.finishCancel((await lifecycle.getJob(id))!);
    await reading;

    // Assert
    expect(beforeCancelEnded.map(eventOf)).not.toContain('done');
    const results = frames.filter((f) => eventOf(f) === 'result');
    const done = frames.filter((f) => eventOf(f) === 'done');
    expect(results).toHaveLength(2);
    expect(done).toHaveLength(1);
    expect(dataOf(done[0]!)).toMatchObject({
      status: 'cancelled',
      counts: { total: 2, cancelled: 2, pending: 0 },
    });
  });
});
