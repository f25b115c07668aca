import type { LookupAddress, lookup } from 'node:dns';

/**
 * A DNS lookup that answers from a table (the `all: true` form guardedLookup asks for): each name's
 * addresses, their family read from their form; any other name is ENOTFOUND, as getaddrinfo says it.
 */
export function tableLookup(table: Record<string, string[]>): typeof lookup {
  const fn = (
    hostname: string,
    _options: object,
    callback: (err: Error | null, a?: LookupAddress[]) => void,
  ) => {
    const answer = table[hostname];
    if (!answer)
      return callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }));
    callback(
      null,
      answer.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
    );
  };
  return fn as unknown as typeof lookup;
}
