import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CRC32C } from '@google-cloud/storage';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createObjectStore, createStorageClient } from '../../../functions/platform/object-store.js';

// The functions' Storage client retries a write the service answered with a transient error: the
// library's default retries a write only when it carries a generation precondition, and putJson's
// (answers, parked paid answers, summaries) carry none, being the same bytes under the same name.

const BUCKET = 'fanout-unit';
let server: Server | undefined;

afterEach(async () => {
  if (server) {
    server.close();
    await once(server, 'close');
    server = undefined;
  }
  vi.unstubAllEnvs();
});

/** A Cloud Storage stand-in that answers the first `failures` uploads 503, then takes `data`. */
async function flakyStorage(failures: number, data: string): Promise<{ url: string; uploads: () => number }> {
  // The client checks the object's hash in the answer against what it sent.
  const md5Hash = createHash('md5').update(data).digest('base64');
  const crc32c = new CRC32C();
  crc32c.update(Buffer.from(data));
  let uploads = 0;
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      uploads++;
      if (uploads <= failures) {
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 503, message: 'Backend Error' } }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          bucket: BUCKET,
          name: 'answers/j/1.json',
          generation: '1',
          md5Hash,
          crc32c: crc32c.toString(),
        }),
      );
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, uploads: () => uploads };
}

describe('the functions Storage client', () => {
  it('writes a JSON object again after a transient 503', async () => {
    // Arrange
    const value = { response: 'paid for' };
    const storage = await flakyStorage(1, JSON.stringify(value));
    vi.stubEnv('STORAGE_EMULATOR_HOST', storage.url);
    const objects = createObjectStore(createStorageClient('fanout-unit'), BUCKET);

    // Act
    await objects.putJson('answers/j/1.json', value);

    // Assert
    expect(storage.uploads()).toBe(2);
  });
});
