/**
 * What the benchmarks share: running commands and children that are cleaned up on exit or
 * Ctrl-C (processes, mounts, temporary trees), free ports, the libnfs client build, rpcbind
 * for ganesha, starting union-nfsd as its bin runs, and /proc accounting.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/bench/harness.js -> repository root */
export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

// ---------------------------------------------------------------- small helpers

export function say(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

export function run(cmd: string, args: string[], opts: { allowFail?: boolean; timeoutMs?: number } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: opts.timeoutMs ?? 120_000 });
  if ((r.status !== 0 || r.error) && !opts.allowFail) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.error?.message}): ${r.stderr}`);
  }
  return r.stdout ?? '';
}

export function which(bin: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).status === 0;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export function canConnect(opts: net.NetConnectOpts): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(opts);
    const done = (ok: boolean): void => {
      c.destroy();
      resolve(ok);
    };
    c.once('connect', () => done(true));
    c.once('error', () => done(false));
    c.setTimeout(1000, () => done(false));
  });
}

export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await sleep(100);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

// ---------------------------------------------------------------- cleanup (also on Ctrl-C)

export const children = new Set<ChildProcess>();
export const mounts: string[] = [];
/** Removed at cleanup (the run's temporary tree). */
export const tmpDirs: string[] = [];
/** Machine settings the run changed, put back at cleanup. */
const restores: (() => void)[] = [];
let cleaned = false;

function killTree(p: ChildProcess, graceMs: number): void {
  if (p.exitCode !== null || p.signalCode !== null || p.pid === undefined) return;
  try {
    p.kill('SIGTERM');
  } catch {
    return;
  }
  const end = Date.now() + graceMs;
  while (Date.now() < end) {
    try {
      process.kill(p.pid, 0);
    } catch {
      return;
    }
    spawnSync('sleep', ['0.1']);
  }
  try {
    p.kill('SIGKILL');
  } catch {
    /* already gone */
  }
}

export function cleanup(): void {
  if (cleaned) return;
  cleaned = true;
  for (const c of [...children].reverse()) killTree(c, 5000);
  for (const m of [...mounts].reverse()) {
    if (spawnSync('umount', [m]).status !== 0) spawnSync('umount', ['-l', m]);
  }
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
  for (const r of [...restores].reverse()) r();
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    say(`${sig}: cleaning up`);
    cleanup();
    process.exit(130);
  });
}
process.on('exit', cleanup);

const REPORTING_DELAY = '/sys/module/page_reporting/parameters/min_free_ms';

/**
 * A virtual machine with free page reporting (virtio-balloon) hands memory the guest frees
 * back to its host, and the next write into it pays a host fault per page: on this machine a
 * 1 GiB copy into tmpfs took 0.2 s into pages freed a moment before and up to 2.7 s once
 * they had been reported, for the same system calls, whichever server made them. Where the
 * guest kernel has the knob (`min_free_ms`, this machine's), memory freed less than 10 s ago
 * is kept for the run, so that the server timed next fills what the last one freed; the
 * setting is put back at cleanup. Elsewhere nothing changes.
 */
export function holdFreedMemory(): void {
  let was: string;
  try {
    was = fs.readFileSync(REPORTING_DELAY, 'utf8').trim();
    fs.writeFileSync(REPORTING_DELAY, '10000');
  } catch {
    return;
  }
  say(`free page reporting: memory freed less than 10 s ago stays with this VM for the run (${REPORTING_DELAY} ${was} -> 10000)`);
  restores.push(() => fs.writeFileSync(REPORTING_DELAY, was));
}

export function buildClient(): string {
  const src = path.join(repo, 'bench/client/nfsbench.c');
  const hash = createHash('sha256').update(fs.readFileSync(src)).digest('hex').slice(0, 12);
  const dir = path.join(repo, '.cache/bench');
  const bin = path.join(dir, `nfsbench-${hash}`);
  if (!fs.existsSync(bin)) {
    fs.mkdirSync(dir, { recursive: true });
    say(`building client -> ${path.relative(repo, bin)}`);
    run('gcc', ['-O2', '-Wall', '-o', `${bin}.tmp`, src, '-lnfs']);
    fs.renameSync(`${bin}.tmp`, bin);
    for (const old of fs.readdirSync(dir)) { // builds of older sources
      if (old.startsWith('nfsbench-') && path.join(dir, old) !== bin) fs.rmSync(path.join(dir, old), { force: true });
    }
  }
  return bin;
}

export async function startRpcbind(): Promise<void> {
  if (await canConnect({ path: '/run/rpcbind.sock' })) {
    say('using the rpcbind already listening on /run/rpcbind.sock');
    return;
  }
  // own network namespace: ganesha registers through /run/rpcbind.sock, port 111 never opens
  const p = spawn('unshare', ['--net', 'rpcbind', '-f', '-w'], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(p);
  await waitFor('rpcbind', () => canConnect({ path: '/run/rpcbind.sock' }), 10_000);
}

/**
 * Starts nfs-ganesha (NFSv3 over TCP, no NLM or RQUOTA) with `exports` (its EXPORT blocks) on
 * two free ports, logging to DIR/ganesha.log; resolves once its NFS port accepts connections.
 */
export async function startGanesha(exports: string, dir: string, timeoutMs = 60_000): Promise<{ nfs: number; mnt: number; child: ChildProcess }> {
  const nfs = await freePort();
  let mnt = await freePort();
  while (mnt === nfs) mnt = await freePort();
  const conf =
    `NFS_CORE_PARAM { NFS_Port = ${nfs}; MNT_Port = ${mnt}; Protocols = 3; Enable_NLM = false; Enable_RQUOTA = false; }\n` +
    'NFSV4 { Graceless = true; }\nLOG { Default_Log_Level = WARN; }\n' + exports;
  fs.writeFileSync(path.join(dir, 'ganesha.conf'), conf);
  const p = spawn('ganesha.nfsd', ['-F', '-L', path.join(dir, 'ganesha.log'), '-f', path.join(dir, 'ganesha.conf'),
    '-p', path.join(dir, 'ganesha.pid'), '-N', 'NIV_WARN'], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(p);
  let exited = false;
  p.once('exit', () => (exited = true));
  await waitFor('ganesha', async () => {
    if (exited) throw new Error(`ganesha exited; see ${path.join(dir, 'ganesha.log')}`);
    return canConnect({ host: '127.0.0.1', port: nfs });
  }, timeoutMs);
  return { nfs, mnt, child: p };
}

/**
 * Starts union-nfsd with `serverArgs` (layers or --config ...) as its bin would run it, on free
 * ports of `host`, logging to DIR/union-TAG.log; resolves once it printed its ready line.
 * `cli` is the build to run (default: this checkout's dist/src/cli.js).
 */
export async function startUnion(serverArgs: string[], tag: string, dir: string, host = '127.0.0.1',
  cli = path.join(repo, 'dist/src/cli.js')): Promise<{ nfs: number; mnt: number; metrics?: number; pid: number; child: ChildProcess }> {
  const nfsPort = await freePort();
  let mntPort = await freePort();
  while (mntPort === nfsPort) mntPort = await freePort();
  // run it as its bin runs: with the environment and node options of its
  // `#!/usr/bin/env -S [VAR=value ...] node [options]` line
  const shebang = /^#!\S*env -S ((?:\w+=\S+ )*)node(.*)$/.exec(fs.readFileSync(cli, 'utf8').split('\n', 1)[0]!);
  const binEnv = Object.fromEntries((shebang?.[1] ?? '').split(' ').filter(Boolean).map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]));
  const nodeArgs: string[] = (shebang?.[2] ?? '').split(' ').filter(Boolean);
  nodeArgs.push(...(process.env['BENCH_NODE_ARGS'] ?? '').split(' ').filter(Boolean)); // e.g. --heap-prof
  const cpuProfDir = process.env['BENCH_CPU_PROF'];
  if (cpuProfDir) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`, `--cpu-prof-name=union-${tag}-${Date.now()}.cpuprofile`);
  const args = [...nodeArgs, cli, ...serverArgs,
    '--host', host, '--port', String(nfsPort), '--mount-port', String(mntPort), '--no-portmap'];
  const log = fs.openSync(path.join(dir, `union-${tag}.log`), 'a');
  const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', log], env: { ...process.env, ...binEnv, UNION_NFSD_LOG: process.env['UNION_NFSD_LOG'] ?? 'warn' } });
  children.add(p);
  const ready = await new Promise<{ nfs: number; mnt: number; metrics?: number }>((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error(`union-nfsd (${tag}) not ready after 30 s; see ${dir}/union-${tag}.log`)), 30_000);
    p.stdout?.on('data', (d: Buffer) => {
      if (buf.length > 65536) return; // keep draining, stop keeping
      buf += d.toString();
      const m = /union-nfsd ready nfs=(\d+) mount=(\d+) portmap=\S+(?: metrics=(\d+))?\n/.exec(buf);
      if (m) {
        clearTimeout(t);
        resolve({ nfs: Number(m[1]), mnt: Number(m[2]), ...(m[3] !== undefined && { metrics: Number(m[3]) }) });
      }
    });
    p.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`union-nfsd (${tag}) exited with ${code}; see ${dir}/union-${tag}.log`));
    });
  });
  return { ...ready, pid: p.pid as number, child: p };
}

// ---------------------------------------------------------------- /proc accounting

export const CLK_TCK = Number(run('getconf', ['CLK_TCK']).trim()) || 100;

export function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK; // fields 14, 15: utime, stime
}

export function peakRssMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

export function resetPeak(pid: number): void {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5'); // resets VmHWM to the current RSS
  } catch {
    /* older kernels: the peak stays cumulative */
  }
}
