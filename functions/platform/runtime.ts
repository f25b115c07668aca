import { createRequire } from 'node:module';

/**
 * A domain that does nothing. The Functions Framework (`function_wrappers.js`) calls `on('error')`
 * and `run` on the one it creates per request, and `bind` on `process.domain` for CloudEvent
 * functions; Node itself calls `enter` and `exit` around callbacks of the handles created while
 * `process.domain` is set (`topLevelDomainCallback`: without them a request fails). The rest of a
 * Domain's surface is here as no-ops too, for any other caller of `process.domain`.
 */
const PASS_THROUGH = Object.freeze({
  members: Object.freeze([]) as readonly unknown[],
  on() {
    return PASS_THROUGH;
  },
  once() {
    return PASS_THROUGH;
  },
  run<T>(fn: (...args: unknown[]) => T, ...args: unknown[]): T {
    return fn(...args);
  },
  bind<F>(fn: F): F {
    return fn;
  },
  intercept<F>(fn: F): F {
    return fn;
  },
  enter() {},
  exit() {},
  add() {},
  remove() {},
  dispose() {},
});

/**
 * Keeps the Functions Framework from making `domain`s.
 *
 * The framework wraps each request in a (deprecated) domain to catch stray errors (its
 * `function_wrappers.js`: `domain.create()`, `d.on('error')`, `d.run()`, and `process.domain.bind()`
 * for CloudEvent functions). The first domain a process makes turns on Node's domain async hook for
 * good, with destroy tracking: from then on every promise the process creates, in a domain or not,
 * pays for an async-hook init and a GC-tracked destroy callback. Profiled in the scale benchmark, that
 * was a tenth of the worker's CPU (`registerDestroyHook` alone 5% of its samples), and about 12% of
 * the functions' CPU came back without it (README, "No domains").
 *
 * Our adapters catch every error of their handlers themselves (each is an async function with its
 * own try/catch, and the framework also `.catch`es the promise it returns), so the domain buys
 * nothing: `domain.create` hands the framework a pass-through that runs, binds and listens as asked,
 * and `process.domain` is that same pass-through, which is all the framework reads of it. Nothing
 * else in the dependency tree reads `process.domain`. Called when the functions are registered,
 * before any request; calling it again changes nothing.
 */
export function installNoDomains(): void {
  const domain = createRequire(import.meta.url)('node:domain') as Record<string, unknown>;
  domain.create = domain.createDomain = () => PASS_THROUGH;
  // Loading the domain module (above, or the framework's) defined process.domain with a setter.
  (process as { domain?: unknown }).domain = PASS_THROUGH;
}
