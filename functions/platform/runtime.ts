import type { Domain } from 'node:domain';

/**
 * Runs `fn` outside the `domain` the Functions Framework opens for every request.
 *
 * The framework wraps each request in a (deprecated) domain to catch stray errors. Every promise
 * created inside a domain pays for async-hook bookkeeping: profiled under load, that was about 30%
 * of the worker's CPU. Our adapters catch every error of their handler themselves, so the domain
 * buys nothing: leave it for the duration of the synchronous start of `fn`; the promises `fn`
 * creates then belong to no domain.
 */
export function outsideDomain<T>(fn: () => Promise<T>): Promise<T> {
  const active = (process as { domain?: Domain | null }).domain;
  if (!active) return fn();
  active.exit();
  try {
    return fn();
  } finally {
    active.enter();
  }
}
