import { describe, expect, test } from 'vitest';
import {
  billedSeconds,
  type CloudUsage,
  priceCloudUsage,
  readCloudPrices,
  waitingCostUsd,
  workerSize,
} from '../../../../infra/local/usage/price.js';

const prices = readCloudPrices();

const none: CloudUsage = {
  tasks: { operations: 0, byKind: {} },
  functions: {},
  firestore: { reads: 0, writes: 0, deletes: 0 },
  storage: { classA: 0, classB: 0, free: 0 },
};

describe('the list prices file (infra/cloud-prices.json)', () => {
  test('names a source page for every service and when it was read', () => {
    expect(prices.retrieved).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    for (const service of [
      prices.cloudTasks,
      prices.cloudRunFunctions,
      prices.firestore,
      prices.cloudStorage,
    ]) {
      expect(service.source).toMatch(/^https:\/\/cloud\.google\.com\//);
    }
  });

  test('gives every deployed function its vCPU, memory and concurrency as Terraform does', () => {
    expect(workerSize(prices)).toEqual({ vcpu: 1, memoryGib: 2, concurrency: 80 });
  });
});

describe('priceCloudUsage', () => {
  test('a million Cloud Tasks operations cost $0.40 (free tier not subtracted)', () => {
    const cost = priceCloudUsage({ ...none, tasks: { operations: 1_000_000, byKind: {} } }, prices);
    expect(cost.tasksUsd).toBeCloseTo(0.4, 10);
    expect(cost.totalUsd).toBeCloseTo(0.4, 10);
  });

  test('a function pays per invocation and per billed second at its vCPU and memory', () => {
    const usage = {
      ...none,
      functions: { worker: { invocations: 1_000_000, billedSeconds: 1000, cpuSeconds: 12 } },
    };
    const cost = priceCloudUsage(usage, prices).functionsUsd.worker!;
    expect(cost.invocationsUsd).toBeCloseTo(0.4, 10);
    // 1,000 s × 1 vCPU × $0.000024 and 1,000 s × 2 GiB × $0.0000025; the CPU really used is not billed.
    expect(cost.cpuUsd).toBeCloseTo(0.024, 10);
    expect(cost.memoryUsd).toBeCloseTo(0.005, 10);
    expect(cost.totalUsd).toBeCloseTo(0.429, 10);
  });

  test('Firestore: 100,000 reads $0.03 and 100,000 writes $0.09; deletes, without a price, are named as unpriced', () => {
    const cost = priceCloudUsage(
      { ...none, firestore: { reads: 100_000, writes: 100_000, deletes: 5 } },
      prices,
    );
    expect(cost.firestoreUsd).toBeCloseTo(0.12, 10);
    expect(cost.unpriced).toEqual(['firestore.deletes']);
  });

  test('Storage: 10,000 class A $0.05, 10,000 class B $0.004, free operations nothing', () => {
    const cost = priceCloudUsage({ ...none, storage: { classA: 10_000, classB: 10_000, free: 99 } }, prices);
    expect(cost.storageUsd).toBeCloseTo(0.054, 10);
    expect(cost.unpriced).toEqual([]);
  });

  test('a function the file does not size is an error, not a guess', () => {
    const usage = { ...none, functions: { mystery: { invocations: 1, billedSeconds: 1, cpuSeconds: 1 } } };
    expect(() => priceCloudUsage(usage, prices)).toThrow(/mystery/);
  });
});

describe('billed time', () => {
  test('each stretch is rounded up to 100 ms', () => {
    expect(billedSeconds([1, 100, 101, 250], 100)).toBeCloseTo(0.1 + 0.1 + 0.2 + 0.3, 10);
  });

  test('waiting 15 minutes on each of 1,000 Flex answers, 80 to an instance, bills 11,250 worker seconds', () => {
    const usd = waitingCostUsd(1000, 900, workerSize(prices), prices);
    expect(usd).toBeCloseTo(11_250 * (0.000024 + 2 * 0.0000025), 10);
  });
});
