import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { PROJECT_ROOT } from '../../infra/local/stack.js';

/**
 * `npx tsx test/bench/cpu-profile.ts DIR`: where the CPU time of `.cpuprofile` files went (those
 * Node writes with `--cpu-prof`; the local cloud's functions host takes Node flags from
 * FANOUT_HOST_NODE_ARGS). Self time is summed by function and by where the code lives (our
 * functions, a package in node_modules, Node itself), over every file in DIR: a flame graph's
 * widest frames, as a table.
 */
interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const dir = process.argv[2];
if (!dir) throw new Error('usage: tsx test/bench/cpu-profile.ts DIR_WITH_CPUPROFILES');

const byFunction = new Map<string, number>();
const byPlace = new Map<string, number>();
let totalMs = 0;
for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  profile.samples.forEach((id, i) => {
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    const frame = nodes.get(id)?.callFrame;
    if (!frame) return;
    totalMs += ms;
    const url = frame.url.replace(/^file:\/\//, '');
    const where = !url
      ? `(${frame.functionName || 'program'})`
      : url.includes('node_modules/')
        ? `node_modules/${url
            .split('node_modules/')
            .at(-1)!
            .split('/')
            .slice(0, url.includes('node_modules/@') ? 2 : 1)
            .join('/')}`
        : url.startsWith('node:')
          ? 'node internals'
          : relative(PROJECT_ROOT, url).split('/').slice(0, 2).join('/');
    const name = `${frame.functionName || '(anonymous)'} ${url ? `${relative(PROJECT_ROOT, url)}:${frame.lineNumber + 1}` : ''}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + ms);
    byPlace.set(where, (byPlace.get(where) ?? 0) + ms);
  });
}
const top = (m: Map<string, number>, n: number) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([what, ms]) => ({
      what,
      'self ms': Math.round(ms),
      share: `${((100 * ms) / totalMs).toFixed(1)}%`,
    }));
console.log(`total sampled: ${Math.round(totalMs)} ms`);
console.table(top(byPlace, 15));
console.table(top(byFunction, 25));
