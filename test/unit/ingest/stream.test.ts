import { EventEmitter } from 'node:events';
import type { Response } from '@google-cloud/functions-framework';
import { describe, expect, it } from 'vitest';
import { pipeStream } from '../../../functions/ingest/stream.js';

/** A response whose client reads nothing: every write fills the buffer; `leave()` is the client going away. */
function stalledResponse() {
  const res = Object.assign(new EventEmitter(), {
    destroyed: false,
    written: [] as string[],
    ended: false,
    status() {
      return res;
    },
    set() {
      return res;
    },
    flushHeaders() {},
    write(chunk: string) {
      res.written.push(chunk);
      return false;
    },
    end() {
      res.ended = true;
    },
    leave() {
      res.destroyed = true;
      res.emit('close');
    },
  });
  return res;
}

describe('pipeStream', () => {
  it('ends, and closes the generator, when a client whose buffer is full goes away', async () => {
    // Arrange: an endless stream to a client that reads nothing.
    const res = stalledResponse();
    let closed = false;
    async function* endless() {
      try {
        for (let n = 0; ; n++) yield `data: ${n}\n\n`;
      } finally {
        closed = true;
      }
    }

    // Act
    const piping = pipeStream(res as unknown as Response, endless(), 'text/event-stream');
    await new Promise((r) => setTimeout(r, 20));
    res.leave();
    const outcome = await Promise.race([
      piping.then(() => 'ended'),
      new Promise((r) => setTimeout(() => r('still waiting'), 1000)),
    ]);

    // Assert
    expect(outcome).toBe('ended');
    expect(closed).toBe(true);
    expect(res.written).toHaveLength(2);
  });
});
