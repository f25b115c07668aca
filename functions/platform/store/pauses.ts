import { FieldValue, type Firestore } from '@google-cloud/firestore';

export interface QuotaPause {
  model: string;
  untilMs: number;
  reason: string;
}

/** Models whose queue is paused until their daily quota resets: `quotaPauses/{model}`. */
export interface PausesStore {
  set(model: string, untilMs: number, reason: string): Promise<void>;
  list(): Promise<QuotaPause[]>;
  clear(model: string): Promise<void>;
}

export function createPausesStore(db: Firestore, prefix = ''): PausesStore {
  const pauses = db.collection(`${prefix}quotaPauses`);
  return {
    async set(model, untilMs, reason) {
      await pauses.doc(model).set({ untilMs, reason, at: FieldValue.serverTimestamp() });
    },
    async list() {
      const snap = await pauses.get();
      return snap.docs.map((d) => ({ model: d.id, untilMs: d.data().untilMs, reason: d.data().reason }));
    },
    async clear(model) {
      await pauses.doc(model).delete();
    },
  };
}
