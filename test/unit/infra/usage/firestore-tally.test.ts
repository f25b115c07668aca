import { describe, expect, test } from 'vitest';
import { aggregationReads, createFirestoreTally } from '../../../../infra/local/usage/firestore-tally.js';

describe('Firestore billing of v1 calls (firestore-tally.ts)', () => {
  test('a committed write is one write per document, a delete one delete, transforms included', () => {
    const tally = createFirestoreTally();
    tally.unary(
      'Commit',
      {
        writes: [{ update: {} }, { delete: 'x' }, { transform: {} }, { update: {}, updateTransforms: [{}] }],
      },
      {},
    );
    expect(tally.usage()).toMatchObject({ reads: 0, writes: 3, deletes: 1 });
  });

  test('a BatchWrite counts only the writes it answered OK', () => {
    const tally = createFirestoreTally();
    tally.unary(
      'BatchWrite',
      { writes: [{ update: {} }, { update: {} }, { delete: 'y' }] },
      { status: [{ code: 0 }, { code: 10 }, {}] },
    );
    expect(tally.usage()).toMatchObject({ writes: 1, deletes: 1 });
  });

  test('each document a lookup answers is a read, found or missing', () => {
    const tally = createFirestoreTally();
    tally.streamed('BatchGetDocuments', {}, { found: { name: 'a' } });
    tally.streamed('BatchGetDocuments', {}, { missing: 'b' });
    tally.streamed('BatchGetDocuments', {}, { transaction: 'tx' });
    tally.unary('GetDocument', {}, { name: 'c' });
    expect(tally.usage().reads).toBe(3);
    expect(tally.usage().readsByRpc).toEqual({ BatchGetDocuments: 2, GetDocument: 1 });
  });

  test('a query reads each document it returns, and one when it returns none', () => {
    const tally = createFirestoreTally();
    let carried = 0;
    for (const name of ['a', 'b', 'c']) carried += tally.streamed('RunQuery', {}, { document: { name } });
    tally.streamEnded('RunQuery', carried);
    tally.streamEnded('RunQuery', tally.streamed('RunQuery', {}, { readTime: {} }));
    expect(tally.usage().reads).toBe(4);
  });

  test('an aggregation reads one per 1,000 entries its count() matched, at least one', () => {
    const request = {
      structuredAggregationQuery: {
        aggregations: [
          { alias: 'n', count: {} },
          { alias: 's', sum: {} },
        ],
      },
    };
    expect(
      aggregationReads({ aggregateFields: { n: { integerValue: '2500' }, s: { integerValue: '99999' } } }, [
        'n',
      ]),
    ).toBe(3);
    expect(aggregationReads({ aggregateFields: { s: { integerValue: '99999' } } }, [])).toBe(1);
    const tally = createFirestoreTally();
    tally.streamEnded(
      'RunAggregationQuery',
      tally.streamed('RunAggregationQuery', request, {
        result: { aggregateFields: { n: { integerValue: '1000' } } },
      }),
    );
    expect(tally.usage().reads).toBe(1);
  });

  test('calls are counted by RPC name; transactions begun or rolled back cost nothing', () => {
    const tally = createFirestoreTally();
    tally.call('BeginTransaction');
    tally.unary('BeginTransaction', {}, { transaction: 'tx' });
    tally.call('Commit');
    expect(tally.usage()).toEqual({
      reads: 0,
      writes: 0,
      deletes: 0,
      calls: { BeginTransaction: 1, Commit: 1 },
      readsByRpc: {},
    });
  });
});
