import { FieldValue, type Firestore } from '@google-cloud/firestore';

export interface QuotaPause {
  model: string;
  untilMs: number;
  reason: string;
  /** When the tick resumed the queue (epoch ms); the record stays a while after (see the tick). */
  resumedAtMs?: number;
}

/** Models whose queue is paused until their daily quota resets: `quotaPauses/{model}`. */
export interface PausesStore {
  set(model: string, untilMs: number, reason: string): Promise<void>;
  list(): Promise<QuotaPause[]>;
  /** Deletes the record; with `untilMs`, only if it is still that pause (a new one is kept). */
  clear(model: string, untilMs?: number): Promise<void>;
  /**
   * Records that the queue of the pause until `untilMs` was resumed at `atMs`, if the record is still
   * that pause; false when it is gone or a new pause replaced it.
   */
  markResumed(model: string, untilMs: number, atMs: number): Promise<boolean>;
}

export function createPausesStore(db: Firestore, prefix = ''): PausesStore {
  const pauses = db.collection(`${prefix}quotaPauses`);
  /** Runs `write` in a transaction if the record is still the pause until `untilMs`. */
  const ifSamePause = (model: string, untilMs: number, write: (t: FirebaseFirestore.Transaction) => void) =>
    db.runTransaction(async (t) => {
      const snap = await t.get(pauses.doc(model));
      if (!snap.exists || snap.get('untilMs') !== untilMs) return false;
      write(t);
      return true;
    });
  return {
    async set(model, untilMs, reason) {
      await pauses.doc(model).set({ untilMs, reason, at: FieldValue.serverTimestamp() });
    },
    async list() {
      const snap = await pauses.get();
      return snap.docs.map((d) => {
        const data = d.data();
        return {
          model: d.id,
          untilMs: data.untilMs,
          reason: data.reason,
          ...(typeof data.resumedAtMs === 'number' ? { resumedAtMs: data.resumedAtMs } : {}),
        };
      });
    },
    async clear(model, untilMs) {
      if (untilMs === undefined) await pauses.doc(model).delete();
      else await ifSamePause(model, untilMs, (t) => t.delete(pauses.doc(model)));
    },
    async markResumed(model, untilMs, atMs) {
      return ifSamePause(model, untilMs, (t) => t.update(pauses.doc(model), { resumedAtMs: atMs }));
    },
  };
}
