import { randomUUID } from 'node:crypto';
import { Firestore } from '@google-cloud/firestore';
import { afterAll, inject } from 'vitest';
import { createStores } from '../../functions/platform/store/index.js';
import { storeContract } from '../helpers/store-contract.js';

/**
 * The Firestore stores against the emulator, through the same contract as the fakes
 * (`test/unit/platform/store-contract.test.ts`); one collection prefix per test isolates them.
 */
// The suite's emulator; or one already running (FIRESTORE_EMULATOR_HOST set).
const host = inject('firestoreEmulatorHost') ?? process.env.FIRESTORE_EMULATOR_HOST;
const db = new Firestore({ projectId: 'store-contract', host, ssl: false });
afterAll(() => db.terminate());

storeContract('Firestore stores', async () => ({
  stores: createStores(db, { collectionPrefix: `contract-${randomUUID().slice(0, 8)}-` }),
  nowMs: Date.now(),
}));
