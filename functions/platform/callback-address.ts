import { BlockList, type IPVersion, isIP, type SocketAddress } from 'node:net';
import { createDeniedAddresses, isPublicAddress } from './media/index.js';

/**
 * Where callbacks may not go: media's deny list (functions/platform/media/address.ts), the one
 * classification of non-public addresses, with loopback taken out for the local cloud, whose
 * receivers run on the developer's machine.
 */
export function callbackDenied(local: boolean, denied: BlockList = createDeniedAddresses()): BlockList {
  return local ? exceptLoopback(denied) : denied;
}

/** `denied` without loopback: what the local cloud refuses. */
function exceptLoopback(denied: BlockList): BlockList {
  const loopback = new BlockList();
  loopback.addSubnet('127.0.0.0', 8, 'ipv4');
  loopback.addAddress('::1', 'ipv6');
  return new (class extends BlockList {
    override check(address: string | SocketAddress, family?: IPVersion): boolean {
      const a = address as string;
      return denied.check(a, family) && !loopback.check(a, family);
    }
  })();
}

/**
 * Why a callback may not go to `hostname` (a URL's `hostname`, as WHATWG URL parsing leaves it), or
 * undefined. A literal IP must be public: private, loopback, link-local (the metadata server),
 * CGNAT, NAT64, 6to4, Teredo, IPv4-mapped and the rest of media's deny list are refused, and so are
 * decimal, octal and hex spellings of them (the URL parser writes those as dotted IPv4). The local
 * cloud (`local`) also takes loopback. Names are checked when they are resolved, at each attempt.
 * Ingest calls this at submit, so such a URL is a 400 naming `callbackUrl`, not a failure later.
 */
export function callbackHostProblem(hostname: string, local: boolean): string | undefined {
  const host = hostname.replace(/^\[|\]$/g, '');
  if (!isIP(host)) return undefined;
  return isPublicAddress(host, callbackDenied(local)) ? undefined : 'must not point at a non-public address';
}
