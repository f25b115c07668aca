import { request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import { http } from '@google-cloud/functions-framework';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installJsonBodyErrors } from '../../../functions/platform/body-errors.js';

// The Functions Framework's own server and parser chain (getTestServer builds exactly what
// production runs), with the parsers bounded at a small cap so the cases stay small.
const CAP = 64 * 1024;
let server: Server;
let port: number;

beforeAll(async () => {
  installJsonBodyErrors(CAP);
  http('bodies', (req, res) => {
    res.status(200).json({ got: req.body });
  });
  server = getTestServer('bodies');
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  port = (server.address() as AddressInfo).port;
});

afterAll(() => {
  server.closeAllConnections();
  server.close();
});

interface Answer {
  status: number;
  json: { error?: { code: number; status: string; message: string }; got?: unknown };
}

const answerOf = (res: IncomingMessage): Promise<Answer> =>
  new Promise((ok) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () =>
      ok({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString()) }),
    );
  });

/**
 * Sends `chunks` (and ends the body only if `end`), and resolves with the answer as soon as it
 * comes: a body that is never ended can only be answered by a server that stopped reading it.
 */
function send(headers: Record<string, string>, chunks: Buffer[], end: boolean): Promise<Answer> {
  return new Promise((ok, fail) => {
    const req = httpRequest({ port, host: '127.0.0.1', method: 'POST', path: '/', headers }, (res) =>
      answerOf(res).then(ok, fail),
    );
    req.on('error', () => {}); // the server closes a refused body's connection; the answer came first
    for (const c of chunks) req.write(c);
    if (end) req.end();
  });
}

const json = { 'content-type': 'application/json' };

function expectTooLarge(answer: Answer): void {
  expect(answer.status).toBe(413);
  expect(answer.json.error?.code).toBe(413);
  expect(answer.json.error?.message).toBe(
    `The body is larger than ${CAP} bytes; send a JSONL file to the bucket instead.`,
  );
}

describe('bodies bounded before they are read', () => {
  it('refuses a gzip body that inflates past the cap, and the server keeps serving', async () => {
    // Arrange: ~1 KB on the wire, 16 MiB of zeros once inflated (the framework inflates gzip).
    const bomb = gzipSync(Buffer.alloc(16 * 1024 * 1024));
    expect(bomb.length).toBeLessThan(CAP);

    // Act
    const refused = await send({ ...json, 'content-encoding': 'gzip' }, [bomb], true);
    const after = await send(json, [Buffer.from('{"prompts":["a"]}')], true);

    // Assert
    expectTooLarge(refused);
    expect(after).toEqual({ status: 200, json: { got: { prompts: ['a'] } } });
  });

  it('refuses a declared Content-Length over the cap without reading the body', async () => {
    // The body is never finished: only a server that did not wait for it can answer.
    const answer = await send({ ...json, 'content-length': String(CAP + 1) }, [Buffer.from('{"a":')], false);

    expectTooLarge(answer);
  });

  it('refuses a body without a length as soon as its bytes pass the cap', async () => {
    const answer = await send(
      { ...json, 'transfer-encoding': 'chunked' },
      [Buffer.from(`{"a":"${'x'.repeat(CAP)}`)],
      false,
    );

    expectTooLarge(answer);
  });

  it('refuses a compressed body whose bytes on the wire pass the cap, before it ends', async () => {
    // Arrange: 2 x CAP of bytes gzip cannot shrink, so the wire passes the cap on its own.
    const noise = Buffer.from(Array.from({ length: 2 * CAP }, (_, i) => (i * 7919 + (i >> 3) * 31) % 251));
    const wire = gzipSync(noise, { level: 0 });

    const answer = await send({ ...json, 'content-encoding': 'gzip' }, [wire], false);

    expectTooLarge(answer);
  });

  it('lets a client still writing a refused body read the 413, not a reset', async () => {
    // Arrange: a client that sends part of a body declared at 100 x CAP, goes on writing after the
    // answer is out, and only then reads. A server that closed with its bytes unread made the
    // kernel reset the connection, and the client failed with EPIPE (20 of 20) without an answer.
    const firstLine = (): Promise<string> =>
      new Promise((ok) => {
        const socket = connect(port, '127.0.0.1');
        const chunks: Buffer[] = [];
        socket.pause();
        socket.on('error', (e: NodeJS.ErrnoException) => ok(`${e.code}`));
        socket.on('data', (c: Buffer) => chunks.push(c));
        socket.on('end', () => ok(Buffer.concat(chunks).toString().split('\r\n')[0] ?? ''));
        socket.write(
          `POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${100 * CAP}\r\n\r\n`,
        );
        socket.write(Buffer.alloc(2 * CAP, 0x20));
        setTimeout(() => {
          socket.write(Buffer.alloc(2 * CAP, 0x20));
          setTimeout(() => socket.resume(), 100);
        }, 200);
      });

    // Act
    const lines = await Promise.all(Array.from({ length: 5 }, firstLine));

    // Assert
    expect(lines).toEqual(Array(5).fill('HTTP/1.1 413 Payload Too Large'));
  });

  it('parses a body at the cap, gzip or not', async () => {
    const body = Buffer.from(`{"a":"${'x'.repeat(CAP - 8)}"}`);
    expect(body.length).toBe(CAP);

    const plain = await send(json, [body], true);
    const zipped = await send({ ...json, 'content-encoding': 'gzip' }, [gzipSync(body)], true);

    expect(plain.status).toBe(200);
    expect(zipped.status).toBe(200);
    expect((zipped.json.got as { a: string }).a).toHaveLength(CAP - 8);
  });
});
