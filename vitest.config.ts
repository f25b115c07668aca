import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Most suites wait on rate-limited queues rather than compute: run a few files at once.
    maxWorkers: 3,
    env: { METADATA_SERVER_DETECTION: 'none' },
  },
});
