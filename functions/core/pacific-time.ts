/**
 * Gemini's daily quotas (RPD) reset at midnight in America/Los_Angeles. One place computes that
 * midnight, for the worker (how long a per-day 429 lasts) and the local Gemini stand-in (when its
 * day rolls over). Pure: the time zone comes from the runtime's own ICU data through `Intl`.
 */

const LOS_ANGELES = new Intl.DateTimeFormat('en-US', {
  timeZone: 'America/Los_Angeles',
  hourCycle: 'h23',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
});

/** How far the wall clock of America/Los_Angeles is from UTC at instant `t` (ms; -7 h or -8 h). */
function losAngelesOffsetMs(t: number): number {
  const parts = LOS_ANGELES.formatToParts(new Date(t));
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value ?? 0);
  const wall = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'));
  return wall - (t - (((t % 1000) + 1000) % 1000));
}

/**
 * The midnight in America/Los_Angeles that starts the day `t` falls in (`dayOffset` 0) or a later
 * one (1: the next midnight), as epoch ms. DST is handled: the offset is taken at the midnight itself
 * (days are 23 or 25 hours long when the clocks change).
 */
export function pacificMidnight(t: number, dayOffset = 0): number {
  const wall = new Date(t + losAngelesOffsetMs(t));
  const target = Date.UTC(wall.getUTCFullYear(), wall.getUTCMonth(), wall.getUTCDate() + dayOffset);
  let instant = target - losAngelesOffsetMs(t);
  instant = target - losAngelesOffsetMs(instant);
  return target - losAngelesOffsetMs(instant);
}

/** Whole seconds (at least 1) until the next midnight in America/Los_Angeles. */
export function secondsUntilPacificMidnight(now: Date): number {
  const t = now.getTime();
  return Math.max(1, Math.ceil((pacificMidnight(t, 1) - t) / 1000));
}
