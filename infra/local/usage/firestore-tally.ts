/**
 * How Firestore bills the calls of its v1 API, as documents read, written and deleted
 * (cloud.google.com/firestore/pricing, Standard edition), applied to decoded requests and
 * responses. Pure, so the rules have tests; firestore-meter.ts feeds it from a proxy.
 *
 * - A lookup (GetDocument, each BatchGetDocuments answer, found or missing) is one read.
 * - A query (RunQuery, ListDocuments) reads each document it returns, and at least one.
 * - An aggregation (RunAggregationQuery) reads one per batch of up to 1,000 index entries it
 *   matched, and at least one: the entries matched are known only through a `count()` among its
 *   aggregations (the largest count is taken); a `sum()` or `avg()` alone is counted as one read,
 *   which undercounts one over more than 1,000 documents.
 * - A listener (Listen) reads each document change it is sent.
 * - A committed write (Commit, BatchWrite answered OK, CreateDocument, UpdateDocument) is one write
 *   per document, transforms included; a delete one delete. A Commit that fails writes nothing.
 * Not counted: index entries read beyond these, storage, network, TTL deletes (done by the service
 * itself), and reads of a transaction's lookups are counted as they happen, retries included.
 */
export interface FirestoreUsage {
  reads: number;
  writes: number;
  deletes: number;
  /** Calls per RPC name. */
  calls: Record<string, number>;
  /** Reads per RPC name: where the reads come from. */
  readsByRpc: Record<string, number>;
}

type Message = Record<string, unknown>;

/** The writes of a Commit or BatchWrite request, with `ok(i)` saying whether write i took effect. */
function tallyWrites(usage: FirestoreUsage, writes: unknown, ok: (i: number) => boolean): void {
  if (!Array.isArray(writes)) return;
  writes.forEach((w: Message, i) => {
    if (!ok(i)) return;
    if (w.delete) usage.deletes += 1;
    else usage.writes += 1;
  });
}

/** Count aliases of a RunAggregationQuery request's `count()` aggregations. */
export function countAliases(request: Message): string[] {
  const query = request.structuredAggregationQuery as Message | undefined;
  const aggregations = (query?.aggregations as Message[] | undefined) ?? [];
  return aggregations
    .filter((a) => a.count !== undefined && a.count !== null)
    .map((a) => String(a.alias ?? ''));
}

/** Reads billed for one aggregation result, given the aliases of its `count()` aggregations. */
export function aggregationReads(result: Message | undefined, aliases: string[]): number {
  const fields = (result?.aggregateFields as Record<string, Message> | undefined) ?? {};
  let matched = 0;
  for (const alias of aliases) matched = Math.max(matched, Number(fields[alias]?.integerValue ?? 0));
  return Math.max(1, Math.ceil(matched / 1000));
}

export function createFirestoreTally() {
  const usage: FirestoreUsage = { reads: 0, writes: 0, deletes: 0, calls: {}, readsByRpc: {} };
  const read = (rpc: string, n: number) => {
    usage.reads += n;
    usage.readsByRpc[rpc] = (usage.readsByRpc[rpc] ?? 0) + n;
  };
  return {
    usage: (): FirestoreUsage => ({
      ...usage,
      calls: { ...usage.calls },
      readsByRpc: { ...usage.readsByRpc },
    }),
    call(rpc: string) {
      usage.calls[rpc] = (usage.calls[rpc] ?? 0) + 1;
    },
    /** A unary call answered OK. */
    unary(rpc: string, request: Message, response: Message) {
      if (rpc === 'GetDocument') read(rpc, 1);
      else if (rpc === 'ListDocuments')
        read(rpc, Math.max(1, ((response.documents as unknown[]) ?? []).length));
      else if (rpc === 'CreateDocument' || rpc === 'UpdateDocument') usage.writes += 1;
      else if (rpc === 'DeleteDocument') usage.deletes += 1;
      else if (rpc === 'Commit') tallyWrites(usage, request.writes, () => true);
      else if (rpc === 'BatchWrite') {
        const status = (response.status as Message[] | undefined) ?? [];
        tallyWrites(usage, request.writes, (i) => !status[i]?.code);
      }
    },
    /** One message of a streamed answer; returns the documents it carried (for a query's minimum). */
    streamed(rpc: string, request: Message, response: Message): number {
      if (rpc === 'BatchGetDocuments' && (response.found || response.missing)) read(rpc, 1);
      if (rpc === 'Listen' && response.documentChange) read(rpc, 1);
      if (rpc === 'RunAggregationQuery' && response.result) {
        read(rpc, aggregationReads(response.result as Message, countAliases(request)));
        return 1;
      }
      if (rpc === 'RunQuery' && response.document) {
        read(rpc, 1);
        return 1;
      }
      return 0;
    },
    /** A streamed answer ended: a query that returned nothing still reads one. */
    streamEnded(rpc: string, carried: number) {
      if ((rpc === 'RunQuery' || rpc === 'RunAggregationQuery') && carried === 0) read(rpc, 1);
    },
  };
}

export type FirestoreTally = ReturnType<typeof createFirestoreTally>;
