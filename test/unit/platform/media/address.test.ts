import type { LookupAddress } from 'node:dns';
import { describe, expect, it } from 'vitest';
import { guardedLookup, isPublicAddress } from '../../../../functions/platform/media/address.js';
import { MediaError } from '../../../../functions/platform/media/error.js';
import { tableLookup } from '../../../helpers/dns.js';
import { rejectionOf } from '../../../helpers/rejection.js';

const errorOf = (promise: Promise<unknown>) => rejectionOf(promise, MediaError);

describe('isPublicAddress', () => {
  it.each([
    '127.0.0.1',
    '127.255.0.9',
    '10.1.2.3',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '255.255.255.255',
    '192.0.2.1',
    '::1',
    '::',
    'fc00::1',
    'fd12:3456::1',
    'fe80::1',
  ])('refuses %s', (address) => {
    expect(isPublicAddress(address)).toBe(false);
  });

  it.each([
    ['::ffff:127.0.0.1', 'IPv4-mapped, dotted'],
    ['::ffff:7f00:1', 'IPv4-mapped, hex'],
    ['0:0:0:0:0:ffff:7f00:1', 'IPv4-mapped, long form'],
    ['::ffff:10.0.0.1', 'IPv4-mapped, private'],
    ['::ffff:169.254.169.254', 'IPv4-mapped, metadata server'],
    ['::7f00:1', 'IPv4-compatible (::/96), hex'],
    ['::127.0.0.1', 'IPv4-compatible (::/96), dotted'],
    ['::8.8.8.8', 'IPv4-compatible (::/96), even of a public address'],
    ['::ffff:0:7f00:1', 'IPv4-translated (::ffff:0:0:0/96)'],
    ['64:ff9b::a9fe:a9fe', 'NAT64 well-known prefix'],
    ['64:ff9b:1::a00:1', 'NAT64 local-use prefix (64:ff9b:1::/48)'],
    ['2002:7f00:1::1', '6to4 of 127.0.0.1 (2002::/16)'],
    ['2002:a9fe:a9fe::1', '6to4 of the metadata server'],
    ['fec0::1', 'site-local (fec0::/10)'],
    ['feff::1', 'site-local, top of the range'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'Teredo'],
    ['2001:db8::1', 'documentation'],
    ['100::1', 'discard-only'],
    ['[::1]', 'bracketed, as in a URL'],
  ])('refuses %s (%s)', (address) => {
    expect(isPublicAddress(address)).toBe(false);
  });

  it.each(['8.8.8.8', '172.32.0.1', '::ffff:8.8.8.8', '2001:4860:4860::8888', '2606:4700:4700::1111'])(
    'allows the public address %s',
    (address) => {
      expect(isPublicAddress(address)).toBe(true);
    },
  );

  it('refuses things that are not addresses', () => {
    expect(isPublicAddress('example.com')).toBe(false);
    expect(isPublicAddress('2130706433')).toBe(false);
    expect(isPublicAddress('')).toBe(false);
  });
});

describe('guardedLookup', () => {
  const base = tableLookup({
    'internal.example': ['10.0.0.5'],
    'metadata.example': ['169.254.169.254'],
    'sixtofour.example': ['2002:a00:5::1'],
    'mixed.example': ['93.184.216.34', '127.0.0.1'],
    'v4.example': ['93.184.216.34'],
    'v6.example': ['2606:2800:220:1:248:1893:25c8:1946'],
  });
  const guarded = guardedLookup(base);

  const resolveAll = (host: string) =>
    new Promise<LookupAddress[]>((resolve, reject) =>
      guarded(host, { all: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))),
    );
  const resolveOne = (host: string) =>
    new Promise<{ address: string; family: number }>((resolve, reject) =>
      guarded(host, {}, (err, address, family) => (err ? reject(err) : resolve({ address, family }))),
    );

  it('refuses a name that resolves to a private address, in both forms, naming the host only', async () => {
    for (const [host, address] of [
      ['internal.example', '10.0.0.5'],
      ['metadata.example', '169.254.169.254'],
      ['sixtofour.example', '2002:a00:5::1'],
      ['mixed.example', '127.0.0.1'],
    ] as const) {
      const all = await errorOf(resolveAll(host));
      const one = await errorOf(resolveOne(host));

      expect(all.message).toBe(`refused to fetch from ${host}: not a public address`);
      expect(one.message).toBe(all.message);
      expect(all.permanent).toBe(true);
      expect(all.detail).toContain(address);
    }
  });

  it('passes a public IPv6 address, in both forms', async () => {
    await expect(resolveAll('v6.example')).resolves.toEqual([
      { address: '2606:2800:220:1:248:1893:25c8:1946', family: 6 },
    ]);
    await expect(resolveOne('v6.example')).resolves.toEqual({
      address: '2606:2800:220:1:248:1893:25c8:1946',
      family: 6,
    });
  });

  it('passes a public IPv4 address, in both forms', async () => {
    await expect(resolveAll('v4.example')).resolves.toEqual([{ address: '93.184.216.34', family: 4 }]);
    await expect(resolveOne('v4.example')).resolves.toEqual({ address: '93.184.216.34', family: 4 });
  });

  it("passes the base lookup's own errors through", async () => {
    await expect(resolveAll('nowhere.example')).rejects.toThrow(/ENOTFOUND/);
  });
});
