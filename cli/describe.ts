/** What the CLI prints about jobs for people: a job's status, a watch's summary, the list of jobs. */
import { entryKey, type JobEstimate, type JobView, type ResultLine } from '../functions/api/jobs.js';
import { compact, dollars, duration, elapsedMs } from './progress.js';
import { stepRows, stepSummaryLines } from './steps.js';

const number = new Intl.NumberFormat('en-US');

/** `gemini-fanout status ID`: one labelled line per fact. */
export function describeJob(job: JobView, now = Date.now()): string {
  const c = job.counts;
  const quota = job.quota;
  const rows: Array<[string, string]> = [
    ['job', job.id],
    ['status', `${job.status} (${job.mode}, ${job.model})`],
    [
      'items',
      `${c.total - c.pending}/${c.total} done: ${c.succeeded} succeeded, ${c.failed} failed, ${c.cancelled} cancelled, ${c.pending} pending`,
    ],
    ['tokens', `${number.format(job.usage.promptTokens)} in, ${number.format(job.usage.outputTokens)} out`],
    ['cost', dollars(job.costUsd)],
    ...(job.tiers ? [['tiers', tierLine(job)] as [string, string]] : []),
    ...(job.deadline ? [['deadline', job.deadline] as [string, string]] : []),
    ...(quota
      ? [['quota', `${number.format(quota.rpm)} RPM, ${compact(quota.tpm)} TPM`] as [string, string]]
      : []),
    ['created', job.createdAt],
    ['elapsed', `${duration(elapsedMs(job, now))}${job.finishedAt ? ` (finished ${job.finishedAt})` : ''}`],
    ...(job.source !== 'api' ? [['source', job.source] as [string, string]] : []),
    ...(job.paths
      ? [['paths', `realtime ${job.paths.realtime}, batch ${job.paths.batch}`] as [string, string]]
      : []),
    ...(job.batches ?? []).map((b): [string, string] => [
      'batch',
      `${b.name ?? '(not created yet)'} ${b.state} ${b.items} items${b.stats ? `: ${b.stats.successfulRequestCount} ok, ${b.stats.failedRequestCount} failed, ${b.stats.pendingRequestCount} pending` : ''}${b.fallback ? ` (${b.fallback})` : ''}`,
    ]),
    ...stepRows(job),
    ...(job.notice ? [['notice', job.notice] as [string, string]] : []),
  ];
  return rows.map(([k, v]) => `${k.padEnd(8)} ${v}`).join('\n');
}

/** The lines after a watch: how it ended, what it used, what failed (a few), where the results are. */
export function summarise(job: JobView, failures: ResultLine[], resultsHint: string): string {
  const c = job.counts;
  const wall = elapsedMs(job, Date.now());
  const perMin = wall > 0 ? Math.round(((c.total - c.pending) / wall) * 60_000) : 0;
  const quota = job.mode === 'batch' ? null : job.quota;
  const lines = [
    `job ${job.id} ${job.status} in ${duration(wall)}: ${c.total} items, ${c.succeeded} succeeded, ${c.failed} failed, ${c.cancelled} cancelled`,
    `tokens ${number.format(job.usage.promptTokens)} in, ${number.format(job.usage.outputTokens)} out | cost ${dollars(job.costUsd)} (${job.model}, ${job.mode}) | ${number.format(perMin)} items/min${quota ? ` (quota ${number.format(quota.rpm)} RPM)` : ''}${job.tiers ? ` | ${tierLine(job)}` : ''}`,
    ...stepSummaryLines(job),
  ];
  for (const f of failures) {
    if ('error' in f)
      lines.push(`  failed ${entryKey(f)}: ${f.error.code} ${f.error.status}: ${f.error.message}`);
  }
  if (c.failed > failures.length && failures.length > 0)
    lines.push(`  … and ${c.failed - failures.length} more`);
  lines.push(`results: ${resultsHint}`);
  return lines.join('\n');
}

const TIER_ORDER = ['standard', 'flex', 'priority', 'batch'] as const;

/**
 * Items and cost per tier that served them, and what that saved against all-standard:
 * `flex 4 items $0.0012, standard 2 items $0.0010 | saved $0.0012 against standard`.
 */
export function tierLine(job: Pick<JobView, 'tiers' | 'savedUsd'>): string {
  const parts = TIER_ORDER.flatMap((tier) => {
    const t = job.tiers?.[tier];
    return t
      ? [`${tier} ${number.format(t.items)} item${t.items === 1 ? '' : 's'} ${dollars(t.costUsd)}`]
      : [];
  });
  const saved = job.savedUsd ?? 0;
  const verdict =
    saved >= 0 ? `saved ${dollars(saved)} against standard` : `${dollars(-saved)} more than standard`;
  return `${parts.join(', ')} | ${verdict}`;
}

/** `submit --dry-run`: what the job would take, one labelled line per fact. */
export function describeEstimate(e: JobEstimate): string {
  const output =
    e.tokens.outputAtMost === null
      ? 'output not capped'
      : `at most ${number.format(e.tokens.outputAtMost)} out`;
  const costs = TIER_ORDER.flatMap((tier) => {
    const usd = e.costUsd[tier];
    return usd === undefined ? [] : [`${tier} ${dollars(usd)}`];
  });
  const rows: Array<[string, string]> = [
    ['path', `${e.mode} (${e.model})`],
    ['items', number.format(e.items)],
    ['tokens', `${number.format(e.tokens.input)} in (${e.tokens.countedBy}), ${output}`],
    ['cost', `${costs.join(', ')}${e.costIncludesOutput ? '' : ' (input only)'}`],
    ['quota', `at least ${duration(e.quotaSeconds * 1000)} on the queues`],
    ...(e.deadline ? [['deadline', e.deadline] as [string, string]] : []),
  ];
  return rows.map(([k, v]) => `${k.padEnd(8)} ${v}`).join('\n');
}

/** `gemini-fanout jobs`: a table, newest first. */
export function jobsTable(jobs: JobView[]): string {
  const head = ['ID', 'STATUS', 'MODE', 'MODEL', 'DONE', 'FAILED', 'COST', 'CREATED'];
  const rows = jobs.map((j) => [
    j.id,
    j.status,
    j.mode,
    j.model,
    `${j.counts.total - j.counts.pending}/${j.counts.total}`,
    String(j.counts.failed),
    dollars(j.costUsd),
    j.createdAt.replace(/\.\d+Z$/, 'Z'),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [head, ...rows]
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
