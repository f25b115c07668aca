import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { stack } from '../helpers/e2e.js';

/**
 * The functions host behaves like Cloud Run: an instance that dies is replaced. This file kills
 * instances of the shared local cloud (at most twice, and only once the previous replacement
 * listens), so other files running at the same time also see it happen, as they would in production.
 * Linux only: it reads the host's children with `ps` and its process title from /proc.
 */

interface HostState {
  /** Instances: children of the host running functions-host.ts (tsx also starts an esbuild child). */
  pids: number[];
  listening: number;
  of: number;
}

function hostState(hostPid: number): HostState {
  let rows = '';
  try {
    rows = execFileSync('ps', ['--ppid', String(hostPid), '-o', 'pid=,args='], { encoding: 'utf8' });
  } catch {
    // ps exits with 1 when the host has no children at all.
  }
  const pids = rows
    .split('\n')
    .filter((row) => row.includes('functions-host'))
    .map((row) => Number.parseInt(row, 10));
  // The host keeps its title up to date: "functions-host: 2 of 2 instances listening".
  const title = readFileSync(`/proc/${hostPid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  const match = /(\d+) of (\d+) instances listening/.exec(title);
  if (!match) throw new Error(`the functions host's title says no instance count: ${title}`);
  return { pids: pids.sort((a, b) => a - b), listening: Number(match[1]), of: Number(match[2]) };
}

/** Waits until every instance listens and `changed` holds; fails after `timeoutMs`. */
async function settled(
  hostPid: number,
  changed: (state: HostState) => boolean,
  timeoutMs = 30_000,
): Promise<HostState> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = hostState(hostPid);
    if (state.listening === state.of && state.pids.length === state.of && changed(state)) return state;
    if (Date.now() > deadline)
      throw new Error(`the functions host did not recover in ${timeoutMs} ms: ${JSON.stringify(state)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Asking {
  /** Resolves once an answer arrives that was asked for after `since`; fails after `timeoutMs`. */
  answerAfter(since: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<{ longestSilenceMs: number }>;
}

/** Asks `url` for an unknown job over and over until stopped, timing the longest wait for an answer. */
function keepAsking(url: string): Asking {
  let running = true;
  let lastAnsweredAsk = 0;
  let lastAnswerAt = Date.now();
  let longestSilenceMs = 0;
  const loop = (async () => {
    while (running) {
      const askedAt = Date.now();
      const ok = await fetch(url, { signal: AbortSignal.timeout(10_000) }).then(
        async (res) =>
          res.status === 404 && ((await res.json()) as { error?: { code?: number } }).error?.code === 404,
        () => false,
      );
      const now = Date.now();
      longestSilenceMs = Math.max(longestSilenceMs, now - lastAnswerAt);
      if (ok) {
        lastAnswerAt = now;
        lastAnsweredAsk = askedAt;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return {
    async answerAfter(since, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (lastAnsweredAsk < since) {
        if (Date.now() > deadline) throw new Error(`no answer in the ${timeoutMs} ms after a restart`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      running = false;
      await loop;
      return { longestSilenceMs: Math.max(longestSilenceMs, Date.now() - lastAnswerAt) };
    },
  };
}

describe('functions host', () => {
  it('starts a new instance when one is killed, and keeps answering meanwhile', async () => {
    // Arrange
    const { functionsPid, ingestUrl } = stack();
    const unknownJob = `${ingestUrl}/jobs/00000000-0000-0000-0000-00000000dead`;
    const before = await settled(functionsPid, () => true);
    // A first answer before the clock starts: an instance's first request is slow (clients connect).
    expect((await fetch(unknownJob)).status).toBe(404);
    const asking = keepAsking(unknownJob);

    // Act: kill an instance, wait for its replacement to listen and the stack to answer, again.
    const rounds: Array<{ killed: number[]; started: number[]; recoveredInMs: number }> = [];
    let previous = before;
    for (let round = 0; round < 2; round++) {
      const killedAt = Date.now();
      process.kill(functionsPid, 'SIGUSR2');
      const last = previous;
      const after = await settled(functionsPid, (s) => last.pids.some((p) => !s.pids.includes(p)));
      rounds.push({
        killed: last.pids.filter((p) => !after.pids.includes(p)),
        started: after.pids.filter((p) => !last.pids.includes(p)),
        recoveredInMs: Date.now() - killedAt,
      });
      // Gentle to the files sharing this stack: the next kill waits for the stack to answer again.
      await asking.answerAfter(Date.now());
      previous = after;
    }
    const availability = await asking.stop();
    const final = hostState(functionsPid).pids;

    // Assert
    for (const round of rounds) {
      // Another file may kill an instance at the same time (test/e2e/lifecycle-chaos does).
      expect(round.killed.length).toBeGreaterThanOrEqual(1);
      expect(round.started).toHaveLength(round.killed.length);
      expect(round.recoveredInMs).toBeLessThan(30_000);
    }
    expect(previous.pids).toHaveLength(before.of);
    // The oldest instance goes first: with two or fewer, none of the first ones is left.
    if (before.of <= 2) expect(previous.pids.filter((p) => before.pids.includes(p))).toEqual([]);
    // Other instances answer while one is replaced (the replacement's first requests are slow); a
    // single instance, or a second kill from elsewhere meanwhile, means an outage while one restarts.
    const alone = rounds.every((r) => r.killed.length === 1) && final.every((p) => previous.pids.includes(p));
    expect(availability.longestSilenceMs).toBeLessThan(before.of > 1 && alone ? 5_000 : 20_000);
  });
});
