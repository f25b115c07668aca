/**
 * A job's `deadline`: when its results are needed, as a duration from now (`90s`, `30m`, `6h`,
 * `2d`, or combined: `1h30m`) or an ISO 8601 time with its offset (`2026-12-06T18:00:00Z`).
 */

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(?:\d+[smhd])+$/;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})$/;

/** The longest deadline a job may name: a week (the Batch API takes up to 48 h; results are kept). */
export const MAX_DEADLINE_MS = 7 * 86_400_000;

/** The deadline (epoch ms) `text` names at `nowMs`, or the problem with it. */
export function parseDeadline(text: string, nowMs: number): { deadlineMs: number } | { problem: string } {
  const value = text.trim();
  let at: number;
  if (DURATION.test(value)) {
    let ms = 0;
    for (const [, n, unit] of value.matchAll(/(\d+)([smhd])/g))
      ms += Number(n) * (UNIT_MS[unit as string] ?? 0);
    at = nowMs + ms;
  } else if (ISO_TIME.test(value) && Number.isFinite(Date.parse(value))) {
    at = Date.parse(value);
  } else {
    return {
      problem: 'must be a duration like "30m", "6h" or "1h30m", or an ISO time like 2026-12-06T18:00:00Z',
    };
  }
  if (at <= nowMs) return { problem: 'must be in the future' };
  if (at - nowMs > MAX_DEADLINE_MS) return { problem: 'must be within 7 days' };
  return { deadlineMs: at };
}
