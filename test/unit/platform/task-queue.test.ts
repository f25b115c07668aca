import { describe, expect, it } from 'vitest';
import { emulatorClientOptions, itemTaskId } from '../../../functions/platform/task-queue.js';

describe('itemTaskId', () => {
  const jobId = '3f1c9a2e-7b44-4e0a-9a51-0c2d6f1e8b7a';

  it('is the same for the same item, so a retried enqueue never doubles a task', () => {
    expect(itemTaskId(jobId, '000000007')).toBe(itemTaskId(jobId, '000000007'));
  });

  it('is distinct for distinct items and jobs', () => {
    const otherJob = '9d0e1f2a-0000-4000-8000-123456789abc';
    const ids = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const itemId = String(i).padStart(9, '0');
      ids.add(itemTaskId(jobId, itemId));
      ids.add(itemTaskId(otherJob, itemId));
    }

    expect(ids.size).toBe(10_000);
  });

  it('uses only the characters and length Cloud Tasks accepts in a task id', () => {
    for (const itemId of ['000000000', '000049999', '123456789']) {
      const id = itemTaskId(jobId, itemId);

      expect(id).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(id.length).toBeLessThanOrEqual(500);
    }
  });

  it('does not start with the sequential part, so names spread over the key space', () => {
    const a = itemTaskId(jobId, '000000001');
    const b = itemTaskId(jobId, '000000002');

    expect(a.slice(0, 8)).not.toBe(b.slice(0, 8));
  });
});

describe('emulatorClientOptions', () => {
  it('points the client at HOST:PORT over plain gRPC', () => {
    const options = emulatorClientOptions('127.0.0.1:8123');

    expect(options?.apiEndpoint).toBe('127.0.0.1');
    expect(options?.port).toBe(8123);
    expect(options?.sslCreds).toBeDefined();
    expect(options?.sslCreds?._isSecure()).toBe(false);
  });

  it('reads a bracketed IPv6 host', () => {
    const options = emulatorClientOptions('[::1]:8123');

    expect(options?.apiEndpoint).toBe('::1');
    expect(options?.port).toBe(8123);
  });

  it('refuses something that is not HOST:PORT', () => {
    for (const host of ['127.0.0.1', '']) {
      expect(() => emulatorClientOptions(host)).toThrow(/HOST:PORT/);
    }
  });

  it('refuses a URL, which would otherwise become the gRPC host name', () => {
    expect(() => emulatorClientOptions('http://127.0.0.1:8123')).toThrow(/HOST:PORT/);
  });
});
