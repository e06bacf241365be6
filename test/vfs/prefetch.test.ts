/**
 * Union.prefetch: the merged listing built on the thread pool when none is cached (and dropped
 * when the directory changed meanwhile); while the disk is read (cold-disk.ts), the page's
 * lstats too, and the page read after it is the same. ColdDisk: cold from the first sample that finds the
 * process's read count grown, for 10 s.
 */
import test from 'ava';
import * as fs from 'node:fs';
import { openUnion, vfsCounters } from '../../src/vfs/index.js';
import { ColdDisk, coldDisk } from '../../src/vfs/cold-disk.js';
import { sys } from '../../src/vfs/syscalls.js';
import { makeLayers, rootCred, type Entry } from '../helpers/layers.js';

const top: Entry[] = Array.from({ length: 150 }, (_, i): Entry => [`d/t${String(i).padStart(3, '0')}`, 'file', 't']);
const bottom: Entry[] = [['d/', 'dir'], ...Array.from({ length: 150 }, (_, i): Entry => [`d/b${String(i).padStart(3, '0')}`, 'file', 'b'])];

test.serial('prefetch reads a page\'s lstats ahead on the thread pool only while the disk is cold', async (t) => {
  const L = makeLayers('oci', [top, bottom]);
  const lstat = fs.promises.lstat;
  const isCold = coldDisk.isCold;
  let lstats = 0;
  (fs.promises as { lstat: unknown }).lstat = (...a: Parameters<typeof lstat>) => { lstats++; return lstat(...a); };
  // with the syscalls addon, a page's lstats go to the pool as one job
  const ahead = sys?.lstatAhead;
  if (sys !== undefined) sys.lstatAhead = (paths: Buffer[]) => { lstats += paths.length; return ahead!(paths); };
  t.teardown(() => {
    (fs.promises as { lstat: unknown }).lstat = lstat;
    coldDisk.isCold = isCold;
    if (sys !== undefined) sys.lstatAhead = ahead!;
    L.cleanup();
  });
  const u = await openUnion({ lowers: L.lowers, whiteoutFormat: 'oci', state: L.base + '/state' });
  const d = u.lookup(u.root, Buffer.from('d'), rootCred);
  await u.prefetch(d, 0n, 128);
  t.is(lstats, 0, 'a warm disk: no lstat read ahead');
  const warm = u.readdir(d, 0n, 400, true, rootCred);

  const v = await openUnion({ lowers: L.lowers, whiteoutFormat: 'oci', state: L.base + '/state2' });
  const d2 = v.lookup(v.root, Buffer.from('d'), rootCred);
  coldDisk.isCold = () => true; // as when the process has just had the disk read
  await v.prefetch(d2, 0n, 128);
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

test.serial('a listing built on the thread pool is the synchronous one, and one made stale by a create meanwhile is dropped', async (t) => {
  const many: Entry[] = [['d/', 'dir'], ...Array.from({ length: 5000 }, (_, i): Entry => [`d/n${String(i).padStart(5, '0')}`, 'file', ''])];
  const L = makeLayers('oci', [many], [['d/', 'dir'], ['d/u', 'file', 'u']]);
  t.teardown(() => L.cleanup());
  const u = await openUnion({ lowers: L.lowers, upper: L.upper, workdir: L.workdir, whiteoutFormat: 'oci', state: L.base + '/state' });
  const d = u.lookup(u.root, Buffer.from('d'), rootCred);
  const names = (): string[] => u.readdir(d, 0n, 10_000, false, rootCred).entries.map((e) => e.name.toString()).sort();

  const misses = vfsCounters.listingMisses;
  await u.prefetch(d, 0n, 128);
  const ahead = names();
  t.is(vfsCounters.listingMisses, misses, 'readdir found the listing built ahead');
  t.is(ahead.length, 5003);

  const v = await openUnion({ lowers: L.lowers, upper: L.upper, workdir: L.workdir, whiteoutFormat: 'oci', state: L.base + '/state2' });
  const d2 = v.lookup(v.root, Buffer.from('d'), rootCred);
  const building = v.prefetch(d2, 0n, 128);
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r)); // the upper directory is read first
  await v.create(d2, Buffer.from('made-meanwhile'), { mode: 'unchecked', attr: {} }, rootCred);
  await building;
  const after = v.readdir(d2, 0n, 10_000, false, rootCred).entries.map((e) => e.name.toString());
  t.true(after.includes('made-meanwhile'), 'the name made while the listing was read is listed');
  t.is(after.length, 5004);
});
