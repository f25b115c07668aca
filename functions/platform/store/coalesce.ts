/**
 * Store calls made in the same turn of the event loop, sent as one request (the DataLoader
 * pattern): a task's items claimed side by side, or many deliveries an instance serves at once, read
 * their documents with one `getAll` and write their leases and outcomes with one commit instead of
 * one each. Every request costs the instance (gRPC, the client) and Firestore far more than a
 * document in it does, so under load, when calls pile up, the store does less work per item; at
 * rest, a lone call goes out as it always did, one tick later.
 *
 * Each caller still gets its own answer. A batch that fails (a precondition one write did not meet,
 * a document too large, a fault) is sent again one call at a time, so every caller learns its own
 * fate exactly as if it had called alone. Two calls on the same key (the same document) never share
 * a batch: the later one goes alone.
 */
export interface Coalescing<In, Out> {
  /** What a call touches: calls with the same key never share a batch. */
  key(input: In): string;
  /** One request for many calls; the answers in the calls' order. Throws when the request failed. */
  together(inputs: In[]): Promise<Out[]>;
  /** One call alone: as the store did it before (and after a batch failed). */
  alone(input: In): Promise<Out>;
  /** Most calls in one request (Firestore commits hold 500 writes; reads and commits are capped by size). */
  max: number;
}

interface Waiting<In, Out> {
  input: In;
  resolve: (out: Out) => void;
  reject: (err: unknown) => void;
}

export function coalesce<In, Out>(how: Coalescing<In, Out>): (input: In) => Promise<Out> {
  let waiting: Array<Waiting<In, Out>> = [];
  const send = (batch: Array<Waiting<In, Out>>) => {
    const keys = new Set<string>();
    const shared: Array<Waiting<In, Out>> = [];
    const apart: Array<Waiting<In, Out>> = [];
    for (const w of batch) {
      let key: string;
      try {
        key = how.key(w.input);
      } catch (err) {
        // A call that names no document (a bad id) fails alone, as it would have on its own.
        w.reject(err);
        continue;
      }
      (keys.has(key) ? apart : shared).push(w);
      keys.add(key);
    }
    for (const w of apart) runAlone(w);
    if (shared.length === 1) runAlone(shared[0]!);
    else if (shared.length > 1) {
      how.together(shared.map((w) => w.input)).then(
        (outs) => {
          for (const [i, w] of shared.entries()) w.resolve(outs[i]!);
        },
        () => {
          for (const w of shared) runAlone(w);
        },
      );
    }
  };
  const runAlone = (w: Waiting<In, Out>) => {
    how.alone(w.input).then(w.resolve, w.reject);
  };
  const flush = () => {
    const all = waiting;
    waiting = [];
    for (let i = 0; i < all.length; i += how.max) send(all.slice(i, i + how.max));
  };
  return (input) =>
    new Promise<Out>((resolve, reject) => {
      if (waiting.length === 0) setImmediate(flush);
      waiting.push({ input, resolve, reject });
    });
}
