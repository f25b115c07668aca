import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const PROBE = resolve(import.meta.dirname, '..', '..', 'fixtures', 'runtime', 'domain-probe.ts');

describe('installNoDomains (platform/runtime.ts)', () => {
  it('serves HTTP and CloudEvent functions through the framework with no domain hook turned on', async () => {
    // Arrange: a process of its own (the hook, once on, stays on), configured as nowhere
    const env = { PATH: process.env.PATH, METADATA_SERVER_DETECTION: 'none', NODE_OPTIONS: '' };

    // Act
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--expose-internals', '--no-warnings', '--import', 'tsx', PROBE],
      { env, cwd: resolve(import.meta.dirname, '..', '..', '..'), timeout: 30_000 },
    );
    const probe = JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, unknown>;

    // Assert: both answered through the framework's wrappers (500: with no configuration each
    // handler fails, and the CloudEvent's answer goes through process.domain.bind), and no promise
    // pays for destroy tracking
    expect(probe).toEqual({ worker: 500, intake: 500, destroyHooks: false });
  });
});
