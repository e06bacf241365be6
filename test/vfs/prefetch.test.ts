/**
 * Union.prefetch (cold-disk.ts): nothing while the disk answers from its cache; while it is
 * read, the layers' directories and the page's lstats are read on the thread pool, and the
 * page read after it is the same. ColdDisk: cold from the first sample that finds the
 * process's read count grown, for 10 s.
 */
import test from 'ava';
import * as fs from 'node:fs';
import { openUnion } from '../../src/vfs/index.js';
import { ColdDisk, coldDisk } from '../../src/vfs/cold-disk.js';
import { sys } from '../../src/vfs/syscalls.js';
import { makeLayers, rootCred, type Entry } from '../helpers/layers.js';

const top: Entry[] = Array.from({ length: 150 }, (_, i): Entry => [`d/t${String(i).padStart(3, '0')}`, 'file', 't']);
const bottom: Entry[] = [['d/', 'dir'], ...Array.from({ length: 150 }, (_, i): Entry => [`d/b${String(i).padStart(3, '0')}`, 'file', 'b'])];

test('prefetch reads a page ahead on the thread pool only while the disk is cold', async (t) => {
  const L = makeLayers('oci', [top, bottom]);
  const lstat = fs.promises.lstat;
  const readdir = fs.promises.readdir;
  let lstats = 0;
  let readdirs = 0;
  (fs.promises as { lstat: unknown }).lstat = (...a: Parameters<typeof lstat>) => { lstats++; return lstat(...a); };
  (fs.promises as { readdir: unknown }).readdir = (...a: Parameters<typeof readdir>) => { readdirs++; return readdir(...a); };
  // with the syscalls addon, a page's lstats go to the pool as one job
  const ahead = sys?.lstatAhead;
  if (sys !== undefined) sys.lstatAhead = (paths: Buffer[]) => { lstats += paths.length; return ahead!(paths); };
  t.teardown(() => {
    (fs.promises as { lstat: unknown }).lstat = lstat;
    (fs.promises as { readdir: unknown }).readdir = readdir;
    if (sys !== undefined) sys.lstatAhead = ahead!;
    L.cleanup();
  });
  const u = await openUnion({ lowers: L.lowers, whiteoutFormat: 'oci', state: L.base + '/state' });
  const d = u.lookup(u.root, Buffer.from('d'), rootCred);
  await u.prefetch(d, 0n, 128);
  t.deepEqual([lstats, readdirs], [0, 0], 'a warm disk: nothing read ahead');
  const warm = u.readdir(d, 0n, 400, true, rootCred);

  const v = await openUnion({ lowers: L.lowers, whiteoutFormat: 'oci', state: L.base + '/state2' });
  const d2 = v.lookup(v.root, Buffer.from('d'), rootCred);
  coldDisk.isCold = () => true; // as when the process has just had the disk read
  await v.prefetch(d2, 0n, 128);
  t.is(readdirs, 2, 'both layers\' directories read ahead');
  t.is(lstats, 128, 'each name of the page stat-ed ahead, in the layer it was listed from');
  const cold = v.readdir(d2, 0n, 400, true, rootCred);
  t.deepEqual(cold.entries.map((e) => [e.name.toString(), e.attr?.size]), warm.entries.map((e) => [e.name.toString(), e.attr?.size]));
});

test('the disk counts as cold for 10 s after the process made it read, sampled every 100 ms', (t) => {
  let bytes = 1000;
  let now = 0;
  const c = new ColdDisk(() => bytes, () => now);
  t.false(c.isCold(), 'first sample');
  now = 50; bytes = 5000;
  t.false(c.isCold(), 'not sampled again within 100 ms');
  now = 100;
  t.true(c.isCold(), 'the count grew');
  now = 5000;
  t.true(c.isCold());
  now = 10_101;
  t.false(c.isCold(), 'nothing read for 10 s');
  const none = new ColdDisk(() => undefined, () => now);
  now += 1000;
  t.false(none.isCold(), 'no /proc/self/io: never cold');
});
