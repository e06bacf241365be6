/**
 * `sudo npm run bench:scale`: issue 14's scale case. A lower of SCALE_OBJECTS files (default
 * 10,000,000, in SCALE_DIRS = 1,000 directories, on a tmpfs) is walked whole through libnfs's
 * `nfs-ls -R` (READDIRPLUS), so the union gives every object an id and an identity record.
 * Measured: the walk's time, union-nfsd's RSS sampled each second and its peak (VmHWM), the
 * state directory's size; then the time from start to serving (the ready line, and an nfs-ls
 * answer) after a SIGKILL and after a clean stop, and that handles taken before still name
 * the same objects. Not part of CI (it needs about 12 GiB of RAM for the tmpfs and 20+ min).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { buildClient, cleanup, mounts, repo, run, say, startUnion, tmpDirs, which } from './harness.js';
import { NfsView } from '../test/helpers/nfs-view.js';
import { NFS_PROGRAM, NFSPROC3 } from '../src/nfs3/constants.js';
import { IdentityStore } from '../src/vfs/store/index.js';
import { XATTR_MODE } from '../src/vfs/xattr.js';

const OBJECTS = Number(process.env['SCALE_OBJECTS'] ?? 10_000_000);
const DIRS = Number(process.env['SCALE_DIRS'] ?? 1000);
const PER_DIR = Math.ceil(OBJECTS / DIRS);

function rss(pid: number): { rss: number; hwm: number } {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(s)?.[1] ?? NaN) / 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

function duMiB(p: string): number {
  return Number(run('du', ['-sk', p]).split('\t')[0]) / 1024;
}

/** `nfs-ls -R` of the export: the entries it printed, and the seconds it took. */
function walk(port: number, onTick: () => void): Promise<{ entries: number; seconds: number }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const p = spawn('nfs-ls', ['-R', `nfs://127.0.0.1/union?nfsport=${port}&mountport=${port}`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let lines = 0;
    p.stdout.on('data', (d: Buffer) => { for (const c of d) if (c === 10) lines++; });
    const tick = setInterval(onTick, 1000);
    p.on('error', reject);
    p.on('exit', (code) => {
      clearInterval(tick);
      if (code !== 0) reject(new Error(`nfs-ls -R exited ${code}`));
      else resolve({ entries: lines, seconds: (Date.now() - t0) / 1000 });
    });
  });
}

async function fileid(view: NfsView, fh: Buffer): Promise<bigint> {
  const r = await view.c.ok(NFS_PROGRAM, 3, NFSPROC3.GETATTR, (w) => w.opaque(fh));
  const stat = r.uint32();
  if (stat !== 0) throw new Error(`GETATTR: nfsstat3 ${stat}`);
  for (let i = 0; i < 5; i++) r.uint32(); // type, mode, nlink, uid, gid
  r.uint64(); r.uint64(); r.uint32(); r.uint32(); r.uint64(); // size, used, rdev, fsid
  return r.uint64();
}

async function main(): Promise<void> {
  if (!which('nfs-ls')) throw new Error('nfs-ls missing (apt-get install libnfs-utils)');
  if (process.getuid?.() !== 0) throw new Error('run as root (it mounts a tmpfs)');
  const client = buildClient();
  const base = fs.mkdtempSync('/var/tmp/unfs-scale-');
  tmpDirs.push(base);
  const lower = path.join(base, 'lower');
  fs.mkdirSync(lower);
  run('mount', ['-t', 'tmpfs', '-o', `size=4g,nr_inodes=${OBJECTS + DIRS + 1000}`, 'scale', lower]);
  mounts.push(lower);
  let t0 = Date.now();
  for (let d = 0; d < DIRS; d++) {
    const dir = path.join(lower, `d${String(d).padStart(5, '0')}`);
    fs.mkdirSync(dir);
    run(client, ['gen-files', dir, 'f%07ld', '0', String(Math.min(PER_DIR, OBJECTS - d * PER_DIR)), '1', '0'], { timeoutMs: 600_000 });
  }
  say(`generated ${OBJECTS} files in ${DIRS} directories in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  const args = ['--lower', lower, '--upper', path.join(base, 'upper'), '--workdir', path.join(base, 'work'),
    '--clients', '127.0.0.0/8(rw,no_root_squash,insecure)'];
  fs.mkdirSync(path.join(base, 'upper'));
  fs.mkdirSync(path.join(base, 'work'));
  let u = await startUnion(args, 'scale', base);
  const atRest = rss(u.pid).rss;
  const samples: { t: number; rss: number }[] = [];
  t0 = Date.now();
  const w = await walk(u.nfs, () => {
    const r = rss(u.pid).rss;
    samples.push({ t: (Date.now() - t0) / 1000, rss: r });
    if (samples.length % 30 === 0) say(`walk ${samples.length} s: RSS ${r.toFixed(0)} MiB`);
  });
  const peak = rss(u.pid).hwm;
  if (w.entries < OBJECTS) throw new Error(`the walk listed ${w.entries} entries, fewer than ${OBJECTS}`);
  const state = path.join(base, 'work/union-nfsd');
  const lines = [
    `${OBJECTS.toLocaleString('en')} objects in ${DIRS} directories, walked with nfs-ls -R (READDIRPLUS): ${w.entries.toLocaleString('en')} entries in ${w.seconds.toFixed(0)} s (${Math.round(w.entries / w.seconds).toLocaleString('en')}/s)`,
    `RSS: ${atRest.toFixed(0)} MiB at rest, peak (VmHWM) ${peak.toFixed(0)} MiB, ${rss(u.pid).rss.toFixed(0)} MiB after the walk`,
  ];

  // handles of a few objects, checked after each restart
  let view = await NfsView.open(u.nfs);
  const probes: { p: string; fh: Buffer; id: bigint }[] = [];
  for (const d of [0, Math.floor(DIRS / 2), DIRS - 1]) {
    const p = `/d${String(d).padStart(5, '0')}/f${String(PER_DIR - 1).padStart(7, '0')}`;
    const fh = (await view.lookup(p))!;
    probes.push({ p, fh, id: await fileid(view, fh) });
  }
  view.c.close();

  for (const how of ['SIGKILL', 'SIGTERM'] as const) {
    const exited = new Promise((r) => u.child.once('exit', r));
    u.child.kill(how);
    await exited;
    lines.push(`state directory after ${how === 'SIGKILL' ? 'the walk' : 'a clean stop'}: ${duMiB(state).toFixed(0)} MiB`);
    t0 = Date.now();
    u = await startUnion(args, 'scale', base);
    const ready = (Date.now() - t0) / 1000;
    const deep = `nfs://127.0.0.1/union/d${String(DIRS - 1).padStart(5, '0')}?nfsport=${u.nfs}&mountport=${u.nfs}`;
    if (!run('nfs-ls', [deep], { timeoutMs: 60_000 }).includes('f0000000')) throw new Error('nfs-ls after restart did not list');
    const serving = (Date.now() - t0) / 1000;
    view = await NfsView.open(u.nfs);
    for (const pr of probes) {
      const id = await fileid(view, pr.fh);
      if (id !== pr.id) throw new Error(`${pr.p}: fileid ${id} after restart, ${pr.id} before`);
    }
    view.c.close();
    lines.push(`restart after ${how}: ready ${ready.toFixed(2)} s, serving (nfs-ls of a directory answered) ${serving.toFixed(2)} s; ${probes.length} handles from before name the same objects; RSS ${rss(u.pid).rss.toFixed(0)} MiB`);
  }
  // where a restart's time goes: the identity store's open; and the walk of the lowers'
  // overlay xattrs that a server without the xattr addon makes at start (vfs/xattr.ts)
  const stopped = new Promise((r) => u.child.once('exit', r));
  u.child.kill('SIGTERM');
  await stopped;
  t0 = Date.now();
  const store = new IdentityStore(state);
  store.open();
  const openMs = Date.now() - t0;
  await store.close();
  t0 = Date.now();
  run('getfattr', ['-R', '-P', '--absolute-names', '-d', '-m', '^(trusted|user)\\.overlay\\.', lower], { timeoutMs: 600_000 });
  lines.push(`of a restart: identity store open ${openMs} ms (xattr marks read by ${XATTR_MODE}); a getfattr -R walk of the lower, which a server without the xattr addon adds, ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const out = lines.join('\n');
  process.stdout.write(`${out}\n`);
  const csv = samples.map((s) => `${s.t.toFixed(0)},${s.rss.toFixed(1)}`).join('\n');
  fs.mkdirSync(path.join(repo, 'bench/results/raw'), { recursive: true });
  fs.writeFileSync(path.join(repo, 'bench/results/scale.txt'), `${out}\n`);
  fs.writeFileSync(path.join(repo, 'bench/results/raw/scale-rss.csv'), `seconds,rss_mib\n${csv}\n`);
  say('done');
}

main().then(() => cleanup(), (err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  cleanup();
  process.exit(1);
});
