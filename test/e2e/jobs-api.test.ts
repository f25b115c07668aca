import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Storage } from '@google-cloud/storage';
import { describe, expect, it } from 'vitest';
import { JobsApiError, verifyCallback } from '../../functions/api/client.js';
import { call, createJob, jobsClient, mediaFolder, readEvents, stack, waitForJob } from '../helpers/e2e.js';

const PNG_1X1 = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==',
  'base64',
);

describe('jobs API: errors a user can act on', () => {
  it.each([
    ['no items', {}, 400, /exactly one of prompts or requests/],
    ['both prompts and requests', { prompts: ['a'], requests: [{ prompt: 'b' }] }, 400, /exactly one/],
    ['an empty prompt', { prompts: ['ok', ''] }, 400, /prompts\[1\]/],
    ['an unknown model', { model: 'gemini-0', prompts: ['a'] }, 400, /Unknown model gemini-0/],
    ['an unknown field', { prompts: ['a'], temperature: 1 }, 400, /temperature|Unrecognized/],
    [
      'http media',
      { requests: [{ prompt: 'a', media: [{ url: 'http://x.test/a.png' }] }] },
      400,
      /requests\[0\]\.media\[0\]\.url/,
    ],
    [
      'duplicate keys',
      {
        requests: [
          { key: 'a', prompt: 'x' },
          { key: 'a', prompt: 'y' },
        ],
      },
      400,
      /duplicate key/,
    ],
    ['too many items', { prompts: Array.from({ length: 50_001 }, () => 'p') }, 413, /at most 50000/],
    ['an item too large', { prompts: ['x'.repeat(300_000)] }, 413, /prompts\[0\]/],
  ])('refuses %s with a 4xx and a message naming the field', async (_name, body, status, message) => {
    // Act
    const res = await call('POST', '/jobs', body);
    // Assert
    expect(res.status).toBe(status);
    const error = res.body.error as { code: number; message: string; details?: unknown };
    expect(error.code).toBe(status);
    expect(`${error.message} ${JSON.stringify(error.details)}`).toMatch(message);
  });

  it('answers unknown jobs, routes and methods with JSON errors and no stack trace', async () => {
    const unknown = await jobsClient()
      .get('00000000-0000-0000-0000-000000000000')
      .catch((err: unknown) => err);
    const route = await call('GET', '/nothing-here');
    const method = await call('DELETE', '/jobs');
    const badJson = await fetch(`${stack().ingestUrl}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"prompts": [',
    });
    const badJsonText = await badJson.text();

    expect(unknown).toBeInstanceOf(JobsApiError);
    expect(unknown).toMatchObject({ status: 404, body: { error: { code: 404, status: 'NOT_FOUND' } } });
    expect(route.status).toBe(404);
    expect(method.status).toBe(405);
    expect(badJson.status).toBe(400);
    expect(badJsonText).not.toMatch(/at .*\.js:\d+/);
    expect(JSON.parse(badJsonText)).toMatchObject({ error: { code: 400, status: 'INVALID_ARGUMENT' } });
  });
});

describe('jobs API: results, events, callback, media', () => {
  it('pages results in input order and resumes the event stream after Last-Event-ID', async () => {
    // Arrange
    const id = await createJob({ prompts: Array.from({ length: 30 }, (_, i) => `page ${i}`) });
    await waitForJob(id, 60_000);

    // Act
    const indexes: number[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await jobsClient().resultsPage(id, {
        pageSize: 7,
        ...(token ? { pageToken: token } : {}),
      });
      indexes.push(...page.results.map((r) => r.index));
      token = page.nextPageToken;
      pages++;
    } while (token);
    const first = await readEvents(id, undefined, 10);
    const rest = await readEvents(id, first.results[9]!.id);
    const badPage = await jobsClient()
      .resultsPage(id, { pageSize: 5000 })
      .catch((err: unknown) => err);

    // Assert
    expect(pages).toBe(5);
    expect(indexes).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(first.results).toHaveLength(10);
    expect(rest.results).toHaveLength(20);
    const seen = [...first.results, ...rest.results].map((r) => r.data.index);
    expect(new Set(seen).size).toBe(30);
    expect(rest.done).toMatchObject({ status: 'succeeded', counts: { succeeded: 30 } });
    expect(badPage).toBeInstanceOf(JobsApiError);
    expect(badPage).toMatchObject({ status: 400, body: { error: { status: 'INVALID_ARGUMENT' } } });
  }, 90_000);

  it('calls the callback URL exactly once when the job ends, signed with the owner’s key', async () => {
    // Arrange
    const received: Array<{ headers: IncomingHttpHeaders; body: string }> = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        res.end('ok');
      });
    });
    const { key } = await jobsClient().callbackKey();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/done`;

    // Act
    const id = await createJob({
      prompts: Array.from({ length: 20 }, (_, i) => `cb ${i}`),
      callbackUrl: url,
    });
    await waitForJob(id, 60_000);
    await new Promise((r) => setTimeout(r, 1500));
    server.close();

    // Assert
    expect(received).toHaveLength(1);
    const payload = verifyCallback(received[0]!.headers, received[0]!.body, key, { url });
    expect(payload).toMatchObject({ type: 'job.succeeded', webhookId: `job_${id}` });
    expect(payload.data).toMatchObject({ id, status: 'succeeded', counts: { succeeded: 20 } });
  }, 90_000);

  it('sends gs:// media inline with the prompt', async () => {
    // Arrange
    const storage = new Storage({ projectId: stack().projectId, apiEndpoint: stack().storageEmulatorHost });
    await storage
      .bucket(stack().bucket)
      .file(`${mediaFolder()}pixel.png`)
      .save(PNG_1X1, { contentType: 'image/png' });

    // Act
    const id = await createJob({
      requests: [
        {
          key: 'img',
          prompt: 'Describe this image.',
          media: [{ gcsUri: `gs://${stack().bucket}/${mediaFolder()}pixel.png` }],
        },
        {
          key: 'missing',
          prompt: 'And this one?',
          media: [{ gcsUri: `gs://${stack().bucket}/${mediaFolder()}none.png` }],
        },
      ],
    });
    const job = await waitForJob(id, 60_000);
    const page = await jobsClient().resultsPage(id);
    const [img, missing] = page.results;

    // Assert
    expect(job.counts).toMatchObject({ succeeded: 1, failed: 1 });
    expect(img && 'response' in img && JSON.stringify(img.response)).toContain('[media:1]');
    expect(missing).toMatchObject({ key: 'missing', error: { code: 400 } });
    expect(missing && 'error' in missing && missing.error.message).toMatch(/none\.png/);
  }, 90_000);

  it('sends media too big to inline through the Files API', async () => {
    // Arrange: 19 MiB, over the 18 MiB inline limit.
    const storage = new Storage({ projectId: stack().projectId, apiEndpoint: stack().storageEmulatorHost });
    await storage
      .bucket(stack().bucket)
      .file(`${mediaFolder()}clip.mp4`)
      .save(Buffer.alloc(19 * 1024 * 1024, 1), { contentType: 'video/mp4', resumable: false });

    // Act
    const id = await createJob({
      requests: [
        {
          key: 'clip',
          prompt: 'What happens here?',
          media: [{ gcsUri: `gs://${stack().bucket}/${mediaFolder()}clip.mp4` }],
        },
      ],
    });
    const job = await waitForJob(id, 60_000);
    const page = await jobsClient().resultsPage(id);
    const files = (await (await fetch(`${stack().geminiBaseUrl}/v1beta/files?key=local`)).json()) as {
      files?: Array<{ mimeType: string; sizeBytes: string }>;
    };

    // Assert
    expect(job.counts).toMatchObject({ succeeded: 1 });
    expect(JSON.stringify(page.results[0])).toContain('[media:1]');
    expect(
      files.files?.some((f) => f.mimeType === 'video/mp4' && f.sizeBytes === String(19 * 1024 * 1024)),
    ).toBe(true);
  }, 90_000);
});
