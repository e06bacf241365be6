/**
 * `sudo npm run bench:fleet`: a testbed booting from one server (issue 13). N client hosts,
 * each in a network namespace with an address of its own (198.18.i.2), each with a writable
 * view of one base: a 100,000-file lower plus a small top layer.
 *
 *   union     one union-nfsd process, one export with {client} in its upper: a union per client
 *   overlay   nfs-ganesha (FSAL VFS, default settings: attributes cached) exporting N kernel
 *             overlayfs mounts of the same lowers, one per client, each with its own upper
 *
 * Every client runs the libnfs `boot` workload (bench/client/nfsbench.c): reads READS distinct
 * files of the base, checking their bytes, then writes WRITES new 4 KiB files. The clients come
 * in three waves, 1, then up to 10, then up to N, so the server's RSS is read with 1, 10 and N
 * unions in use (and the first client, alone with one request in flight, gives the latency of
 * one file read, p50 and p99); then all N boot again at once, the throughput figure. Servers take turns per
 * round (the order rotates) and start from empty uppers each time.
 *
 * Environment: FLEET_CLIENTS (default 50), FLEET_DIRS x FLEET_PER_DIR base files (100 x 1000),
 * FLEET_READS (2000), FLEET_WRITES (100), BENCH_ROUNDS (default 1), BENCH_TMP (base dir),
 * BENCH_NO_RESULTS=1 (do not write bench/results/fleet.md).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  buildClient, children, cleanup, mounts, repo, run, say, startGanesha, startRpcbind, startUnion,
  tmpDirs,
} from './harness.js';

const N = Number(process.env['FLEET_CLIENTS'] ?? 50);
const DIRS = Number(process.env['FLEET_DIRS'] ?? 100);
const PER_DIR = Number(process.env['FLEET_PER_DIR'] ?? 1000);
const READS = Number(process.env['FLEET_READS'] ?? 2000);
const WRITES = Number(process.env['FLEET_WRITES'] ?? 100);
const ROUNDS = Math.max(1, Number(process.env['BENCH_ROUNDS'] ?? 1) || 1);
const WAVES = [[1, 1], [2, Math.min(10, N)], [Math.min(10, N) + 1, N]].filter(([a, b]) => a! <= b!) as [number, number][];

type Kind = 'union' | 'overlay';

interface Host { ns: string; client: string; server: string }

function makeHosts(n: number): Host[] {
  const tag = (process.pid % 10000).toString(36);
  const hosts: Host[] = [];
  for (let i = 1; i <= n; i++) {
    const ns = `fleet-${tag}-${i}`;
    const outside = `fl${tag}x${i}`;
    run('ip', ['netns', 'add', ns]);
    hosts.push({ ns, client: `198.18.${i}.2`, server: `198.18.${i}.1` });
    run('ip', ['link', 'add', outside, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    run('ip', ['addr', 'add', `198.18.${i}.1/24`, 'dev', outside]);
    run('ip', ['link', 'set', outside, 'up']);
    run('ip', ['-n', ns, 'addr', 'add', `198.18.${i}.2/24`, 'dev', 'eth0']);
    run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }
  process.on('exit', () => { for (const h of hosts) run('ip', ['netns', 'del', h.ns], { allowFail: true }); });
  return hosts;
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

interface Server { kind: Kind; pid: number; url(i: number, h: Host): string; stop(): Promise<void> }

async function startUnionFleet(lowers: string[], dir: string): Promise<Server> {
  const nodes = path.join(dir, 'union-nodes');
  fs.mkdirSync(nodes, { recursive: true });
  const cfg = path.join(dir, 'fleet.yaml');
  fs.writeFileSync(cfg, `exports:
  - path: /fleet
    lower: [${lowers.join(', ')}]
    upper: ${nodes}/{client}/upper
    workdir: ${nodes}/{client}/work
    clients: "198.18.0.0/16(rw,no_root_squash)"
`);
  const u = await startUnion(['--config', cfg], 'fleet', dir, '0.0.0.0');
  return {
    kind: 'union', pid: u.pid,
    url: (_i, h) => `nfs://${h.server}/fleet?nfsport=${u.nfs}&mountport=${u.mnt}&version=3`,
    stop: () => stopChild(u.child),
  };
}

async function startGaneshaFleet(lowers: string[], dir: string): Promise<Server> {
  const merged: string[] = [];
  for (let i = 1; i <= N; i++) {
    const d = path.join(dir, 'ganesha-nodes', `node${i}`);
    for (const s of ['upper', 'work', 'merged']) fs.mkdirSync(path.join(d, s), { recursive: true });
    run('mount', ['-t', 'overlay', 'overlay', '-o',
      `lowerdir=${lowers.join(':')},upperdir=${d}/upper,workdir=${d}/work,index=on,nfs_export=on`, `${d}/merged`]);
    mounts.push(`${d}/merged`);
    merged.push(`${d}/merged`);
  }
  // ganesha as its users run it: default attribute caching, one export per node.
  const g = await startGanesha(merged.map((m, i) => `EXPORT { Export_Id = ${i + 1}; Path = ${m}; Pseudo = /node${i + 1}; ` +
    'Access_Type = RW; Squash = None; Protocols = 3; Transports = TCP; SecType = sys; FSAL { Name = VFS; } }\n').join(''), dir);
  return {
    kind: 'overlay', pid: g.child.pid!,
    // NFSv3 clients of ganesha mount the export's Path (Pseudo is the NFSv4 name).
    url: (i, h) => `nfs://${h.server}${merged[i - 1]!}?nfsport=${g.nfs}&mountport=${g.mnt}&version=3`,
    async stop() {
      await stopChild(g.child);
      for (const m of merged) {
        run('umount', [m], { allowFail: true });
        mounts.splice(mounts.indexOf(m), 1);
      }
    },
  };
}

function stopChild(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
    p.once('exit', () => {
      clearTimeout(t);
      children.delete(p);
      resolve();
    });
    p.kill('SIGTERM');
  });
}

interface Boot { ops: number; verify: string; read_p50_us: number; read_p99_us: number }

/** Clients first..last boot at once; resolves to total operations, the wall time, and each client's line. */
async function wave(client: string, srv: Server, hosts: Host[], first: number, last: number, seedBase: number): Promise<{ ops: number; seconds: number; boots: Boot[] }> {
  const t0 = process.hrtime.bigint();
  const runs = [];
  for (let i = first; i <= last; i++) {
    const h = hosts[i - 1]!;
    runs.push(new Promise<Boot>((resolve, reject) => {
      const p = spawn('ip', ['netns', 'exec', h.ns, client, 'boot', srv.url(i, h), String(DIRS), String(PER_DIR), String(READS), String(WRITES), String(seedBase + i)],
        { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      p.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const timer = setTimeout(() => p.kill('SIGKILL'), 600_000);
      p.once('close', (code) => {
        clearTimeout(timer);
        const line = out.split('\n').find((l) => l.startsWith('{'));
        const r = line ? JSON.parse(line) as Boot : undefined;
        if (code !== 0 || r === undefined || r.verify !== 'ok') reject(new Error(`${srv.kind} client ${i}: exit ${code}, ${r?.verify ?? ''} ${err.trim().slice(0, 300)}`));
        else resolve(r);
      });
    }));
  }
  const boots = await Promise.all(runs);
  return { ops: boots.reduce((a, b) => a + b.ops, 0), seconds: Number(process.hrtime.bigint() - t0) / 1e9, boots };
}

interface Result {
  kind: Kind; round: number; rss: number[]; opsPerSec: number;
  /** The first client, alone on the server, one request in flight: one file read, p50 and p99. */
  p50: number; p99: number;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root: network namespaces, overlayfs mounts and ganesha need it');
  const client = buildClient();
  const tmp = fs.mkdtempSync(path.join(process.env['BENCH_TMP'] ?? os.tmpdir(), 'union-nfsd-fleet-'));
  tmpDirs.push(tmp);
  const data = path.join(tmp, 'fs');
  fs.mkdirSync(data);
  run('mount', ['-t', 'tmpfs', '-o', 'size=4g,mode=0755', 'union-nfsd-fleet', data]);
  mounts.push(data);
  const os_ = path.join(data, 'lower-os');
  const app = path.join(data, 'lower-app');
  say(`generating a ${DIRS * PER_DIR}-file base`);
  for (let d = 0; d < DIRS; d++) {
    const dir = path.join(os_, 'base', `d${String(d).padStart(3, '0')}`);
    fs.mkdirSync(dir, { recursive: true });
    run(client, ['gen-files', dir, 'f%04d', '0', String(PER_DIR), '1', '2048']);
  }
  fs.mkdirSync(path.join(app, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(app, 'etc', 'hostname'), 'fleet\n');
  const lowers = [app, os_];
  await startRpcbind();
  const hosts = makeHosts(N);
  say(`${N} client hosts up`);

  const results: Result[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const order: Kind[] = round % 2 === 1 ? ['union', 'overlay'] : ['overlay', 'union'];
    for (const kind of order) {
      const dir = path.join(data, `${kind}-r${round}`);
      fs.mkdirSync(dir);
      const srv = kind === 'union' ? await startUnionFleet(lowers, dir) : await startGaneshaFleet(lowers, dir);
      const rss = [rssMiB(srv.pid)];
      let alone: Boot | undefined;
      for (const [first, last] of WAVES) {
        const w = await wave(client, srv, hosts, first, last, 1000 * round);
        alone ??= w.boots[0];
        rss.push(rssMiB(srv.pid));
      }
      const all = await wave(client, srv, hosts, 1, N, 1000 * round + 500);
      const r = { kind, round, rss, opsPerSec: all.ops / all.seconds, p50: alone?.read_p50_us ?? NaN, p99: alone?.read_p99_us ?? NaN };
      say(`${kind} round ${round}: RSS ${rss.map((x) => x.toFixed(0)).join(' / ')} MiB; one client alone: file read p50 ${r.p50} us, p99 ${r.p99} us; ${N} clients ${r.opsPerSec.toFixed(0)} ops/s`);
      results.push(r);
      await srv.stop();
      run('rm', ['-rf', dir]);
    }
  }
  const md = report(results);
  process.stdout.write(`\n${md}\n`);
  if (process.env['BENCH_NO_RESULTS'] !== '1') {
    fs.writeFileSync(path.join(repo, 'bench/results/fleet.md'), md);
    say('wrote bench/results/fleet.md');
  }
  cleanup();
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

function report(results: Result[]): string {
  const of = (k: Kind) => results.filter((r) => r.kind === k);
  const row = (k: Kind, label: string) => {
    const rs = of(k);
    const rss = (i: number) => median(rs.map((r) => r.rss[i]!)).toFixed(0);
    const last = WAVES.length;
    const perUnion = median(rs.map((r) => (r.rss[last]! - r.rss[1]!) / Math.max(1, N - 1)));
    const us = (f: (r: Result) => number) => median(rs.map(f)).toFixed(0);
    return `| ${label} | ${rss(0)} | ${WAVES.map((_, i) => rss(i + 1)).join(' | ')} | ${perUnion.toFixed(2)} | ${us((r) => r.p50)} / ${us((r) => r.p99)} | ${median(rs.map((r) => r.opsPerSec)).toFixed(0)} |`;
  };
  const latRatio = median(of('union').map((u) => (of('overlay').find((o) => o.round === u.round)?.p50 ?? NaN) / u.p50));
  const ratios = of('union').map((u) => u.opsPerSec / (of('overlay').find((o) => o.round === u.round)?.opsPerSec ?? NaN));
  const m = (k: string, v: string) => `- ${k}: ${v}`;
  return [
    `## Fleet: ${N} clients, a union each over one ${DIRS * PER_DIR}-file base`,
    '',
    m('command', `${Object.entries(process.env).filter(([k]) => k.startsWith('FLEET_') || k === 'BENCH_ROUNDS').map(([k, v]) => `${k}=${v} `).join('')}sudo npm run bench:fleet`),
    m('date', new Date().toISOString()),
    m('machine', `${os.cpus().length} cores, ${Math.round(os.totalmem() / 1024 ** 3)} GiB, Linux ${os.release()}, Node ${process.version}, ganesha ${run('dpkg-query', ['-W', '-f=${Version}', 'nfs-ganesha'], { allowFail: true }) || '?'}`),
    m('workload', `each client reads ${READS} distinct base files (2 KiB, checked) then writes ${WRITES} new 4 KiB files, one request in flight; waves of ${WAVES.map(([a, b]) => b - a + 1).join(', ')} clients, then all ${N} at once (throughput)`),
    m('rounds', `${ROUNDS} (median shown; servers alternate first)`),
    '',
    `| server | RSS idle (MiB) | ${WAVES.map(([, b]) => `RSS at ${b} unions`).join(' | ')} | extra MiB per union (1 -> ${N}) | one client alone, file read p50 / p99 (us) | ${N} clients, ops/s |`,
    `| --- | --- | ${WAVES.map(() => '---').join(' | ')} | --- | --- | --- |`,
    row('union', 'union-nfsd, one process, {client} export'),
    row('overlay', `nfs-ganesha, ${N} kernel overlayfs exports`),
    '',
    `Throughput ratio union-nfsd / ganesha (per round): ${ratios.map((r) => `${r.toFixed(2)}x`).join(', ')}; median ${median(ratios).toFixed(2)}x.`,
    `One client alone (one request in flight; a file read = LOOKUPs, GETATTR/ACCESS and READ as libnfs's open issues them): p50 speed ratio union-nfsd / ganesha ${latRatio.toFixed(2)}x (their p50 over ours; above 1.0 union-nfsd is faster).`,
    'ganesha\'s RSS leaves out what the kernel holds for its overlayfs mounts (dentries, inodes, page cache).',
    '',
  ].join('\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`fleet bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  cleanup();
  process.exit(1);
});
