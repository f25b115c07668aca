/** What happened in a simulated run, one line per step, stamped with simulated seconds since start. */
export class Trace {
  readonly lines: string[] = [];

  constructor(
    private readonly now: () => number,
    private readonly startMs: number,
    /** Echo every line as it happens (SIM_TRACE=1). */
    private readonly echo = false,
  ) {}

  add(line: string): void {
    const stamped = `${((this.now() - this.startMs) / 1000).toFixed(3).padStart(9)}s ${line}`;
    this.lines.push(stamped);
    if (this.echo) console.log(stamped);
  }

  /** The last `n` lines, for a failure report. */
  tail(n: number): string {
    return this.lines.slice(-n).join('\n');
  }
}
