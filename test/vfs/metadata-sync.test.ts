/**
 * MetadataSync (src/vfs/metadata-sync.ts): group commits in order, failures given back, and
 * fsyncEach against real files.
 */
import test from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fsyncEach, MetadataSync, volatileFs } from '../../src/vfs/metadata-sync.js';

const pathOf = (m: number): Buffer | undefined => (m === 99 ? undefined : Buffer.from(`/m${m}`));

test('a commit waits for the one in flight before it, then takes every mark made by then', async (t) => {
  const batches: string[][] = [];
  const pending: (() => void)[] = [];
  const ms = new MetadataSync(pathOf, async () => {}, (paths) => {
    batches.push(paths.map(String));
    return new Promise((resolve) => pending.push(() => resolve(paths.map(() => null))));
  });
  ms.mark(1);
  const a = ms.commit();
  await new Promise((r) => setImmediate(r));
  ms.mark(2);
  ms.mark(3);
  ms.mark(99); // gone: no path, nothing to sync
  let bDone = false;
  const b = ms.commit().then(() => { bDone = true; });
  const c = ms.commit(); // nothing new: still waits for b's
  await new Promise((r) => setImmediate(r));
  t.deepEqual(batches, [['/m1']], 'b has not started while a is in flight');
  pending.shift()!();
  await a;
  await new Promise((r) => setImmediate(r));
  t.deepEqual(batches, [['/m1'], ['/m2', '/m3']]);
  t.false(bDone);
  pending.shift()!();
  await b;
  await new Promise((r) => setImmediate(r));
  pending.shift()?.();
  await c;
  t.deepEqual(batches.slice(0, 2), [['/m1'], ['/m2', '/m3']]);
});

test('a failed fsync fails its commit and is tried again by the next; gone objects are not failures', async (t) => {
  const results: (string | null)[][] = [['EIO', 'ENOENT'], [null]];
  const seen: string[][] = [];
  const ms = new MetadataSync(pathOf, async () => {}, async (paths) => {
    seen.push(paths.map(String));
    return results.shift()!;
  });
  ms.mark(1);
  ms.mark(2);
  await t.throwsAsync(ms.commit(), { code: 'EIO' });
  await ms.commit();
  t.deepEqual(seen, [['/m1', '/m2'], ['/m1']]);
});

test('a failed log sync fails the commit', async (t) => {
  const ms = new MetadataSync(pathOf, async () => { throw new Error('log'); }, async (paths) => paths.map(() => null));
  await t.throwsAsync(ms.commit(), { message: 'log' });
});

test('fsyncEach: files and directories synced, a missing path and a FIFO named, never opened blocking', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'unfs-msync-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'f'), 'x');
  fs.symlinkSync('f', path.join(dir, 'l'));
  execFileSync('mkfifo', [path.join(dir, 'p')]);
  const r = await fsyncEach([dir, path.join(dir, 'f'), path.join(dir, 'none'), path.join(dir, 'l'), path.join(dir, 'p')].map((p) => Buffer.from(p)));
  t.deepEqual(r, [null, null, 'ENOENT', 'ELOOP', 'EINVAL']);
});

test('nothing is synced on a file system that keeps nothing over a power cut', async (t) => {
  let files = 0;
  let logs = 0;
  const fsyncAll = async (paths: Buffer[]) => { files += paths.length; return paths.map(() => null); };
  const upperOnTmpfs = new MetadataSync(pathOf, async () => { logs++; }, fsyncAll, { files: true, log: false });
  upperOnTmpfs.mark(1);
  await upperOnTmpfs.commit();
  t.deepEqual([files, logs], [0, 1], 'the log on a disk is still synced');
  const allOnTmpfs = new MetadataSync(pathOf, async () => { logs++; }, fsyncAll, { files: true, log: true });
  allOnTmpfs.mark(1);
  await allOnTmpfs.commit();
  t.deepEqual([files, logs], [0, 1]);
  if (fs.existsSync('/dev/shm')) t.true(volatileFs('/dev/shm'));
  t.false(volatileFs('/proc/self/nonexistent'));
});
