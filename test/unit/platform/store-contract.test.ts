import { FakeDb } from '../../helpers/fake-stores.js';
import { storeContract } from '../../helpers/store-contract.js';

/** The fake stores keep the same contract as Firestore's (`test/integration/store-contract.test.ts`). */
const T0 = Date.parse('2026-01-05T20:00:00Z');

storeContract('fake stores', async () => ({ stores: new FakeDb(() => T0).stores, nowMs: T0 }));
