/**
 * `sudo npm run bench:soak`: issue 14's soak. 16 libnfs clients (nfsbench `mixed`: checked 4 KiB
 * reads of a lower file, writes read back, creates, stats, unlinks and listings of their own
 * directories) load union-nfsd for SOAK_SECONDS (default 600). Its RSS is sampled every 5 s;
 * the result is the errors the clients saw and the RSS slope after a 2-minute warm-up (least
 * squares, MiB per minute). Not part of CI.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { buildClient, cleanup, repo, run, say, startUnion, tmpDirs, which } from './harness.js';

const SECONDS = Number(process.env['SOAK_SECONDS'] ?? 600);
const CLIENTS = 16;
const WARMUP_S = Math.min(120, SECONDS / 5);
const RAND = 64 * 1024 * 1024;

function rssMiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
}

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n, my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0, den = 0;
  for (let i = 0; i < n; i++) { num += (xs[i]! - mx) * (ys[i]! - my); den += (xs[i]! - mx) ** 2; }
  return den === 0 ? 0 : num / den;
}

async function main(): Promise<void> {
  if (!which('gcc')) throw new Error('gcc missing (it builds the libnfs client)');
  const client = buildClient();
  const base = fs.mkdtempSync('/var/tmp/unfs-soak-');
  tmpDirs.push(base);
  const lower = path.join(base, 'lower');
  fs.mkdirSync(path.join(lower, 'leaf'), { recursive: true });
  run(client, ['gen-pattern', path.join(lower, 'rand.bin'), String(RAND), '1']);
  run(client, ['gen-files', path.join(lower, 'leaf'), 'f%03d', '0', '100', '1', '-1']);
  fs.mkdirSync(path.join(base, 'upper'));
  fs.mkdirSync(path.join(base, 'work'));
  const u = await startUnion(['--lower', lower, '--upper', path.join(base, 'upper'), '--workdir', path.join(base, 'work'),
    '--clients', '127.0.0.0/8(rw,no_root_squash,insecure)'], 'soak', base);
  const url = `nfs://127.0.0.1/union?nfsport=${u.nfs}&mountport=${u.mnt}&version=3`;
  const samples: { t: number; rss: number }[] = [];
  const t0 = Date.now();
  const tick = setInterval(() => {
    const s = { t: (Date.now() - t0) / 1000, rss: rssMiB(u.pid) };
    samples.push(s);
    if (samples.length % 12 === 0) say(`soak ${s.t.toFixed(0)} s: RSS ${s.rss.toFixed(1)} MiB`);
  }, 5000);
  const out = await new Promise<string>((resolve, reject) => {
    const p = spawn(client, ['mixed', url, '/mix', String(CLIENTS), String(SECONDS), '/rand.bin', String(RAND), '/leaf', '100'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let buf = '';
    p.stdout.on('data', (d: Buffer) => { buf += d.toString(); });
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve(buf) : reject(new Error(`nfsbench mixed exited ${code}: ${buf}`))));
  });
  clearInterval(tick);
  const r = JSON.parse(out.trim().split('\n').pop()!) as { ops: number; seconds: number; errors: number; verify: string };
  const after = samples.filter((s) => s.t >= WARMUP_S);
  const perMin = slope(after.map((s) => s.t / 60), after.map((s) => s.rss));
  const lines = [
    `${CLIENTS} clients of mixed load for ${r.seconds.toFixed(0)} s: ${r.ops.toLocaleString('en')} operations (${Math.round(r.ops / r.seconds).toLocaleString('en')}/s), ${r.errors} errors (${r.verify})`,
    `RSS: ${samples[0]?.rss.toFixed(1)} MiB at ${samples[0]?.t.toFixed(0)} s, ${after[0]?.rss.toFixed(1)} MiB after the ${WARMUP_S} s warm-up, ${samples.at(-1)?.rss.toFixed(1)} MiB at the end, max ${Math.max(...samples.map((s) => s.rss)).toFixed(1)} MiB; slope after warm-up ${perMin.toFixed(2)} MiB/min`,
  ];
  const text = lines.join('\n');
  process.stdout.write(`${text}\n`);
  fs.mkdirSync(path.join(repo, 'bench/results/raw'), { recursive: true });
  fs.writeFileSync(path.join(repo, 'bench/results/soak.txt'), `${text}\n`);
  fs.writeFileSync(path.join(repo, 'bench/results/raw/soak-rss.csv'), `seconds,rss_mib\n${samples.map((s) => `${s.t.toFixed(0)},${s.rss.toFixed(1)}`).join('\n')}\n`);
  say('done');
}

main().then(() => cleanup(), (err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  cleanup();
  process.exit(1);
});
