/**
 * What a stable reply promises is on disk before the reply leaves (issue 12, the durability
 * part), read from the server's own system calls with strace: a copy-up fsyncs its data
 * before renaming it into place (as overlayfs does); COMMIT, and a FILE_SYNC WRITE, fsync the
 * file, every upper directory it is reached by and the identity log before the reply is
 * written; CREATE, REMOVE, RENAME, SETATTR and LINK fsync the directories whose entries they
 * changed (the parents of what they copied up too) and the objects they made or changed. (Whether a
 * power loss then keeps them is the kernel's promise for fsync: crash-loop.test.ts cuts the
 * power of an ext4 disk, where one fsync commits the whole journal; this test shows each
 * directory is asked for, as a file system without one journal needs.)
 */
import test, { type ExecutionContext } from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { gate, missing } from './libnfs/env.js';
import { cleanupTemp, layerFingerprint, makeTemp } from './libnfs/oracle.js';
import { INSECURE_LOOPBACK, TestServer } from './libnfs/server.js';
import { RpcClient } from '../helpers/rpc-client.js';
import { MOUNT_PROGRAM, MOUNTPROC3 } from '../../src/mount/program.js';
import { NFS_PROGRAM, NFSPROC3 } from '../../src/nfs3/constants.js';

const hasStrace = spawnSync('sh', ['-c', 'command -v strace'], { stdio: 'ignore' }).status === 0;

interface Sys { line: number; call: string; args: string; result: string }

/** strace -f lines: "PID call(args) = result", with resumed calls joined. */
function parse(log: string): Sys[] {
  const out: Sys[] = [];
  const pending = new Map<string, string>();
  log.split('\n').forEach((l, line) => {
    const m = /^(\d+)\s+(.*)$/.exec(l);
    if (!m) return;
    const [, pid, rest] = m as unknown as [string, string, string];
    let text = rest;
    const unfinished = /^(.*) <unfinished \.\.\.>$/.exec(text);
    if (unfinished) { pending.set(pid, unfinished[1]!); return; }
    const resumed = /^<\.\.\. \w+ resumed>(.*)$/.exec(text);
    if (resumed) { text = (pending.get(pid) ?? '') + resumed[1]!; pending.delete(pid); }
    const c = /^(\w+)\((.*)\)\s+=\s+(-?\d+)/.exec(text);
    if (c) out.push({ line, call: c[1]!, args: c[2]!, result: c[3]! });
  });
  return out;
}

/**
 * A server over `lower` (upper and work under base) with strace attached (those calls), a
 * client connected and the export mounted.
 */
async function tracedServer(t: ExecutionContext, base: string, lower: string, calls: string) {
  for (const d of ['upper', 'work']) fs.mkdirSync(path.join(base, d));
  // its own strace below: a process has one tracer
  const server = new TestServer({ lowers: [lower], upper: path.join(base, 'upper'), workdir: path.join(base, 'work'), clients: INSECURE_LOOPBACK, traceExec: false });
  t.teardown(() => server.stop());
  const ready = await server.start();
  const log = path.join(base, 'strace.log');
  // -y: each fd argument is shown with the path it stands for, `fsync(23</tmp/x/upper/a>)`: the
  // server opens layer paths through /proc/self/fd (vfs/beneath.ts), never by their full name
  const strace = spawn('strace', ['-f', '-qq', '-y', '-o', log, '-e', `trace=${calls}`, '-p', String(server.pid)], { stdio: 'ignore' });
  t.teardown(() => { strace.kill('SIGINT'); });
  await new Promise((r) => setTimeout(r, 1500));
  const c = await RpcClient.connect('tcp', '127.0.0.1', ready.nfsPort, { timeoutMs: 30_000 });
  t.teardown(() => c.close());
  const mnt = await c.ok(MOUNT_PROGRAM, 3, MOUNTPROC3.MNT, (w) => w.string('/union'));
  t.is(mnt.enum(), 0);
  const stop = async (): Promise<void> => {
    strace.kill('SIGINT');
    await new Promise((r) => strace.once('exit', r));
  };
  return { c, root: Buffer.from(mnt.opaque(64)), log, stop };
}

/** Was the object at path (a suffix, e.g. '/upper/a') fsynced within `calls`? */
function fsynced(calls: Sys[], suffix: string, call = 'fsync'): boolean {
  return calls.some((s) => s.call === call && s.args.endsWith(`${suffix}>`));
}

test('stable replies: copy-up fsyncs before its rename; COMMIT and FILE_SYNC fsync file, directories and identity log before replying', async (t) => {
  if (!gate(t, 'durability e2e', [...missing({ root: true, server: true }), ...(hasStrace ? [] : ['strace'])])) return;
  t.timeout(120_000);
  const base = makeTemp('unfs-durable-');
  t.teardown(() => cleanupTemp(base));
  const lower = path.join(base, 'lower');
  fs.mkdirSync(path.join(lower, 'a/b'), { recursive: true });
  fs.writeFileSync(path.join(lower, 'a/b/f'), Buffer.alloc(1 << 20, 1));
  const lowerBefore = layerFingerprint(lower);
  const { c, root, log, stop } = await tracedServer(t, base, lower, 'openat,fsync,fdatasync,rename,renameat,renameat2,writev,write');
  let fh = root;
  for (const n of ['a', 'b', 'f']) {
    const r = await c.ok(NFS_PROGRAM, 3, NFSPROC3.LOOKUP, (w) => w.opaque(fh).string(n));
    t.is(r.uint32(), 0);
    fh = Buffer.from(r.opaque(64));
  }
  const file = fh;
  const write = async (how: number): Promise<void> => {
    const r = await c.ok(NFS_PROGRAM, 3, NFSPROC3.WRITE, (w) => w.opaque(file).uint64(0n).uint32(5).enum(how).opaque(Buffer.from('hello')));
    t.is(r.uint32(), 0);
  };
  await write(0); // UNSTABLE: copies f up
  const commit = await c.ok(NFS_PROGRAM, 3, NFSPROC3.COMMIT, (w) => w.opaque(file).uint64(0n).uint32(0));
  t.is(commit.uint32(), 0);
  await new Promise((r) => setTimeout(r, 300));
  const afterCommit = fs.readFileSync(log, 'utf8');
  await write(2); // FILE_SYNC
  await new Promise((r) => setTimeout(r, 300));
  await stop();
  const all = parse(fs.readFileSync(log, 'utf8'));
  const firstPart = parse(afterCommit).length;

  // copy-up: the temporary's data is fsynced before the rename that puts it at upper/a/b/f
  // (its target is "/proc/self/fd/<upper/a/b>/f": the upper directory's fd and the name)
  const rename = all.find((s) => s.call.startsWith('rename') && /\/union-nfsd\/tmp\/[^"]*", .*"\/proc\/self\/fd\/\d+\/f"$/.test(s.args));
  t.truthy(rename, 'the copy-up rename was seen');
  const tmp = /"([^"]*\/union-nfsd\/tmp\/[^"]*)"/.exec(rename!.args)?.[1];
  t.truthy(tmp, 'the copy-up temporary');
  t.true(fsynced(all.filter((s) => s.line < rename!.line), tmp!), 'fsync of the copy before its rename');

  // COMMIT, then the FILE_SYNC WRITE: each fsyncs upper/a/b, upper/a and upper, and the log, before its reply
  const check = (from: number, to: number, what: string): void => {
    const calls = all.slice(from, to);
    const reply = [...calls].reverse().find((s) => s.call === 'writev' || s.call === 'write');
    t.truthy(reply, `${what}: its reply was seen`);
    const before = calls.filter((s) => s.line < reply!.line);
    for (const dir of ['/upper/a/b', '/upper/a', '/upper']) t.true(fsynced(before, dir), `${what}: fsync of ${dir} before the reply`);
    t.true(before.some((s) => (s.call === 'fsync' || s.call === 'fdatasync')), `${what}: the file synced`);
  };
  const commitStart = all.findIndex((s) => s.line > rename!.line);
  check(commitStart, firstPart, 'COMMIT');
  check(firstPart, all.length, 'FILE_SYNC WRITE');
  t.true(fsynced(all.filter((s) => s.line > rename!.line), '/identity.log', 'fdatasync'), 'the identity log (the copy\'s new key) synced');
  t.is(layerFingerprint(lower), lowerBefore, 'the lower is untouched');
});

test('CREATE, MKDIR, REMOVE, RENAME and SETATTR fsync the directories and objects they changed before replying', async (t) => {
  if (!gate(t, 'durability e2e', [...missing({ root: true, server: true }), ...(hasStrace ? [] : ['strace'])])) return;
  t.timeout(120_000);
  const base = makeTemp('unfs-durable-meta-');
  t.teardown(() => cleanupTemp(base));
  const lower = path.join(base, 'lower');
  fs.mkdirSync(path.join(lower, 'a/b'), { recursive: true });
  for (const f of ['f1', 'f2']) fs.writeFileSync(path.join(lower, 'a/b', f), f);
  const { c, root, log, stop } = await tracedServer(t, base, lower, 'openat,fsync,fdatasync,writev,write');
  const lookup = async (dir: Buffer, name: string): Promise<Buffer> => {
    const r = await c.ok(NFS_PROGRAM, 3, NFSPROC3.LOOKUP, (w) => w.opaque(dir).string(name));
    t.is(r.uint32(), 0, `LOOKUP ${name}`);
    return Buffer.from(r.opaque(64));
  };
  const a = await lookup(root, 'a');
  const b = await lookup(a, 'b');
  // sattr3: mode only when given; uid, gid, size, atime, mtime left alone
  const sattr = (w: { uint32(v: number): unknown; bool(v: boolean): unknown }, mode?: number): void => {
    w.bool(mode !== undefined);
    if (mode !== undefined) w.uint32(mode);
    for (let i = 0; i < 3; i++) w.bool(false);
    w.uint32(0); w.uint32(0);
  };
  // Each call alone, its system calls cut out of the trace by their position in it.
  const segments: { what: string; from: number; to: number }[] = [];
  let mark = 0;
  const traced = async (what: string, call: () => Promise<number>): Promise<void> => {
    t.is(await call(), 0, what);
    await new Promise((r) => setTimeout(r, 300));
    const n = parse(fs.readFileSync(log, 'utf8')).length;
    segments.push({ what, from: mark, to: n });
    mark = n;
  };
  await new Promise((r) => setTimeout(r, 300));
  mark = parse(fs.readFileSync(log, 'utf8')).length;
  await traced('REMOVE a/b/f1', async () => (await c.ok(NFS_PROGRAM, 3, NFSPROC3.REMOVE, (w) => w.opaque(b).string('f1'))).uint32());
  await traced('RENAME a/b/f2 a/f2', async () => (await c.ok(NFS_PROGRAM, 3, NFSPROC3.RENAME, (w) => w.opaque(b).string('f2').opaque(a).string('f2'))).uint32());
  let made = Buffer.alloc(0);
  await traced('CREATE a/new', async () => {
    const r = await c.ok(NFS_PROGRAM, 3, NFSPROC3.CREATE, (w) => { w.opaque(a).string('new').uint32(0); sattr(w, 0o644); });
    const st = r.uint32();
    if (st === 0 && r.bool()) made = Buffer.from(r.opaque(64));
    return st;
  });
  await traced('SETATTR a/new', async () => (await c.ok(NFS_PROGRAM, 3, NFSPROC3.SETATTR, (w) => { w.opaque(made); sattr(w, 0o600); w.bool(false); })).uint32());
  await traced('MKDIR a/d', async () => (await c.ok(NFS_PROGRAM, 3, NFSPROC3.MKDIR, (w) => { w.opaque(a).string('d'); sattr(w, 0o755); })).uint32());
  await stop();
  const all = parse(fs.readFileSync(log, 'utf8'));

  const expect: Record<string, string[]> = {
    'REMOVE a/b/f1': ['/upper', '/upper/a', '/upper/a/b'], // a and b copied up, the whiteout in b
    'RENAME a/b/f2 a/f2': ['/upper/a', '/upper/a/b'],
    'CREATE a/new': ['/upper/a', '/upper/a/new'],
    'SETATTR a/new': ['/upper/a/new'],
    'MKDIR a/d': ['/upper/a', '/upper/a/d'],
  };
  for (const seg of segments) {
    const calls = all.slice(seg.from, seg.to);
    const reply = [...calls].reverse().find((s) => s.call === 'writev' || s.call === 'write');
    t.truthy(reply, `${seg.what}: its reply was seen`);
    const before = calls.filter((s) => s.line < reply!.line);
    for (const p of expect[seg.what]!) t.true(fsynced(before, p), `${seg.what}: fsync of ${p} before the reply`);
  }
});
