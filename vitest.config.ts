import { defineConfig } from 'vitest/config';

/** Options every project shares (projects do not inherit the root's test options). */
const common = {
  testTimeout: 60_000,
  hookTimeout: 120_000,
  pool: 'forks' as const,
  env: { METADATA_SERVER_DETECTION: 'none' },
};

/**
 * Tests that kill function instances on purpose, or load them to saturation (the fault run: 10,000
 * items, 30% of calls failing). They run after everything else, alone and one after another: a killed or saturated
 * instance drops or delays the requests it was serving, and other files' exact counts and timings
 * would then depend on the machine, not on the product.
 */
const DISRUPTIVE = [
  'test/e2e/lifecycle-chaos.test.ts',
  'test/conformance/functions-host.test.ts',
  'test/e2e/fault-run.test.ts',
];

export default defineConfig({
  test: {
    // One local cloud for the whole run, provided to every project.
    globalSetup: ['test/helpers/global-setup.ts'],
    // Most suites wait on rate-limited queues rather than compute: run a few files at once.
    maxWorkers: 3,
    projects: [
      {
        test: {
          ...common,
          name: 'suite',
          include: ['test/**/*.test.ts'],
          exclude: ['**/node_modules/**', ...DISRUPTIVE],
          sequence: { groupOrder: 0 },
        },
      },
      {
        // One file at a time: a kill in one would cut the other's answers short.
        test: {
          ...common,
          name: 'disruptive',
          include: DISRUPTIVE,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
