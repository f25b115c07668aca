/**
 * A pipeline's progress on a terminal: the job's bar (items through every step), then a bar per step
 * (its units: items × branches), each with its own counts, tokens and cost, redrawn in place.
 */
import cliProgress from 'cli-progress';
import { type ProgressSnapshot, progressText } from './progress.js';
import type { Renderer } from './render.js';
import { type StepSnapshot, stepCountsText } from './steps.js';

/** The widest step label, so the step bars line up under each other. */
function padTo(steps: readonly StepSnapshot[]): number {
  return Math.max(0, ...steps.map((s) => s.name.length));
}

/** The multi-bar renderer: a bar for the job and one per step, in step order. */
export function stepBarsRenderer(stdout: NodeJS.WritableStream): Renderer {
  const bars = new cliProgress.MultiBar({
    stream: stdout,
    format: '{label}{bar} {text}{note}',
    barsize: 24,
    barCompleteChar: '\u2588',
    barIncompleteChar: '\u2591',
    fps: 5,
    hideCursor: null,
    // Trims to the terminal's width instead of wrapping, so the lines redraw in place.
    linewrap: false,
    emptyOnZero: true,
    gracefulExit: false,
    clearOnComplete: false,
  });
  let job: cliProgress.SingleBar | undefined;
  const steps = new Map<string, cliProgress.SingleBar>();
  let note = '';
  let last: ProgressSnapshot | undefined;
  const draw = (s: ProgressSnapshot) => {
    const width = padTo(s.steps);
    const jobPayload = { label: `${'job'.padEnd(width)}  `, text: `${s.status} ${progressText(s)}`, note };
    job ??= bars.create(s.total, s.done, jobPayload);
    place(job, s.total, s.done, jobPayload);
    for (const step of s.steps) {
      const text = `${step.models.join(' // ')} ${stepCountsText(step)}`;
      const payload = { label: `${step.name.padEnd(width)}  `, text, note: '' };
      let bar = steps.get(step.name);
      if (!bar) {
        bar = bars.create(step.total, step.done, payload);
        steps.set(step.name, bar);
      }
      place(bar, step.total, step.done, payload);
    }
  };
  return {
    update(s) {
      last = s;
      draw(s);
    },
    note(text) {
      note = ` (${text})`;
      if (last) draw(last);
    },
    stop(s) {
      note = '';
      if (s) draw(s);
      bars.update();
      bars.stop();
    },
  };
}

function place(bar: cliProgress.SingleBar, total: number, value: number, payload: object): void {
  if (bar.getTotal() !== total) bar.setTotal(total);
  bar.update(value, payload);
}
