/**
 * `npm run bench`: union-nfsd side by side with nfs-ganesha 4.3 (FSAL VFS, NFSv3), one server
 * at a time, driven by the same libnfs client (bench/client/nfsbench.c).
 *
 * Servers (all on loopback, all over the same generated content, prepared before any starts):
 *   union     union-nfsd over 3 lowers + upper (and `union20`: 20 lowers, for deep lookups)
 *   plain     ganesha exporting a plain directory holding the merged content
 *   overlay   ganesha exporting a kernel overlayfs mount (index=on,nfs_export=on) of the very
 *             same lower directories (`overlay20` for the 20-layer lookups)
 *   plain0    a second ganesha exporting the plain directory with Attr_Expiration_Time = 0
 * plain and overlay run with ganesha's defaults, as its users run it: attributes cached (60 s),
 * which is also the contract union-nfsd serves under (the layers change only through it).
 * plain0 is the configuration earlier runs used, kept as a second, labelled column.
 * Each workload runs on each server in turn, rounds interleaved (the server order rotates per
 * round), and the summary compares per-round ratios, because this machine is shared and noisy.
 *
 * Environment: BENCH_QUICK=1 (small sizes), BENCH_ROUNDS (default 3), BENCH_ONLY=w1,w2,
 * BENCH_SERVERS=union,plain,overlay,plain0, BENCH_FS=tmpfs|dir (default tmpfs), BENCH_TMP (base dir),
 * BENCH_CPU_PROF=<dir> (start union-nfsd under `node --cpu-prof`), BENCH_NODE_ARGS (more node
 * options for union-nfsd, e.g. --heap-prof), BENCH_SERVER_ARGS (more union-nfsd options, e.g.
 * `--busy-poll 0`), BENCH_NO_RESULTS=1 (do not
 * overwrite bench/results/latest.* and the README table; quick runs leave them alone unless
 * BENCH_WRITE_RESULTS=1).
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  buildClient, children, cleanup, cpuSeconds, holdFreedMemory, mounts, peakRssMiB, repo, resetPeak, run, say,
  startGanesha, startRpcbind, startUnion, tmpDirs, which,
} from './harness.js';
import { renderMarkdown, renderSvg, summarize, type Sample } from './report.js';
import { WORKLOADS, type Sizes, type Workload, type ServerKind } from './workloads.js';
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

const quick = process.env['BENCH_QUICK'] === '1';
const rounds = Math.max(1, Math.min(20, Number(process.env['BENCH_ROUNDS'] ?? 3) || 3));
const only = (process.env['BENCH_ONLY'] ?? '').split(',').filter(Boolean);
const serverSel = (process.env['BENCH_SERVERS'] ?? 'union,plain,overlay,plain0').split(',').filter(Boolean);
const fsKind = process.env['BENCH_FS'] === 'dir' ? 'dir' : 'tmpfs';

const sizes: Sizes = quick
  ? { seq: 128 * MiB, req: MiB, rand: 64 * MiB, qd1Count: 5000, qd16Count: 10000, randMaxSec: 10, meta: 1000,
      list: 20000, copyup: 128 * MiB, lookupCount: 1000, lookupMaxSec: 10, leaves: 100, depth: 10,
      mixedClients: 16, mixedSec: 8, calls: 1000 }
  : { seq: GiB, req: MiB, rand: 256 * MiB, qd1Count: 20000, qd16Count: 50000, randMaxSec: 20, meta: 5000,
      list: 100000, copyup: GiB, lookupCount: 3000, lookupMaxSec: 20, leaves: 100, depth: 10,
      mixedClients: 16, mixedSec: 60, calls: 5000 };

// ---------------------------------------------------------------- prerequisites

function checkPrerequisites(wantUnion: boolean): void {
  const problems: string[] = [];
  if (process.getuid?.() !== 0) problems.push('run as root (kernel overlayfs mounts and ganesha need it): sudo npm run bench');
  const pkgs = ['nfs-ganesha', 'nfs-ganesha-vfs', 'rpcbind', 'libnfs-dev', 'gcc'];
  const missing = pkgs.filter((p) => {
    const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', p], { encoding: 'utf8' });
    return r.status !== 0 || !r.stdout.includes('install ok installed');
  });
  if (missing.length) problems.push(`missing Debian packages: apt-get install ${missing.join(' ')}`);
  for (const bin of ['ganesha.nfsd', 'rpcbind', 'gcc', 'unshare', 'mount', 'umount']) {
    if (!which(bin)) problems.push(`'${bin}' not found in PATH`);
  }
  if (!fs.existsSync('/usr/include/nfsc/libnfs.h')) problems.push('libnfs headers missing: apt-get install libnfs-dev');
  if (!fs.readFileSync('/proc/filesystems', 'utf8').includes('overlay')) {
    problems.push('kernel overlayfs not available: modprobe overlay');
  }
  if (wantUnion && !fs.existsSync(path.join(repo, 'dist/src/cli.js'))) problems.push('dist/src/cli.js missing: npm run build');
  if (problems.length) {
    process.stderr.write(`bench prerequisites not met (nothing was installed):\n  - ${problems.join('\n  - ')}\n`);
    process.exit(2);
  }
}

// ---------------------------------------------------------------- content generation

interface Layout {
  root: string; // where everything lives (tmpfs mount point)
  lowers3: string[]; // top-most first
  upper3: string;
  work3: string;
  lowers20: string[];
  upper20: string;
  work20: string;
  plain: string;
  ov3: { upper: string; work: string; merged: string };
  ov20: { upper: string; work: string; merged: string };
}

function gen(client: string, ...args: (string | number)[]): void {
  run(client, args.map(String), { timeoutMs: 600_000 });
}

function deepPath(base: string, depth: number): string {
  let p = base;
  for (let i = 1; i < depth; i++) p = path.join(p, `d${i}`);
  return p;
}

function generate(client: string, root: string): Layout {
  const L: Layout = {
    root,
    lowers3: [0, 1, 2].map((i) => path.join(root, 'u3', `l${i}`)),
    upper3: path.join(root, 'u3', 'upper'),
    work3: path.join(root, 'u3', 'work'),
    lowers20: Array.from({ length: 20 }, (_, i) => path.join(root, 'u20', `l${String(i).padStart(2, '0')}`)),
    upper20: path.join(root, 'u20', 'upper'),
    work20: path.join(root, 'u20', 'work'),
    plain: path.join(root, 'plain'),
    ov3: { upper: path.join(root, 'ov3', 'upper'), work: path.join(root, 'ov3', 'work'), merged: path.join(root, 'ov3', 'merged') },
    ov20: { upper: path.join(root, 'ov20', 'upper'), work: path.join(root, 'ov20', 'work'), merged: path.join(root, 'ov20', 'merged') },
  };
  const mk = (...p: string[]): string => {
    const d = path.join(...p);
    fs.mkdirSync(d, { recursive: true });
    return d;
  };
  for (const d of [...L.lowers3, L.upper3, L.work3, ...L.lowers20, L.upper20, L.work20, L.plain, L.ov3.upper, L.ov3.work, L.ov3.merged, L.ov20.upper, L.ov20.work, L.ov20.merged]) mk(d);
  const [l0, l1, l2] = L.lowers3 as [string, string, string];
  const N = sizes.list;
  // /big: N names merged from three layers, with shadowed duplicates and whiteouts to filter
  for (const [i, l] of [l0, l1, l2].entries()) gen(client, 'gen-files', mk(l, 'big'), 'f%06d', i, N, 3, 0);
  gen(client, 'gen-files', path.join(l2, 'big'), 'f%06d', 0, N, 30, 0); // duplicates below l0's copies
  gen(client, 'gen-files', path.join(l2, 'big'), 'g%06d', 0, Math.ceil(N / 100), 1, 0); // hidden by l0
  gen(client, 'gen-whiteouts', path.join(l0, 'big'), 'g%06d', 0, Math.ceil(N / 100), 1);
  gen(client, 'gen-files', mk(L.plain, 'big'), 'f%06d', 0, N, 1, 0);
  // /rand.bin (middle layer), /seq, /meta, /mix, /copyup
  gen(client, 'gen-pattern', path.join(l1, 'rand.bin'), sizes.rand, 1);
  gen(client, 'gen-pattern', path.join(L.plain, 'rand.bin'), sizes.rand, 1);
  for (const d of ['seq', 'meta', 'mix']) {
    mk(l2, d);
    mk(L.plain, d);
  }
  mk(l1, 'meta', 'keep'); // a merged directory that the union has to copy up on first create
  mk(l0, 'meta');
  mk(L.plain, 'meta', 'keep');
  mk(l2, 'copyup');
  if (!only.length || only.includes('copyup')) { // the biggest files: only when that workload runs
    for (let r = 1; r <= rounds; r++) {
      gen(client, 'gen-pattern', path.join(l2, 'copyup', `c${r}.bin`), sizes.copyup, 100 + r);
      gen(client, 'gen-pattern', path.join(l2, 'copyup', `w${r}.bin`), sizes.copyup, 200 + r); // the untimed warm-up copy
    }
  }
  // /deep/d1/../d9/f000..: directories in every layer, leaves in the bottom layer only
  for (const l of L.lowers3) mk(deepPath(path.join(l, 'deep'), sizes.depth));
  gen(client, 'gen-files', deepPath(path.join(l2, 'deep'), sizes.depth), 'f%03d', 0, sizes.leaves, 1, -1);
  gen(client, 'gen-files', mk(deepPath(path.join(L.plain, 'deep'), sizes.depth)), 'f%03d', 0, sizes.leaves, 1, -1);
  for (const l of L.lowers20) mk(deepPath(path.join(l, 'deep'), sizes.depth));
  gen(client, 'gen-files', deepPath(path.join(L.lowers20[19] as string, 'deep'), sizes.depth), 'f%03d', 0, sizes.leaves, 1, -1);
  return L;
}

function mountOverlays(L: Layout): void {
  run('mount', ['-t', 'overlay', 'overlay', '-o',
    `lowerdir=${L.lowers3.join(':')},upperdir=${L.ov3.upper},workdir=${L.ov3.work},index=on,nfs_export=on`, L.ov3.merged]);
  mounts.push(L.ov3.merged);
  // (a lower-only overlay cannot be exported: name_to_handle_at fails with EOPNOTSUPP)
  run('mount', ['-t', 'overlay', 'overlay', '-o',
    `lowerdir=${L.lowers20.join(':')},upperdir=${L.ov20.upper},workdir=${L.ov20.work},index=on,nfs_export=on`, L.ov20.merged]);
  mounts.push(L.ov20.merged);
}

// ---------------------------------------------------------------- servers

interface Endpoint {
  kind: ServerKind;
  url: (exportPath?: string) => string;
  pid?: number; // union-nfsd only: resource accounting
}

/** ganesha's EXPORT block for `p`; `attrExpiration` undefined keeps ganesha's default (60 s). */
function ganeshaExport(id: number, p: string, attrExpiration?: number): string {
  return `EXPORT { Export_Id = ${id}; Path = ${p}; Pseudo = /b${id}; Access_Type = RW; Squash = None; ` +
    `Protocols = 3; Transports = TCP; SecType = sys; ` +
    (attrExpiration === undefined ? '' : `Attr_Expiration_Time = ${attrExpiration}; `) + 'FSAL { Name = VFS; } }\n';
}

// ---------------------------------------------------------------- client runs

function runClient(client: string, args: (string | number)[], label: string, timeoutMs: number): Promise<{ lines: Record<string, unknown>[]; code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(client, args.map(String), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NFSBENCH_LABEL: label } });
    children.add(p);
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.once('close', (code) => {
      clearTimeout(t);
      children.delete(p);
      const lines = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ lines, code, stderr: err.trim() });
    });
  });
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const wantUnion = serverSel.includes('union');
  checkPrerequisites(wantUnion);
  holdFreedMemory();
  const started = Date.now();
  const client = buildClient();
  const base = process.env['BENCH_TMP'] ?? os.tmpdir();
  const tmpRoot = fs.mkdtempSync(path.join(base, 'union-nfsd-bench-'));
  tmpDirs.push(tmpRoot);
  const runDir = path.join(tmpRoot, 'run');
  fs.mkdirSync(runDir);
  const dataRoot = path.join(tmpRoot, 'fs');
  fs.mkdirSync(dataRoot);
  if (fsKind === 'tmpfs') {
    const need = Math.ceil((sizes.rand * 2 + sizes.copyup * (2 * rounds + 2) + sizes.seq * 3 + 512 * MiB) / GiB);
    run('mount', ['-t', 'tmpfs', '-o', `size=${need}g,mode=0755`, 'union-nfsd-bench', dataRoot]);
    mounts.push(dataRoot);
  }
  say(`generating layers under ${dataRoot} (${fsKind}, ${quick ? 'quick' : 'full'} sizes, ${rounds} rounds)`);
  const L = generate(client, dataRoot);
  mountOverlays(L);
  say(`layers ready after ${((Date.now() - started) / 1000).toFixed(1)} s`);

  const endpoints = new Map<ServerKind, Endpoint>();
  const url = (port: { nfs: number; mnt: number }, exportPath: string): string =>
    `nfs://127.0.0.1${exportPath}?nfsport=${port.nfs}&mountport=${port.mnt}&version=3`;
  if (serverSel.includes('plain') || serverSel.includes('overlay')) {
    await startRpcbind();
    const g = await startGanesha(ganeshaExport(61, L.plain) + ganeshaExport(62, L.ov3.merged) + ganeshaExport(63, L.ov20.merged), runDir, 30_000);
    if (serverSel.includes('plain')) endpoints.set('plain', { kind: 'plain', url: () => url(g, L.plain) });
    if (serverSel.includes('overlay')) {
      endpoints.set('overlay', { kind: 'overlay', url: () => url(g, L.ov3.merged) });
      endpoints.set('overlay20', { kind: 'overlay20', url: () => url(g, L.ov20.merged) });
    }
  }
  if (serverSel.includes('plain0')) {
    await startRpcbind();
    const dir0 = path.join(runDir, 'plain0');
    fs.mkdirSync(dir0);
    const g0 = await startGanesha(ganeshaExport(64, L.plain, 0), dir0, 30_000);
    endpoints.set('plain0', { kind: 'plain0', url: () => url(g0, L.plain) });
  }
  if (wantUnion) {
    const more = (process.env['BENCH_SERVER_ARGS'] ?? '').split(' ').filter(Boolean);
    const u = await startUnion(['--lower', L.lowers3.join(':'), '--upper', L.upper3, '--workdir', L.work3, ...more], '3', runDir);
    endpoints.set('union', { kind: 'union', url: () => url(u, '/union'), pid: u.pid });
    const u20 = await startUnion(['--lower', L.lowers20.join(':'), '--upper', L.upper20, '--workdir', L.work20, ...more], '20', runDir);
    endpoints.set('union20', { kind: 'union20', url: () => url(u20, '/union'), pid: u20.pid });
  }
  say(`servers up: ${[...endpoints.keys()].join(', ')}`);
  const overallPeak = new Map<number, number>();
  for (const e of endpoints.values()) if (e.pid) overallPeak.set(e.pid, peakRssMiB(e.pid));

  const samples: Sample[] = [];
  const rawDir = path.join(repo, 'bench/results/raw');
  fs.mkdirSync(rawDir, { recursive: true });
  const rawFile = path.join(rawDir, `${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`);
  const workloads = WORKLOADS.filter((w) => !only.length || only.includes(w.name));

  for (let round = 1; round <= rounds; round++) {
    for (const w of workloads) {
      const kinds = rotate(w.servers.filter((k) => endpoints.has(k) && round <= (w.maxRounds?.[k] ?? rounds)), round - 1);
      for (const kind of kinds) {
        const ep = endpoints.get(kind) as Endpoint;
        samples.push(...(await runOne(client, w, ep, round, rawFile, overallPeak)));
      }
    }
    say(`round ${round}/${rounds} done after ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
  for (const [pid] of overallPeak) overallPeak.set(pid, Math.max(overallPeak.get(pid) ?? 0, peakRssMiB(pid)));

  const elapsed = (Date.now() - started) / 1000;
  const summary = summarize(samples);
  const command = `${quick ? 'BENCH_QUICK=1 ' : ''}${process.env['BENCH_ROUNDS'] ? `BENCH_ROUNDS=${rounds} ` : ''}${only.length ? `BENCH_ONLY=${only.join(',')} ` : ''}npm run bench`;
  const machine = {
    nproc: os.cpus().length,
    ramGiB: Math.round(os.totalmem() / GiB),
    kernel: os.release(),
    node: process.version,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    ganesha: run('dpkg-query', ['-W', '-f=${Version}', 'nfs-ganesha'], { allowFail: true }) || 'unknown',
    libnfs: run('dpkg-query', ['-W', '-f=${Version}', 'libnfs-dev'], { allowFail: true }) || 'unknown',
  };
  const unionPeak = Math.max(0, ...[...overallPeak.values()]);
  const md = renderMarkdown(summary, { command, machine, elapsedSec: elapsed, rounds, quick, sizes, fsKind, unionPeakMiB: unionPeak, date: new Date().toISOString() });
  process.stdout.write(`\n${md}\n`);
  // a quick run does not replace the committed full-run results unless asked to
  const writeResults = process.env['BENCH_NO_RESULTS'] !== '1' && (!quick || process.env['BENCH_WRITE_RESULTS'] === '1');
  if (writeResults) {
    const resDir = path.join(repo, 'bench/results');
    fs.writeFileSync(path.join(resDir, 'latest.md'), md);
    fs.writeFileSync(path.join(resDir, 'latest.svg'), renderSvg(summary, { title: `union-nfsd vs nfs-ganesha ${machine.ganesha} (${quick ? 'quick' : 'full'} run, ${rounds} rounds)` }));
    const readme = path.join(repo, 'bench/README.md');
    const text = fs.existsSync(readme) ? fs.readFileSync(readme, 'utf8') : '';
    const begin = '<!-- bench:latest:begin -->';
    const end = '<!-- bench:latest:end -->';
    if (text.includes(begin) && text.includes(end)) {
      const table = md.replace(/^## .*\n\n/, ''); // the section already has its heading
      fs.writeFileSync(readme, `${text.slice(0, text.indexOf(begin) + begin.length)}\n${table}${text.slice(text.indexOf(end))}`);
    }
    say(`wrote bench/results/latest.md, latest.svg and the README table (raw samples: ${path.relative(repo, rawFile)})`);
  }
  const failed = samples.filter((s) => s.verify !== 'ok');
  say(`finished in ${elapsed.toFixed(0)} s; ${failed.length} failed samples`);
  cleanup();
  process.exit(failed.length ? 1 : 0);
}

function rotate<T>(xs: T[], n: number): T[] {
  if (!xs.length) return xs;
  const k = n % xs.length;
  return [...xs.slice(k), ...xs.slice(0, k)];
}

async function runOne(client: string, w: Workload, ep: Endpoint, round: number, rawFile: string, overallPeak: Map<number, number>): Promise<Sample[]> {
  const out: Sample[] = [];
  const label = `${ep.kind}#${round}`;
  const pid = ep.pid;
  if (pid) {
    overallPeak.set(pid, Math.max(overallPeak.get(pid) ?? 0, peakRssMiB(pid)));
    resetPeak(pid);
  }
  const cpu0 = pid ? cpuSeconds(pid) : 0;
  const steps = w.steps(sizes, round, ep.kind);
  for (const step of steps) {
    const r = await runClient(client, [step.args[0] as string, ep.url(), ...step.args.slice(1)], label, step.timeoutSec * 1000);
    if (!step.measure) {
      if (r.code !== 0) say(`${w.name} on ${ep.kind}: setup/cleanup step ${String(step.args[0])} failed: ${r.stderr}`);
      continue;
    }
    if (!r.lines.length) {
      const s: Sample = { workload: w.name, phase: w.name, server: ep.kind, round, ops: 0, bytes: 0, seconds: NaN, verify: `client failed (exit ${r.code}): ${r.stderr.slice(0, 300)}` };
      out.push(s);
      continue;
    }
    for (const line of r.lines) {
      const s: Sample = {
        workload: w.name,
        phase: String(line['workload']),
        server: ep.kind,
        round,
        ops: Number(line['ops']),
        bytes: Number(line['bytes']),
        seconds: Number(line['seconds']),
        verify: String(line['verify']),
      };
      // A per-call latency line becomes two rows, its p50 and its p99 (report.ts: lower is better).
      if (line['p50_us'] !== undefined) {
        for (const q of ['p50', 'p99'] as const) out.push({ ...s, phase: `${s.phase} ${q}`, seconds: Number(line[`${q}_us`]) / 1e6 });
      } else {
        out.push(s);
      }
    }
  }
  if (pid) {
    const cpu = cpuSeconds(pid) - cpu0;
    const rss = peakRssMiB(pid);
    overallPeak.set(pid, Math.max(overallPeak.get(pid) ?? 0, rss));
    for (const s of out) {
      s.unionCpuSec = cpu;
      s.unionPeakRssMiB = rss;
    }
  }
  for (const s of out) {
    const line = JSON.stringify(s);
    process.stdout.write(`${line}\n`);
    fs.appendFileSync(rawFile, `${line}\n`);
  }
  return out;
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  cleanup();
  process.exit(1);
});
