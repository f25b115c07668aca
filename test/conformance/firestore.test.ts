import { Firestore } from '@google-cloud/firestore';
import { afterAll, describe, expect, inject, it } from 'vitest';

describe('Firestore emulator (official client)', () => {
  const db = new Firestore({
    projectId: 'conformance-firestore',
    host: inject('firestoreEmulatorHost'),
    ssl: false,
  });
  afterAll(() => db.terminate());

  it('writes and reads a document, and runs a count aggregation', async () => {
    // Arrange
    const col = db.collection(`c-${Date.now()}`);
    // Act
    await col.doc('a').set({ n: 1 });
    await col.doc('b').set({ n: 2 });
    const snap = await col.doc('a').get();
    const count = await col.count().get();
    // Assert
    expect(snap.data()).toEqual({ n: 1 });
    expect(count.data().count).toBe(2);
  });
});
