/**
 * Lower hard links over copy-up, as kernel overlayfs with index=on does them: one object, one
 * copy, and a link count that counts the union's names (differential test, issue 4).
 */
import test from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openUnion } from '../../src/vfs/index.js';
import { StableHow, type UnionFs } from '../../src/vfs/types.js';
import { canOverlayFormat, makeLayers, rootCred, treeDigest, type Format, type TmpUnion } from '../helpers/layers.js';
import { cat, ls, walk } from '../helpers/union-paths.js';

const b = (s: string): Buffer => Buffer.from(s);
type U = UnionFs & { close(): Promise<void> };

const nlink = (u: UnionFs, p: string): number => u.getattr(walk(u, p)).nlink;
const dir = (u: UnionFs, p: string): number => walk(u, p);

/** Lower 1: hl/one, hl/two, hl-three, all one inode; lower 2 below it: other, d/single. */
function layers(format: Format): TmpUnion {
  const L = makeLayers(format, [[['hl/one', 'file', 'hard linked\n'], ['x/', 'dir']], [['other', 'file', 'o'], ['d/single', 'file', 's']]]);
  fs.linkSync(path.join(L.lowers[0]!, 'hl/one'), path.join(L.lowers[0]!, 'hl/two'));
  fs.linkSync(path.join(L.lowers[0]!, 'hl/one'), path.join(L.lowers[0]!, 'hl-three'));
  fs.linkSync(path.join(L.lowers[0]!, 'hl/one'), path.join(L.lowers[0]!, 'x/four'));
  return L;
}

async function withUnion(t: import('ava').ExecutionContext, format: Format, fn: (open: () => Promise<U>, L: TmpUnion) => Promise<void>): Promise<void> {
  const L = layers(format);
  const before = L.lowers.map(treeDigest);
  try {
    await fn(() => openUnion({ lowers: L.lowers, upper: L.upper, workdir: L.workdir, whiteoutFormat: format }), L);
    t.deepEqual(fs.readdirSync(path.join(L.workdir, 'union-nfsd', 'tmp')), [], 'no temporaries left');
  } finally {
    t.deepEqual(L.lowers.map(treeDigest), before, 'lower layers unchanged');
    L.cleanup();
  }
}

for (const format of ['oci', 'overlayfs'] as Format[]) {
  const skip = (): boolean => format === 'overlayfs' && !canOverlayFormat();

  test(`${format}: link to a lower file that has hard links (the differential script's sequence)`, async (t) => {
    if (skip()) { t.pass(); return; }
    await withUnion(t, format, async (open, L) => {
      let u = await open();
      t.is(nlink(u, 'hl/one'), 4);
      await u.remove(u.root, b('hl-three'), rootCred);
      t.is(nlink(u, 'hl/one'), 3, 'unlink of a lower-only hard link counts');
      const two = walk(u, 'hl/two');
      await u.link(two, dir(u, 'hl'), b('link3'), rootCred);
      for (const n of ['hl/one', 'hl/two', 'hl/link3', 'x/four']) {
        t.is(walk(u, n), two, `${n} is the same object`);
        t.is(nlink(u, n), 4, `${n} nlink`);
      }
      await u.write(walk(u, 'hl/link3'), 0, b('HARD!'), StableHow.FILE_SYNC, rootCred);
      for (const n of ['hl/one', 'hl/two', 'hl/link3', 'x/four']) t.is(await cat(u, n), 'HARD!linked\n', n);
      t.deepEqual(ls(u, 'hl'), ['link3', 'one', 'two']);
      await u.remove(dir(u, 'hl'), b('two'), rootCred);
      t.deepEqual(ls(u, 'hl'), ['link3', 'one']);
      t.throws(() => walk(u, 'hl/two'), { code: 'ENOENT' });
      t.is(nlink(u, 'hl/one'), 3);
      await u.close();

      // after a restart: same object, same count, same data, by every remaining name
      u = await open();
      t.is(nlink(u, 'x/four'), 3);
      t.is(await cat(u, 'x/four'), 'HARD!linked\n');
      t.is(walk(u, 'x/four'), walk(u, 'hl/one'));
      // rename of a lower-only name: a new upper link of the copy, not a second copy
      await u.rename(dir(u, 'x'), b('four'), dir(u, 'hl'), b('moved'), rootCred);
      t.deepEqual(ls(u, 'hl'), ['link3', 'moved', 'one']);
      t.deepEqual(ls(u, 'x'), []);
      t.is(nlink(u, 'hl/moved'), 3);
      t.is(fs.statSync(path.join(L.upper, 'hl/moved')).ino, fs.statSync(path.join(L.upper, 'hl/link3')).ino);
      await u.write(walk(u, 'hl/moved'), 0, b('h'), StableHow.FILE_SYNC, rootCred);
      t.is(await cat(u, 'hl/one'), 'hARD!linked\n');
      for (const n of ['one', 'link3']) await u.remove(dir(u, 'hl'), b(n), rootCred);
      t.is(nlink(u, 'hl/moved'), 1);
      await u.remove(dir(u, 'hl'), b('moved'), rootCred);
      t.deepEqual(ls(u, 'hl'), []);
      t.deepEqual(fs.readdirSync(path.join(L.workdir, 'union-nfsd', 'index')), [], 'index entry goes with the last name');
      await u.close();
    });
  });

  test(`${format}: a hard link's other names follow its copy-up, even after that name is removed`, async (t) => {
    if (skip()) { t.pass(); return; }
    await withUnion(t, format, async (open) => {
      let u = await open();
      await u.write(walk(u, 'hl/one'), 0, b('NEW'), StableHow.FILE_SYNC, rootCred);
      await u.remove(dir(u, 'hl'), b('one'), rootCred);
      await u.close();
      u = await open();
      // hl/two was never looked up before the restart: it still shows the copy
      t.is(await cat(u, 'hl/two'), 'NEWd linked\n');
      t.is(nlink(u, 'hl/two'), 3);
      t.is(await cat(u, 'hl-three'), 'NEWd linked\n');
      // rename over a lower-only name of it
      await u.create(u.root, b('plain'), { mode: 'unchecked', attr: { mode: 0o644 } }, rootCred);
      await u.rename(u.root, b('plain'), u.root, b('hl-three'), rootCred);
      t.is(await cat(u, 'hl-three'), '');
      t.is(nlink(u, 'hl/two'), 2);
      await u.close();
    });
  });

  test(`${format}: after a restart, a hard link met first by another name keeps its handle and attributes`, async (t) => {
    if (skip()) { t.pass(); return; }
    await withUnion(t, format, async (open) => {
      let u = await open();
      const one = walk(u, 'd/single');
      const handle = u.handleOf(one);
      await u.setattr(one, { mode: 0o600 }, rootCred);
      await u.link(one, u.root, b('root-link'), rootCred);
      await u.close();
      // The kernel client's `ls /mnt` after a server restart: the root listing can reach
      // root-link before anything has looked up d/, the parent of the object's first name.
      u = await open();
      t.is(u.lookup(u.root, b('root-link'), rootCred), one);
      t.is(u.getattr(one).fileid, one);
      t.is(u.resolve(handle), one);
      const entry = u.readdir(u.root, 0n, 100, true, rootCred).entries.find((e) => e.name.toString() === 'root-link');
      t.truthy(entry?.attr, 'READDIRPLUS has its attributes');
      t.is(u.getattr(one).nlink, 2);
      await u.close();
    });
  });
}
