/**
 * `sudo npm run bench:metrics`: what --metrics costs a client. Two union-nfsd processes over
 * the same lower layer (each with its own upper), one started with --metrics, take turns
 * (the order alternates) running the workloads where a per-call cost shows most: 4 KiB random
 * reads with one request in flight, and create / stat / unlink of small files. A third
 * process scrapes the metrics server once a second meanwhile, as Prometheus would (every 15 s
 * by default: this is the harder case). Prints, per workload, the rate of each and the median
 * of the per-round ratios (with / without); above 0.97 is within this machine's noise.
 *
 * Environment: BENCH_ROUNDS (default 5), BENCH_TMP (base dir), BENCH_SERVER_ARGS (more options
 * for both servers; `--busy-poll 0` makes the CPU per operation the server's work alone).
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { median } from './report.js';
import { buildClient, cpuSeconds, run, say, startUnion, tmpDirs } from './harness.js';

/** The client runs while this process's event loop scrapes (run() would block it). */
const runAsync = async (bin: string, args: string[]): Promise<string> => (await promisify(execFile)(bin, args, { maxBuffer: 1 << 24 })).stdout;

const ROUNDS = Math.max(1, Number(process.env['BENCH_ROUNDS'] ?? 5) || 1);
const RAND_SIZE = 64 * 1024 * 1024;
const RAND_COUNT = 20_000;
const META_FILES = 2_000;

function scrape(port: number): Promise<number> {
  return new Promise((resolve) => {
    http.get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let n = 0;
      res.on('data', (c: Buffer) => (n += c.length));
      res.on('end', () => resolve(n));
    }).on('error', () => resolve(0));
  });
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root (libnfs from a privileged port, as the default client rule wants)');
  const client = buildClient();
  const base = fs.mkdtempSync(path.join(process.env['BENCH_TMP'] ?? os.tmpdir(), 'unfs-metrics-bench-'));
  tmpDirs.push(base);
  const lower = path.join(base, 'lower');
  fs.mkdirSync(path.join(lower, 'meta'), { recursive: true });
  run(client, ['gen-pattern', path.join(lower, 'rand.bin'), String(RAND_SIZE), '1']);
  const servers: { tag: string; nfs: number; mnt: number; pid: number; metrics?: number }[] = [];
  for (const tag of ['plain', 'metrics']) {
    for (const d of ['upper', 'work']) fs.mkdirSync(path.join(base, tag, d), { recursive: true });
    const args = ['--lower', lower, '--upper', path.join(base, tag, 'upper'), '--workdir', path.join(base, tag, 'work')];
    if (tag === 'metrics') args.push('--metrics', '0');
    args.push(...(process.env['BENCH_SERVER_ARGS'] ?? '').split(' ').filter(Boolean));
    const s = await startUnion(args, tag, base);
    servers.push({ tag, nfs: s.nfs, mnt: s.mnt, pid: s.pid, ...(s.metrics !== undefined && { metrics: s.metrics }) });
  }
  const withMetrics = servers.find((s) => s.tag === 'metrics')!;
  if (withMetrics.metrics === undefined) throw new Error('no metrics port in the ready line');
  let scraped = 0;
  const scraper = setInterval(() => void scrape(withMetrics.metrics!).then((n) => { scraped += n > 0 ? 1 : 0; }), 1000);

  const rates: Record<string, Record<string, number[]>> = {};
  const cpu: Record<string, Record<string, number[]>> = {};
  const note = (into: typeof rates, workload: string, tag: string, v: number): void => {
    ((into[workload] ??= {})[tag] ??= []).push(v);
  };
  for (let round = 1; round <= ROUNDS; round++) {
    const order = round % 2 ? servers : [...servers].reverse();
    for (const s of order) {
      const url = `nfs://127.0.0.1/union?nfsport=${s.nfs}&mountport=${s.mnt}&version=3`;
      const steps: [string, string[]][] = [
        ['randread', ['randread', url, '/rand.bin', String(RAND_SIZE), '1', String(RAND_COUNT), '30', '1', String(round)]],
        ['meta', ['meta', url, `/meta/r${round}`, String(META_FILES), '60']],
      ];
      for (const [name, args] of steps) {
        const cpu0 = cpuSeconds(s.pid);
        const lines = (await runAsync(client, args)).split('\n').filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as { workload: string; ops: number; seconds: number; verify: string });
        const cpuUsed = cpuSeconds(s.pid) - cpu0;
        let ops = 0;
        for (const l of lines) {
          if (l.verify !== 'ok') throw new Error(`${s.tag} ${l.workload}: ${l.verify}`);
          note(rates, l.workload, s.tag, l.ops / l.seconds);
          ops += l.ops;
        }
        note(cpu, name, s.tag, (cpuUsed / ops) * 1e6);
      }
    }
    say(`round ${round}/${ROUNDS} done`);
  }
  clearInterval(scraper);
  const table = (title: string, unit: string, data: typeof rates): void => {
    console.log(`\n${title}\n\n| workload | without --metrics (${unit}, median) | with --metrics | ratio with / without (median of rounds; per round) |\n| --- | --- | --- | --- |`);
    for (const [workload, byTag] of Object.entries(data)) {
      const plain = byTag['plain'] ?? [], metrics = byTag['metrics'] ?? [];
      const ratios = plain.map((p, i) => (metrics[i] ?? NaN) / p);
      console.log(`| ${workload} | ${median(plain).toFixed(unit === 'ops/s' ? 0 : 1)} | ${median(metrics).toFixed(unit === 'ops/s' ? 0 : 1)} | ${median(ratios).toFixed(3)} (${ratios.map((r) => r.toFixed(2)).join(', ')}) |`);
    }
  };
  table('Client-side rates (above 1.0: faster with metrics)', 'ops/s', rates);
  table('Server CPU per client operation, all phases of a step (above 1.0: more CPU with metrics)', 'µs', cpu);
  console.log(`\n${ROUNDS} rounds; ${scraped} scrapes of the metrics endpoint during the run.`);
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(err);
  process.exit(1);
});
