/**
 * A pipeline's steps as the CLI shows them: a row (and bar) per step while watching, and per step
 * and per model in the summary and in `status`. Everything comes from the job view's `steps`, which
 * the server keeps in step order; a job without steps shows none of this. Pure.
 */
import type { JobView, StepView } from '../functions/api/jobs.js';
import { compact, dollars } from './progress.js';

const number = new Intl.NumberFormat('en-US');

/** One step's progress: its units are items × branches (a fan-out step has several per item). */
export interface StepSnapshot {
  name: string;
  models: string[];
  total: number;
  done: number;
  succeeded: number;
  failed: number;
  cancelled: number;
  pending: number;
  promptTokens: number;
  outputTokens: number;
  costUsd: number;
}

/** The steps of a job view, in step order; none for a job without steps. */
export function stepSnapshots(view: Pick<JobView, 'steps'>): StepSnapshot[] {
  return (view.steps ?? []).map((s) => {
    const c = s.counts;
    return {
      name: s.name,
      models: s.models,
      total: c.total,
      done: c.succeeded + c.failed + c.cancelled,
      succeeded: c.succeeded,
      failed: c.failed,
      cancelled: c.cancelled,
      pending: c.pending,
      promptTokens: s.usage.promptTokens,
      outputTokens: s.usage.outputTokens,
      costUsd: s.costUsd,
    };
  });
}

/** `extract (gemini-2.5-flash)`, `answer (gemini-2.5-flash // gemini-2.5-pro)`: `//` is a fan-out. */
export function stepLabel(s: Pick<StepSnapshot, 'name' | 'models'>): string {
  return `${s.name} (${s.models.join(' // ')})`;
}

/** A step's row while watching: `extract (m) 7/10 ok 7 failed 0 pending 3 | tokens 1.2k in 300 out | $0.0010`. */
export function stepProgressText(s: StepSnapshot): string {
  return `${stepLabel(s)} ${stepCountsText(s)}`;
}

/** The row without its label: what a step's bar shows after the step's name and models. */
export function stepCountsText(s: StepSnapshot): string {
  return [
    `${s.done}/${s.total} ok ${s.succeeded} failed ${s.failed}${s.cancelled ? ` cancelled ${s.cancelled}` : ''} pending ${s.pending}`,
    `tokens ${compact(s.promptTokens)} in ${compact(s.outputTokens)} out`,
    dollars(s.costUsd),
  ].join(' | ');
}

/**
 * The per-step rows of `status` and of a watch's summary: `['step', 'extract (m): 10 succeeded, …']`
 * per step, then, for a step on several models, `['', '  model: …']` per model under it.
 */
export function stepRows(view: Pick<JobView, 'steps'>): Array<[string, string]> {
  return (view.steps ?? []).flatMap(
    (s): Array<[string, string]> => [
      ['step', stepLine(s)],
      ...modelLines(s).map((line): [string, string] => ['', line]),
    ],
  );
}

/** The per-step lines after a watch: `step extract (m): …`, each model of a fan-out indented below. */
export function stepSummaryLines(view: Pick<JobView, 'steps'>): string[] {
  return stepRows(view).map(([k, v]) => (k ? `${k} ${v}` : v));
}

function stepLine(s: StepView): string {
  const c = s.counts;
  return `${stepLabel(s)}: ${number.format(c.succeeded)} succeeded, ${number.format(c.failed)} failed, ${number.format(c.cancelled)} cancelled${c.pending ? `, ${number.format(c.pending)} pending` : ''} | tokens ${number.format(s.usage.promptTokens)} in, ${number.format(s.usage.outputTokens)} out | ${dollars(s.costUsd)}`;
}

function modelLines(s: StepView): string[] {
  const byModel = Object.entries(s.byModel ?? {});
  if (byModel.length < 2) return [];
  return byModel.map(
    ([model, m]) =>
      `  ${model}: ${number.format(m.succeeded)} succeeded, ${number.format(m.failed)} failed | tokens ${number.format(m.usage.promptTokens)} in, ${number.format(m.usage.outputTokens)} out | ${dollars(m.costUsd)}`,
  );
}
