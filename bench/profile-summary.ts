/**
 * Summarize a V8 .cpuprofile (from `node --cpu-prof`, e.g. BENCH_CPU_PROF=<dir> npm run bench):
 * the functions with the most self time and the most inclusive time, as file:line function.
 *
 *   node dist/bench/profile-summary.js <file.cpuprofile> [top=25]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const file = process.argv[2];
const top = Number(process.argv[3] ?? 25);
if (!file) {
  process.stderr.write('usage: profile-summary <file.cpuprofile> [top]\n');
  process.exit(2);
}
const prof = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const selfUs = new Map<number, number>();
prof.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0)));

const key = (f: CallFrame): string => {
  const where = f.url ? `${path.relative(process.cwd(), f.url.replace(/^file:\/\//, ''))}:${f.lineNumber + 1}` : '(native)';
  return `${where} ${f.functionName || '(anonymous)'}`;
};
const self = new Map<string, number>();
const incl = new Map<string, number>();
let total = 0;
for (const [id, us] of selfUs) {
  const n = byId.get(id);
  if (!n) continue;
  total += us;
  self.set(key(n.callFrame), (self.get(key(n.callFrame)) ?? 0) + us);
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const k = key((byId.get(cur) as ProfileNode).callFrame);
    if (seen.has(k)) continue; // recursion counts once
    seen.add(k);
    incl.set(k, (incl.get(k) ?? 0) + us);
  }
}
const show = (title: string, m: Map<string, number>): void => {
  process.stdout.write(`\n${title} (of ${(total / 1e6).toFixed(2)} s sampled)\n`);
  for (const [k, us] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`${((100 * us) / total).toFixed(1).padStart(6)}%  ${(us / 1e6).toFixed(2).padStart(7)} s  ${k}\n`);
  }
};
show('self time', self);
show('inclusive time', incl);
