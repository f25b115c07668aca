import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { MediaError } from './error.js';

/** IPv4 networks no medium may come from: not globally reachable (RFC 6890) or not unicast. */
const DENIED_V4: ReadonlyArray<readonly [string, number]> = [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local; the metadata server is 169.254.169.254
  ['172.16.0.0', 12],
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.88.99.0', 24], // 6to4 relay anycast
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
];

/**
 * IPv6 networks no medium may come from. Several embed an IPv4 address and reach it through a
 * translator or tunnel, so they are refused whole rather than checked against the IPv4 rules.
 * IPv4-mapped addresses (::ffff:a.b.c.d, in any spelling) need no rule: BlockList checks them
 * against the IPv4 rules (and a ::ffff:0:0/96 rule would match every IPv4 address).
 */
const DENIED_V6: ReadonlyArray<readonly [string, number]> = [
  ['::', 96], // IPv4-compatible (deprecated), the unspecified address and loopback (::1)
  ['::ffff:0:0:0', 96], // IPv4-translated (SIIT)
  ['64:ff9b::', 96], // NAT64, well-known prefix
  ['64:ff9b:1::', 48], // NAT64, local use
  ['100::', 64], // discard-only
  ['2001::', 32], // Teredo
  ['2001:db8::', 32], // documentation
  ['2002::', 16], // 6to4
  ['fc00::', 7], // unique-local
  ['fec0::', 10], // site-local (deprecated, still routed inside some networks)
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
];

/** The networks a worker must never fetch from (see DENIED_V4 and DENIED_V6). */
export function createDeniedAddresses(): BlockList {
  const list = new BlockList();
  for (const [net, bits] of DENIED_V4) list.addSubnet(net, bits, 'ipv4');
  for (const [net, bits] of DENIED_V6) list.addSubnet(net, bits, 'ipv6');
  return list;
}

const DEFAULT_DENIED = createDeniedAddresses();

/** True when `address` (an IP literal, IPv6 with or without brackets) may be fetched from. */
export function isPublicAddress(address: string, denied: BlockList = DEFAULT_DENIED): boolean {
  const bare = address.replace(/^\[(.*)\]$/, '$1');
  const family = isIP(bare);
  if (family === 0) return false;
  return !denied.check(bare, family === 4 ? 'ipv4' : 'ipv6');
}

type Lookup = typeof dnsLookup;

/**
 * A DNS lookup that fails for non-public addresses. It runs when the socket connects, so a name that
 * resolves differently on a second lookup (DNS rebinding) is checked on the address actually used.
 * Its error names the host only; the address it resolved to is in `detail`, for the log.
 */
export function guardedLookup(base: Lookup = dnsLookup, denied: BlockList = DEFAULT_DENIED): Lookup {
  return ((hostname: string, options: object, callback: (...args: unknown[]) => void) => {
    base(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err);
      const list = addresses as LookupAddress[];
      const bad = list.find((a) => !isPublicAddress(a.address, denied));
      if (bad || list.length === 0) {
        return callback(
          new MediaError(`refused to fetch from ${hostname}: not a public address`, true, {
            detail: `${hostname} resolved to ${bad?.address ?? 'no address'}`,
          }),
        );
      }
      const all = (options as { all?: boolean }).all;
      if (all) return callback(null, list);
      return callback(null, list[0]!.address, list[0]!.family);
    });
  }) as Lookup;
}
