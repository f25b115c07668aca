import { readdirSync, readFileSync } from 'node:fs';

/**
 * Memory and CPU of the local cloud's processes while a scale run goes on, read from Linux /proc:
 * the functions host (the cluster primary, `functionsPid`) and every descendant of it (its
 * instances and any helper they start), and apart from them the rest of the local cloud (the
 * stack process, which serves the Tasks and Storage emulators and the Gemini stand-in on one event
 * loop, and the Firestore emulator's JVM), and the machine as a whole.
 *
 * {@link startSampler} reads VmRSS of every process of the functions' tree every `intervalMs`
 * (instances that die and are replaced are picked up at the next sample) and CPU ticks at the start
 * and the end; a process gone before the end keeps the ticks it had at its last sample.
 */

const TICKS_PER_SECOND = 100;
const MB = 1024 * 1024;

/** A process's parent, CPU ticks (utime + stime) and command name, from /proc/<pid>/stat; undefined if gone. */
function statOf(
  pid: number,
  path = `/proc/${pid}/stat`,
): { ppid: number; ticks: number; comm: string } | undefined {
  try {
    const stat = readFileSync(path, 'utf8');
    // The command name is in parentheses and may hold spaces: count fields after its last `)`.
    const close = stat.lastIndexOf(')');
    const fields = stat.slice(close + 2).split(' ');
    const at = (field: number) => Number(fields[field - 3]);
    return { ppid: at(4), ticks: at(14) + at(15), comm: stat.slice(stat.indexOf('(') + 1, close) };
  } catch {
    return undefined;
  }
}

/** CPU ticks of a JVM's JIT compiler threads (`C1 CompilerThre`, `C2 CompilerThre`); 0 if gone. */
export function compilerTicks(pid: number): number {
  try {
    let ticks = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const stat = statOf(Number(tid), `/proc/${pid}/task/${tid}/stat`);
      if (stat?.comm.includes('CompilerThre')) ticks += stat.ticks;
    }
    return ticks;
  } catch {
    return 0;
  }
}

/** Resident memory of a process in bytes (VmRSS); 0 if it is gone. */
export function rssBytes(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * The children of `pid`: from every thread's `children` file where the kernel has them, else by
 * scanning /proc for processes whose parent is `pid`.
 */
export function childrenOf(pid: number): number[] {
  try {
    const tasks = readdirSync(`/proc/${pid}/task`);
    return tasks.flatMap((tid) =>
      readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number),
    );
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !readdirSafe(`/proc/${pid}`)) return [];
    return readdirSafe('/proc')
      .filter((name) => /^\d+$/.test(name))
      .map(Number)
      .filter((child) => statOf(child)?.ppid === pid);
  }
}

function readdirSafe(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

/** `pid` and all its descendants. */
export function treeOf(pid: number): number[] {
  const found: number[] = [];
  const pending = [pid];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    found.push(next);
    pending.push(...childrenOf(next));
  }
  return found;
}

/** The parent of `pid` (0 if it is gone). */
export function parentOf(pid: number): number {
  return statOf(pid)?.ppid ?? 0;
}

/** Busy and total jiffies of the whole machine (the `cpu` line of /proc/stat). */
function machineTicks(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already inside user).
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = values;
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, total: busy + idle + iowait };
}

/** What the sampler saw over one run. Memory in MB, CPU in seconds. */
export interface ProcessReport {
  /** Resident memory of the functions' tree (host, instances, their helpers) just before the run. */
  startTreeRssMb: number;
  /** Highest sum over the functions' tree in any one sample. */
  peakTreeRssMb: number;
  /** Highest resident memory of any one instance (a direct child of the host) in any sample. */
  peakInstanceRssMb: number;
  /** Each instance's own highest resident memory, by pid (a replaced instance has its own entry). */
  instancePeaksMb: Record<string, number>;
  /** Each instance's CPU seconds in the run, by pid. */
  instanceCpuS: Record<string, number>;
  /** The host (cluster primary) alone. */
  peakHostRssMb: number;
  /** The rest of the local cloud at its highest sum: stack process and Firestore's JVM. */
  peakEmulatorsRssMb: number;
  samples: number;
  /** The longest gap between two samples (the benchmark's own event loop may delay one). */
  maxGapMs: number;
  /** CPU seconds in the run: the functions' tree, the stack process alone, the JVM, this process. */
  cpuS: {
    functions: number;
    stackProcess: number;
    firestore: number;
    /**
     * Of `firestore`, the JVM's JIT compiler threads: compiling the emulator's own code, most of it
     * in its first minutes (each benchmark boots a fresh one), not work that grows with the items.
     */
    firestoreJit: number;
    benchmark: number;
  };
  /** Share of the machine's cores busy over the run (every process, not only the local cloud's). */
  machineBusyShare: number;
}

export interface Sampler {
  stop(): ProcessReport;
}

/**
 * Starts sampling the functions host `functionsPid` and the local cloud around it (its parent, the
 * stack process, and that one's other children: the Firestore emulator). Call `stop()` at the end.
 */
export function startSampler(functionsPid: number, intervalMs: number): Sampler {
  const stackPid = parentOf(functionsPid);
  const firestorePids = childrenOf(stackPid).filter((pid) => statOf(pid)?.comm === 'java');

  // CPU ticks per pid: at the start (0 for a process born during the run) and at its last sample,
  // so a process that ends mid-run keeps what it used.
  const ticksAtStart = new Map<number, number>();
  const ticksLast = new Map<number, number>();
  const functionsPids = new Set<number>();
  const note = (pid: number, bornDuringRun: boolean) => {
    const ticks = statOf(pid)?.ticks;
    if (ticks === undefined) return;
    if (!ticksAtStart.has(pid)) ticksAtStart.set(pid, bornDuringRun ? 0 : ticks);
    ticksLast.set(pid, ticks);
  };
  const cpuSeconds = (pids: Iterable<number>) => {
    let sum = 0;
    for (const pid of pids) sum += (ticksLast.get(pid) ?? 0) - (ticksAtStart.get(pid) ?? 0);
    return sum / TICKS_PER_SECOND;
  };

  const jitAtStart = firestorePids.reduce((sum, pid) => sum + compilerTicks(pid), 0);
  const machineAtStart = machineTicks();
  const benchAtStart = process.cpuUsage();
  const startTree = treeOf(functionsPid);
  const startTreeRss = startTree.reduce((sum, pid) => sum + rssBytes(pid), 0);
  for (const pid of [...startTree, stackPid, ...firestorePids]) note(pid, false);
  for (const pid of startTree) functionsPids.add(pid);

  let peakTree = startTreeRss;
  let peakHost = 0;
  let peakEmulators = 0;
  const instancePeaks = new Map<number, number>();
  let samples = 0;
  let maxGapMs = 0;
  let last = performance.now();

  const sample = () => {
    const now = performance.now();
    maxGapMs = Math.max(maxGapMs, now - last);
    last = now;
    samples++;
    let sum = 0;
    for (const pid of treeOf(functionsPid)) {
      const rss = rssBytes(pid);
      sum += rss;
      note(pid, true);
      functionsPids.add(pid);
      if (pid === functionsPid) peakHost = Math.max(peakHost, rss);
    }
    for (const pid of childrenOf(functionsPid)) {
      instancePeaks.set(pid, Math.max(instancePeaks.get(pid) ?? 0, rssBytes(pid)));
    }
    peakTree = Math.max(peakTree, sum);
    let emulators = rssBytes(stackPid);
    for (const pid of firestorePids) emulators += rssBytes(pid);
    peakEmulators = Math.max(peakEmulators, emulators);
    for (const pid of [stackPid, ...firestorePids]) note(pid, false);
  };
  sample();
  const timer = setInterval(sample, intervalMs);

  return {
    stop() {
      clearInterval(timer);
      sample();
      const jit = firestorePids.reduce((sum, pid) => sum + compilerTicks(pid), 0) - jitAtStart;
      const machine = machineTicks();
      const bench = process.cpuUsage(benchAtStart);
      const mb = (bytes: number) => Math.round((bytes / MB) * 10) / 10;
      const s = (value: number) => Math.round(value * 100) / 100;
      const totalTicks = machine.total - machineAtStart.total;
      return {
        startTreeRssMb: mb(startTreeRss),
        peakTreeRssMb: mb(peakTree),
        peakInstanceRssMb: mb(Math.max(0, ...instancePeaks.values())),
        instancePeaksMb: Object.fromEntries(
          [...instancePeaks].map(([pid, bytes]) => [String(pid), mb(bytes)]),
        ),
        instanceCpuS: Object.fromEntries(
          [...instancePeaks.keys()].map((pid) => [String(pid), s(cpuSeconds([pid]))]),
        ),
        peakHostRssMb: mb(peakHost),
        peakEmulatorsRssMb: mb(peakEmulators),
        samples,
        maxGapMs: Math.round(maxGapMs),
        cpuS: {
          functions: s(cpuSeconds(functionsPids)),
          stackProcess: s(cpuSeconds([stackPid])),
          firestore: s(cpuSeconds(firestorePids)),
          firestoreJit: s(jit / TICKS_PER_SECOND),
          benchmark: s((bench.user + bench.system) / 1e6),
        },
        machineBusyShare: totalTicks > 0 ? s((machine.busy - machineAtStart.busy) / totalTicks) : 0,
      };
    },
  };
}
