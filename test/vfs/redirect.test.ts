/**
 * RENAME of a lower directory as overlayfs redirect_dir=on does it (src/vfs/redirect.ts): the
 * directory alone is copied up and records where its lower part is; nothing below it is copied,
 * and the tree, its ids and handles read the same afterwards and after a restart, in both
 * formats. Also: calls in flight together with such renames, a rename over a directory that
 * exists below, the subtree copy when the record would be too long, and a bad record.
 */
import test, { type ExecutionContext } from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { openUnion } from '../../src/vfs/index.js';
import { FileType, StableHow, type UnionFs } from '../../src/vfs/types.js';
import { WH_REDIRECT } from '../../src/vfs/redirect.js';
import { canOverlayFormat, makeLayers, rootCred, treeDigest, type Entry, type Format, type TmpUnion } from '../helpers/layers.js';
import { cat, ls, walk } from '../helpers/union-paths.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
type U = UnionFs & { close(): Promise<void> };

const files = Array.from({ length: 40 }, (_, i): Entry => [`big/f${i}`, 'file', `file ${i}`]);
const lowerA: Entry[] = [...files, ['big/sub/s1', 'file', 's1'], ['big/sub/deeper/d1', 'file', 'd1'], ['dst/', 'dir'],
  ['keep/k', 'file', 'kk'], ['tgt/old', 'file', 'old in tgt']];
const lowerB: Entry[] = [['big/fromB', 'file', 'from B'], ['big/sub/sB', 'file', 'sB'], ['tgt/oldB', 'file', 'old B']];

/** Every object below p: relative path -> content (files), 'dir' or 'link', with its id. */
async function tree(u: UnionFs, p: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const visit = async (rel: string): Promise<void> => {
    for (const n of ls(u, rel)) {
      const r = `${rel}/${n}`;
      const id = walk(u, r);
      const a = u.getattr(id);
      const what = a.type === FileType.DIR ? 'dir' : a.type === FileType.REG ? await cat(u, r) : 'other';
      out.set(r.slice(p.length), `${id} ${what}`);
      if (a.type === FileType.DIR) await visit(r);
    }
  };
  await visit(p);
  return out;
}

/** The upper layer's entries below rel (relative paths, sorted). */
function upperEntries(L: TmpUnion, rel: string): string[] {
  const out: string[] = [];
  const visit = (r: string): void => {
    for (const n of fs.readdirSync(path.join(L.upper, r)).sort()) {
      out.push(`${r}/${n}`.slice(rel.length + 1));
      if (fs.lstatSync(path.join(L.upper, r, n)).isDirectory()) visit(`${r}/${n}`);
    }
  };
  visit(rel);
  return out;
}

async function withLayers(t: ExecutionContext, format: Format, fn: (open: () => Promise<U>, L: TmpUnion) => Promise<void>): Promise<void> {
  const L = makeLayers(format, [lowerA, lowerB]);
  const before = L.lowers.map(treeDigest);
  try {
    await fn(() => openUnion({ lowers: L.lowers, upper: L.upper, workdir: L.workdir, whiteoutFormat: format }) as Promise<U>, L);
  } finally {
    t.deepEqual(L.lowers.map(treeDigest), before, 'lower layers unchanged');
    L.cleanup();
  }
}

for (const format of ['oci', 'overlayfs'] as Format[]) {
  const skip = (t: ExecutionContext): boolean => {
    if (format === 'overlayfs' && !canOverlayFormat()) {
      if (process.env.CI === 'true') throw new Error('overlayfs format needs root (trusted.* xattrs, whiteout devices)');
      t.log('SKIPPED: the overlayfs format needs root');
      return true;
    }
    return false;
  };
  const record = format === 'oci' ? [WH_REDIRECT] : [];

  test(`${format}: a lower directory moves alone; the tree, its ids and handles are the same after, and after a restart`, async (t) => {
    if (skip(t)) { t.pass(); return; }
    await withLayers(t, format, async (open, L) => {
      let u = await open();
      const before = await tree(u, 'big');
      t.is(before.size, 46);
      const handles = [...before.keys()].map((r) => u.handleOf(walk(u, `big${r}`)));
      await u.rename(u.root, b('big'), walk(u, 'dst'), b('moved'), rootCred);
      t.deepEqual(await tree(u, 'dst/moved'), before);
      t.throws(() => walk(u, 'big'), { code: 'ENOENT' });
      // nothing below it was copied: the directory and its record
      t.deepEqual(upperEntries(L, 'dst/moved'), record);
      if (format === 'overlayfs') {
        t.is(execFileSync('getfattr', ['--absolute-names', '--only-values', '-n', 'trusted.overlay.redirect', path.join(L.upper, 'dst/moved')], { encoding: 'latin1' }), '/big');
      } else {
        t.is(fs.readFileSync(path.join(L.upper, 'dst/moved', WH_REDIRECT), 'latin1'), '/big');
      }

      // below it: a child moved out (its lower part is /big/sub), a write, a remove, a create
      await u.rename(walk(u, 'dst/moved'), b('sub'), u.root, b('sub2'), rootCred);
      t.is(await cat(u, 'sub2/deeper/d1'), 'd1');
      t.deepEqual(ls(u, 'sub2'), ['deeper', 's1', 'sB']);
      await u.write(walk(u, 'dst/moved/f1'), 0, b('FILE'), StableHow.FILE_SYNC, rootCred);
      await u.remove(walk(u, 'dst/moved'), b('f2'), rootCred);
      await u.create(walk(u, 'dst/moved'), b('new'), { mode: 'guarded', attr: { mode: 0o644 } }, rootCred);
      // moved again within its parent: the record stays as it is
      await u.rename(walk(u, 'dst'), b('moved'), walk(u, 'dst'), b('moved2'), rootCred);
      const after = await tree(u, 'dst/moved2');
      t.is(after.get('/f1')?.replace(/^\d+ /, ''), 'FILE 1');
      t.false(after.has('/f2'));
      t.false(after.has('/sub'));
      t.true(after.has('/new'));
      t.is(after.get('/fromB'), before.get('/fromB'));
      const sub2 = await tree(u, 'sub2');
      await u.close();

      u = await open();
      t.deepEqual(await tree(u, 'dst/moved2'), after);
      t.deepEqual(await tree(u, 'sub2'), sub2);
      t.throws(() => walk(u, 'big'), { code: 'ENOENT' });
      const ids = [...before.values()].map((v) => Number(v.split(' ')[0]));
      t.deepEqual(handles.map((h) => { try { return u.resolve(h); } catch { return -1; } }),
        [...before.keys()].map((r, i) => (r === '/f2' ? -1 : ids[i]!)));
      await u.close();
    });
  });

  test(`${format}: an upper with redirects, stacked as a lower of the next union (and that one's under a third), reads as it did`, async (t) => {
    if (skip(t)) { t.pass(); return; }
    await withLayers(t, format, async (open, L) => {
      /** The next union: the last one's upper on top of its lowers, a new upper. */
      const next = (lowers: string[], tag: string): Promise<U> => {
        for (const d of [`${tag}-upper`, `${tag}-work`]) fs.mkdirSync(path.join(L.base, d));
        return openUnion({ lowers, upper: path.join(L.base, `${tag}-upper`), workdir: path.join(L.base, `${tag}-work`), whiteoutFormat: format }) as Promise<U>;
      };
      /** What the tree holds, without ids (each union has its own). */
      const contents = async (u: UnionFs): Promise<Map<string, string>> =>
        new Map([...await tree(u, '')].map(([r, v]) => [r, v.replace(/^\d+ /, '')]));

      const u = await open();
      await u.rename(u.root, b('big'), walk(u, 'dst'), b('moved'), rootCred);
      await u.rename(walk(u, 'dst/moved'), b('sub'), walk(u, 'dst/moved'), b('sub2'), rootCred);
      await u.remove(walk(u, 'dst/moved'), b('f3'), rootCred);
      await u.write(walk(u, 'dst/moved/f4'), 0, b('FOUR'), StableHow.FILE_SYNC, rootCred);
      const first = await contents(u);
      t.is(first.get('/dst/moved/sub2/deeper/d1'), 'd1');
      await u.close();
      t.deepEqual(upperEntries(L, 'dst/moved/sub2'), record, 'moved alone');

      const v = await next([L.upper, ...L.lowers], 'second');
      t.deepEqual(await contents(v), first);
      // a copy-up from the bottom layer, found through the redirects
      await v.write(walk(v, 'dst/moved/sub2/s1'), 0, b('S'), StableHow.FILE_SYNC, rootCred);
      t.is(await cat(v, 'dst/moved/sub2/s1'), 'S1');
      // moved again, in flight together with writes, a create and a remove below it (by the
      // handles they had): this union's record names the path the layers below it have
      const moved = walk(v, 'dst/moved');
      const [f5, sub2] = [walk(v, 'dst/moved/f5'), walk(v, 'dst/moved/sub2')];
      await Promise.all([
        v.rename(walk(v, 'dst'), b('moved'), v.root, b('again'), rootCred),
        v.write(f5, 0, b('FIVE'), StableHow.FILE_SYNC, rootCred),
        v.create(sub2, b('made'), { mode: 'guarded', attr: { mode: 0o644 } }, rootCred),
        v.remove(moved, b('f6'), rootCred),
      ]);
      const second = await contents(v);
      t.is(second.get('/again/fromB'), 'from B');
      t.is(second.get('/again/f5'), 'FIVE 5');
      t.is(second.get('/again/sub2/made'), '');
      t.is(second.get('/again/sub2/s1'), 'S1');
      t.false(second.has('/again/f6'));
      await v.close();
      // after a restart of that union, the same
      const v2 = await openUnion({ lowers: [L.upper, ...L.lowers], upper: path.join(L.base, 'second-upper'), workdir: path.join(L.base, 'second-work'), whiteoutFormat: format }) as U;
      t.deepEqual(await contents(v2), second);
      await v2.close();

      const w = await next([path.join(L.base, 'second-upper'), L.upper, ...L.lowers], 'third');
      t.deepEqual(await contents(w), second);
      await w.close();
    });
  });

  test(`${format}: renames of lower directories in flight together with writes, creates and removes below them`, async (t) => {
    if (skip(t)) { t.pass(); return; }
    await withLayers(t, format, async (open) => {
      let u = await open();
      const big = walk(u, 'big'), f1 = walk(u, 'big/f1'), d1 = walk(u, 'big/sub/deeper/d1');
      await Promise.all([
        u.rename(u.root, b('big'), walk(u, 'dst'), b('m'), rootCred),
        u.rename(walk(u, 'big'), b('sub'), u.root, b('s'), rootCred),
        u.write(f1, 0, b('W'), StableHow.FILE_SYNC, rootCred),
        u.write(d1, 2, b('!'), StableHow.FILE_SYNC, rootCred),
        u.create(big, b('made'), { mode: 'guarded', attr: {} }, rootCred),
        u.remove(big, b('f3'), rootCred),
        u.rename(u.root, b('keep'), walk(u, 'dst'), b('k'), rootCred),
      ]);
      const check = async (): Promise<void> => {
        t.is(walk(u, 'dst/m'), big);
        t.is(await cat(u, 'dst/m/f1'), 'Wile 1');
        t.is(await cat(u, 's/deeper/d1'), 'd1!');
        t.is(walk(u, 's/deeper/d1'), d1);
        t.true(ls(u, 'dst/m').includes('made'));
        t.false(ls(u, 'dst/m').includes('f3'));
        t.false(ls(u, 'dst/m').includes('sub'));
        t.is(await cat(u, 'dst/k/k'), 'kk');
        t.deepEqual(ls(u, ''), ['dst', 's', 'tgt']);
      };
      await check();
      await u.close();
      u = await open();
      await check();
      await u.close();
    });
  });

  test(`${format}: a directory moved over one that exists below does not merge with it`, async (t) => {
    if (skip(t)) { t.pass(); return; }
    await withLayers(t, format, async (open) => {
      let u = await open();
      await u.remove(walk(u, 'tgt'), b('old'), rootCred);
      await u.remove(walk(u, 'tgt'), b('oldB'), rootCred);
      await u.rename(walk(u, 'big'), b('sub'), u.root, b('tgt'), rootCred);
      t.deepEqual(ls(u, 'tgt'), ['deeper', 's1', 'sB']);
      await u.close();
      u = await open();
      t.deepEqual(ls(u, 'tgt'), ['deeper', 's1', 'sB']);
      t.false(ls(u, 'big').includes('sub'));
      await u.close();
    });
  });
}

test('a redirect longer than REDIRECT_MAX is not recorded: the subtree is copied up instead', async (t) => {
  const deep = Array.from({ length: 10 }, (_, i) => String(i).repeat(250)).join('/');
  await withLayersOf([[`${deep}/leaf/x`, 'file', 'deep x'], [`${deep}/leaf/y/z`, 'file', 'deep z']], async (open, L) => {
    let u = await open();
    const x = walk(u, `${deep}/leaf/x`);
    await u.rename(walk(u, deep), b('leaf'), u.root, b('short'), rootCred);
    t.is(walk(u, 'short/x'), x);
    t.deepEqual(upperEntries(L, 'short'), ['.wh..wh..opq', 'x', 'y', 'y/.wh..wh..opq', 'y/z']);
    await u.close();
    u = await open();
    t.is(await cat(u, 'short/y/z'), 'deep z');
    t.is(walk(u, 'short/x'), x);
    await u.close();
  });
});

test('a redirect record that is not a path inside the layers is EIO', async (t) => {
  await withLayersOf([['d/x', 'file', 'x'], ['etc/passwd', 'file', 'p']], async (open, L) => {
    fs.mkdirSync(path.join(L.upper, 'bad'));
    fs.writeFileSync(path.join(L.upper, 'bad', WH_REDIRECT), '/d/../etc');
    const u = await open();
    t.throws(() => walk(u, 'bad'), { code: 'EIO' });
    t.is(await cat(u, 'd/x'), 'x');
    await u.close();
  });
});

async function withLayersOf(lower: Entry[], fn: (open: () => Promise<U>, L: TmpUnion) => Promise<void>): Promise<void> {
  const L = makeLayers('oci', [lower]);
  try {
    await fn(() => openUnion({ lowers: L.lowers, upper: L.upper, workdir: L.workdir, whiteoutFormat: 'oci' }) as Promise<U>, L);
  } finally {
    L.cleanup();
  }
}

for (const format of ['oci', 'overlayfs'] as Format[]) {
  test(`${format}: RENAME over an empty directory that hides lower names: cut short between its steps, the hidden names stay hidden`, async (t) => {
    if (format === 'overlayfs' && !canOverlayFormat()) {
      if (process.env.CI === 'true') throw new Error('overlayfs format needs root');
      t.log('SKIPPED: the overlayfs format needs root');
      t.pass();
      return;
    }
    await withLayers(t, format, async (open, L) => {
      let u = await open();
      await u.remove(walk(u, 'tgt'), b('old'), rootCred);
      await u.remove(walk(u, 'tgt'), b('oldB'), rootCred);
      await u.mkdir(u.root, b('fresh'), { mode: 0o755 }, rootCred);
      await u.create(walk(u, 'fresh'), b('x'), { mode: 'guarded', attr: {} }, rootCred);
      // the step after the exchange needs a workdir name: make that step fail, as a crash would stop it
      (u as unknown as { tmpName(): string }).tmpName = () => path.join(L.base, 'no-such-dir', 'tmp');
      await t.throwsAsync(u.rename(u.root, b('fresh'), u.root, b('tgt'), rootCred), { code: 'ENOENT' });
      await u.close();
      u = await open();
      t.deepEqual(ls(u, 'tgt'), ['x']);
      // what the cut leaves at the old name: an empty directory, never the target's lower names
      t.deepEqual(ls(u, 'fresh'), []);
      await u.close();
    });
  });
}

for (const format of ['oci', 'overlayfs'] as Format[]) {
  test(`${format}: a directory moved from below an opaque lower directory does not gain what that opaque directory hid`, async (t) => {
    if (format === 'overlayfs' && !canOverlayFormat()) {
      if (process.env.CI === 'true') throw new Error('overlayfs format needs root');
      t.log('SKIPPED: the overlayfs format needs root');
      t.pass();
      return;
    }
    const L = makeLayers(format, [[['a', 'opaque'], ['a/b/keep', 'file', 'k']], [['a/b/old', 'file', 'hidden by the opaque a'], ['a/b/c/deeper', 'file', 'hidden too']]]);
    try {
      const open = (): Promise<U> => openUnion({ lowers: L.lowers, upper: L.upper, workdir: L.workdir, whiteoutFormat: format }) as Promise<U>;
      let u = await open();
      t.deepEqual(ls(u, 'a/b'), ['keep']);
      await u.rename(walk(u, 'a'), b('b'), u.root, b('moved'), rootCred);
      t.deepEqual(ls(u, 'moved'), ['keep']);
      await u.close();
      u = await open();
      t.deepEqual(ls(u, 'moved'), ['keep']);
      t.throws(() => walk(u, 'moved/c'), { code: 'ENOENT' });
      await u.close();
    } finally {
      L.cleanup();
    }
  });
}
