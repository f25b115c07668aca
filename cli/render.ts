/**
 * How a watch shows progress: a bar redrawn in place on a terminal, a plain line per update when
 * stdout is a pipe or a file (logs, CI), or JSON lines for scripts (`--json`).
 */
import cliProgress from 'cli-progress';
import { type ProgressSnapshot, progressText } from './progress.js';
import { stepBarsRenderer } from './render-steps.js';
import { stepProgressText } from './steps.js';

export interface Output {
  write(chunk: string): unknown;
  isTTY?: boolean;
}

export interface Renderer {
  /** The progress changed, or time passed. Renderers decide how often to show it. */
  update(snapshot: ProgressSnapshot): void;
  /** Something the user should know while watching, e.g. a lost connection being resumed. */
  note(text: string): void;
  /** The watch is over: show the last state for good. */
  stop(snapshot: ProgressSnapshot | undefined): void;
}

export type RenderMode = 'tty' | 'plain' | 'json';

export function renderModeFor(stdout: Output, json: boolean): RenderMode {
  if (json) return 'json';
  return stdout.isTTY ? 'tty' : 'plain';
}

export function createRenderer(mode: RenderMode, stdout: Output, stderr: Output): Renderer {
  if (mode === 'json') return jsonRenderer(stdout);
  if (mode === 'plain') return plainRenderer(stdout, stderr);
  return lazyBars(stdout as NodeJS.WritableStream);
}

/**
 * On a terminal: the job's bar, or, for a pipeline, a bar per step under it. Which one is known at
 * the first snapshot (the job view says whether the job has steps).
 */
function lazyBars(stdout: NodeJS.WritableStream): Renderer {
  let chosen: Renderer | undefined;
  const pick = (s: ProgressSnapshot) => {
    chosen ??= s.steps.length > 0 ? stepBarsRenderer(stdout) : barRenderer(stdout);
    return chosen;
  };
  const early: string[] = [];
  return {
    update(s) {
      const r = pick(s);
      for (const text of early.splice(0)) r.note(text);
      r.update(s);
    },
    note(text) {
      if (chosen) chosen.note(text);
      else early.push(text);
    },
    stop(s) {
      if (s) pick(s).stop(s);
      else chosen?.stop(undefined);
    },
  };
}

/** The bar: done items of the total, then the progress text. Redrawn at most 5 times a second. */
function barRenderer(stdout: NodeJS.WritableStream): Renderer {
  const bar = new cliProgress.SingleBar({
    stream: stdout,
    format: '{bar} {text}{note}',
    barsize: 24,
    barCompleteChar: '\u2588',
    barIncompleteChar: '\u2591',
    fps: 5,
    hideCursor: null,
    // Trims to the terminal's width instead of wrapping, so the line redraws in place.
    linewrap: false,
    emptyOnZero: true,
    gracefulExit: false,
  });
  let started = false;
  let note = '';
  const draw = (s: ProgressSnapshot) => {
    const payload = { text: progressText(s), note };
    if (!started) {
      bar.start(s.total, s.done, payload);
      started = true;
    } else {
      if (bar.getTotal() !== s.total) bar.setTotal(s.total);
      bar.update(s.done, payload);
    }
  };
  let last: ProgressSnapshot | undefined;
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
      if (started) {
        bar.render();
        bar.stop();
      }
    },
  };
}

/** A line each time the counts or status change, at most one every 2 s, and one a minute regardless. */
function plainRenderer(stdout: Output, stderr: Output): Renderer {
  let lastAt = 0;
  let lastKey = '';
  let lastPrinted = '';
  const print = (s: ProgressSnapshot) => {
    const text = plainText(s);
    stdout.write(`${text}\n`);
    lastPrinted = text;
    lastAt = Date.now();
    lastKey = keyOf(s);
  };
  return {
    update(s) {
      const changed = keyOf(s) !== lastKey;
      const since = Date.now() - lastAt;
      if ((changed && since >= 2000) || since >= 60_000) print(s);
    },
    note(text) {
      stderr.write(`${text}\n`);
    },
    stop(s) {
      if (s && plainText(s) !== lastPrinted) print(s);
    },
  };
}

/** The job's line, then a line per step of a pipeline. */
function plainText(s: ProgressSnapshot): string {
  return [`${s.status} ${progressText(s)}`, ...s.steps.map((t) => `  step ${stepProgressText(t)}`)].join(
    '\n',
  );
}

/** `{"type":"progress", …snapshot}` per change, at most one a second. */
function jsonRenderer(stdout: Output): Renderer {
  let lastAt = 0;
  let lastKey = '';
  const print = (s: ProgressSnapshot) => {
    stdout.write(`${JSON.stringify({ type: 'progress', ...s })}\n`);
    lastAt = Date.now();
    lastKey = keyOf(s);
  };
  return {
    update(s) {
      if (keyOf(s) !== lastKey && Date.now() - lastAt >= 1000) print(s);
    },
    note(text) {
      stdout.write(`${JSON.stringify({ type: 'note', message: text })}\n`);
    },
    stop(s) {
      if (s && keyOf(s) !== lastKey) print(s);
    },
  };
}

/** What makes a new line worth printing: counts, status, tokens, notices. */
function keyOf(s: ProgressSnapshot): string {
  const steps = s.steps.map((t) => `${t.done}/${t.failed}/${t.cancelled}`).join();
  return [s.status, s.done, s.failed, s.cancelled, s.promptTokens, s.notice, s.batches.join(), steps].join(
    '|',
  );
}
