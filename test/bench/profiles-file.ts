import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';

/**
 * Writes a case's results by profile, keeping the profiles this run did not measure from the file
 * already there (each profile with the date it was measured), so `BENCH_PROFILES=ideal` adds the
 * ideal figures beside the strict ones instead of dropping them.
 */
export function writeProfiles(file: string, fresh: Record<string, object>): void {
  const now = new Date().toISOString();
  let kept: Record<string, object> = {};
  try {
    // An older file's top-level settings (the cold case's `ramp`) go with each profile it holds.
    const {
      date,
      loadAverage: _load,
      profiles,
      ...settings
    } = JSON.parse(readFileSync(file, 'utf8')) as {
      date?: string;
      loadAverage?: unknown;
      profiles?: Record<string, object>;
    };
    kept = Object.fromEntries(
      Object.entries(profiles ?? {}).map(([p, r]) => [p, { measuredAt: date, ...settings, ...r }]),
    );
  } catch {
    // No file yet: only this run's profiles.
  }
  const measured = Object.fromEntries(Object.entries(fresh).map(([p, r]) => [p, { ...r, measuredAt: now }]));
  const out = { date: now, loadAverage: loadavg(), profiles: { ...kept, ...measured } };
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
}
