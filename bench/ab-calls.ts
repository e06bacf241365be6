/**
 * `sudo node dist/bench/ab-calls.js A_CLI B_CLI`: per-call latency of two union-nfsd builds (or
 * one build with two sets of options), side by side: both serve their own upper over the same
 * lower on tmpfs, and take turns (order alternating) running nfsbench's `calls` workload (one
 * call in flight, each timed: NULL, GETATTR, LOOKUP, ACCESS, 4 KiB READ, CREATE, REMOVE). Prints
 * per procedure the median over rounds of each build's p50 and p99, and the median of the
 * per-round ratios B/A (below 1.0: B is faster). For deciding whether a change cuts latency.
 *
 * A_CLI/B_CLI: paths of dist/src/cli.js (e.g. a `git worktree` of the old commit, built).
 * Environment: AB_ROUNDS (default 7), AB_CALLS (default 5000), AB_ARGS_A / AB_ARGS_B (more
 * server options for one side, e.g. "--busy-poll 0"), AB_NODE_A / AB_NODE_B (node options
 * added after the cli's own, where a later V8 flag wins: "--max-semi-space-size=8").
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { latencyRounds, latencyTable } from './report.js';
import { buildClient, mounts, run, say, startUnion, tmpDirs } from './harness.js';

const ROUNDS = Math.max(1, Number(process.env['AB_ROUNDS'] ?? 7) || 1);
const CALLS = Math.max(100, Number(process.env['AB_CALLS'] ?? 5000) || 5000);

async function main(): Promise<void> {
  const [cliA, cliB] = process.argv.slice(2);
  if (!cliA || !cliB) throw new Error('usage: ab-calls A_CLI B_CLI (paths of dist/src/cli.js)');
  const client = buildClient();
  const base = fs.mkdtempSync('/tmp/unfs-ab-');
  tmpDirs.push(base);
  run('mount', ['-t', 'tmpfs', '-o', 'size=1g', 'union-nfsd-ab', base]);
  mounts.push(base);
  fs.mkdirSync(path.join(base, 'lower/meta'), { recursive: true });
  run(client, ['gen-pattern', path.join(base, 'lower/rand.bin'), String(64 << 20), '1']);
  const sides = [];
  for (const [tag, cli] of [['A', cliA], ['B', cliB]] as const) {
    for (const d of ['upper', 'work']) fs.mkdirSync(path.join(base, tag, d), { recursive: true });
    const args = ['--lower', path.join(base, 'lower'), '--upper', path.join(base, tag, 'upper'), '--workdir', path.join(base, tag, 'work'),
      ...(process.env[`AB_ARGS_${tag}`] ?? '').split(' ').filter(Boolean)];
    const nodeArgs = process.env[`AB_NODE_${tag}`];
    if (nodeArgs !== undefined) process.env['BENCH_NODE_ARGS'] = nodeArgs;
    const s = await startUnion(args, tag, base, '127.0.0.1', path.resolve(cli));
    delete process.env['BENCH_NODE_ARGS'];
    sides.push({ tag, url: `nfs://127.0.0.1/union?nfsport=${s.nfs}&mountport=${s.mnt}&version=3` });
  }
  const l = await latencyRounds(sides, ROUNDS, async (s) => (await promisify(execFile)(client, ['calls', s.url, '/meta', String(CALLS), '30'])).stdout,
    (round) => say(`round ${round}/${ROUNDS}`));
  console.log(`\n${latencyTable(l, 'A', 'B')}`);
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(err);
  process.exit(1);
});
