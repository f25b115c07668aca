import type { GeminiStandInStats } from './server.js';

/**
 * The one client of the Gemini stand-in's control endpoints (`/__standin/*`), for tests and
 * benchmarks: what it saw, its configuration (deep-merged patches, the same shape as `--config`),
 * and a reset of its windows and counters. Never part of the Gemini API the product calls.
 */
export interface StandInControl {
  /** What the stand-in saw, per model (`GET /__standin/stats`). */
  stats(): Promise<GeminiStandInStats>;
  /** Its current configuration (`GET /__standin/config`). */
  config(): Promise<Record<string, unknown>>;
  /** Deep-merges `patch` into its configuration (`POST /__standin/config`); the configuration after. */
  configure(patch: unknown): Promise<Record<string, unknown>>;
  /** Forgets quota windows and statistics (`POST /__standin/reset`). */
  reset(): Promise<void>;
}

export function standInControl(baseUrl: string): StandInControl {
  const call = async (path: string, init?: { method: string; body?: unknown }) => {
    const res = await fetch(`${baseUrl}/__standin/${path}`, {
      method: init?.method ?? 'GET',
      ...(init?.body !== undefined
        ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(init.body) }
        : {}),
    });
    if (!res.ok) throw new Error(`the stand-in's ${path} answered ${res.status}: ${await res.text()}`);
    const text = await res.text();
    return text ? JSON.parse(text) : undefined;
  };
  return {
    stats: () => call('stats'),
    config: () => call('config'),
    configure: (patch) => call('config', { method: 'POST', body: patch }),
    reset: async () => {
      await call('reset', { method: 'POST' });
    },
  };
}
