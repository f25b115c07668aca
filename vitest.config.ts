import { defineConfig } from 'vitest/config';

/** Options every project shares (projects do not inherit the root's test options). */
const common = {
  testTimeout: 60_000,
  hookTimeout: 120_000,
  pool: 'forks' as const,
  env: { METADATA_SERVER_DETECTION: 'none' },
};

/**
 * The unit tier: no emulator, no network (loopback servers of the test's own are fine), seconds. The
 * seeded fault simulation (test/sim/) is of this kind too: the real code over fakes, simulated time.
 */
const UNIT = ['test/unit/**/*.test.ts', 'test/sim/**/*.test.ts'];

/**
 * The slow tier's files that may share the machine: each took a minute or more on a full run (they
 * wait out a model's quota minutes, or a Batch API cycle's polls), so the integration tier leaves them
 * out. A file joins this list when a full run's report shows it past a minute.
 */
const SLOW = [
  'test/e2e/realtime-rpm.test.ts',
  'test/e2e/realtime-late.test.ts',
  'test/e2e/realtime-tpm.test.ts',
  'test/e2e/batch-api.test.ts',
  'test/e2e/vertex.test.ts',
  'test/e2e/pipeline-throughput.test.ts',
];

/**
 * The slow tier's files that kill function instances on purpose, or load them to saturation (the fault
 * run: 10,000 items, 30% of calls failing), or count the queue's dispatches exactly (several items a
 * task: with two other files on the two cores its deliveries ran late and were planned again, 537
 * dispatches for 300 items; a cold queue's packed tasks, which must keep up with their plan). They
 * run after everything else, alone and one after another: a killed
 * or saturated instance drops or delays the requests it was serving, and other files' exact counts
 * and timings would then depend on the machine, not on the product.
 */
const DISRUPTIVE = [
  'test/e2e/multi-item.test.ts',
  'test/e2e/cold-queue.test.ts',
  'test/e2e/lifecycle-chaos.test.ts',
  'test/conformance/functions-host.test.ts',
  'test/e2e/fault-run.test.ts',
];

/**
 * Three tiers, one run: `npm test` runs every project and writes one report; `npm run test:unit`,
 * `test:integration` and `test:slow` select projects by name. The unit tier needs no emulator and no
 * network, so the global setup starts the local cloud only when a file of another tier runs.
 */
export default defineConfig({
  test: {
    // The local cloud, once for the whole run and provided to every project (it is the root project's
    // setup, which vitest runs whichever projects are selected; it returns at once for unit files).
    globalSetup: ['test/helpers/global-setup.ts'],
    // Most suites wait on rate-limited queues rather than compute: run a few files at once.
    maxWorkers: 3,
    projects: [
      {
        test: {
          ...common,
          name: 'unit',
          include: UNIT,
          // One module graph per worker, not per file: importing the code for each of ~110 files took
          // 52 s of the tier's CPU. The unit tests keep no state between files (no vi.mock, no
          // stubbed globals or environment), so sharing the modules changes nothing they check.
          isolate: false,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          ...common,
          name: 'integration',
          // Every test file outside the other tiers, so none is left out of `npm test`.
          include: ['test/**/*.test.ts'],
          exclude: ['**/node_modules/**', ...UNIT, ...SLOW, ...DISRUPTIVE],
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          ...common,
          name: 'slow',
          include: SLOW,
          sequence: { groupOrder: 0 },
        },
      },
      {
        // One file at a time: a kill in one would cut the other's answers short.
        test: {
          ...common,
          name: 'slow-alone',
          include: DISRUPTIVE,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
