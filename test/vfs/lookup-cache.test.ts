/**
 * Lookups answered from a cached listing (readdir.ts hints, union.ts find) agree with layer
 * walks (namei.ts findInLayers): listed, whited-out, shadowed, opaque, created, removed,
 * renamed-over and copied-up names; READDIRPLUS attributes equal GETATTR's.
 */
import test from 'ava';
import { openUnion } from '../../src/vfs/index.js';
import { FileType, StableHow, type UnionFs } from '../../src/vfs/types.js';
import { FsError } from '../../src/errors/fs-error.js';
import { canOverlayFormat, makeLayers, rootCred, type Entry, type Format } from '../helpers/layers.js';

const b = (s: string): Buffer => Buffer.from(s);

const top: Entry[] = [['d/', 'dir'], ['d/x', 'file', 'top-x'], ['d/gone', 'whiteout'], ['d/o', 'opaque'], ['d/o/new', 'file', 'n'], ['d/s/', 'dir'], ['d/s/a', 'file', 'sa']];
const mid: Entry[] = [['d/y', 'file', 'mid-y'], ['d/gone', 'file', 'hidden'], ['d/o/old', 'file', 'old'], ['d/s/b', 'file', 'sb'], ['d/h', 'file', 'h']];
const bottom: Entry[] = [['d/x', 'file', 'bottom-x'], ['d/z', 'file', 'bottom-z'], ['d/s/c', 'file', 'sc'], ['d/nd/', 'dir']];
const probe = ['x', 'y', 'z', 'gone', 'o', 's', 'h', 'nd', 'none', '.wh.gone', 'new', 'old'];

async function view(u: UnionFs, dir: number, name: string): Promise<string> {
  try {
    const id = u.lookup(dir, b(name), rootCred);
    const a = u.getattr(id);
    if (a.type === FileType.DIR) {
      const p = u.readdir(id, 0n, 100, true, rootCred);
      return 'dir:' + p.entries.map((e) => `${e.name.toString()}=${e.attr?.size ?? '-'}`).sort().join(',');
    }
    return `file:${a.size}:${(await u.read(id, 0, 100, rootCred)).data.toString()}`;
  } catch (e) {
    return (e as FsError).code;
  }
}

for (const format of ['oci', 'overlayfs'] as Format[]) {
  test(`${format}: lookups through a cached listing equal layer walks, across changes`, async (t) => {
    if (format === 'overlayfs' && !canOverlayFormat()) { t.pass('skipped'); return; }
    const L = makeLayers(format, [top, mid, bottom]);
    try {
      const state = L.base + '/state';
      const open = (): Promise<UnionFs> => openUnion({ lowers: L.lowers, upper: L.upper, workdir: L.workdir, whiteoutFormat: format, state });
      const u = await open();
      const d = u.lookup(u.root, b('d'), rootCred);
      // list first: every later lookup in d goes through the listing
      const page = u.readdir(d, 0n, 100, true, rootCred);
      for (const e of page.entries) {
        if (e.name.toString() === '.' || e.name.toString() === '..') continue;
        t.deepEqual(e.attr, u.getattr(e.fileid), `readdirplus attr of ${e.name.toString()}`);
      }
      // changes after the listing was cached
      const y = u.lookup(d, b('y'), rootCred);
      await u.write(y, 0, b('Y'), StableHow.FILE_SYNC, rootCred); // copy-up of a listed lower file
      await u.remove(d, b('z'), rootCred);
      await u.create(d, b('gone'), { mode: 'unchecked', attr: { mode: 0o644 } }, rootCred);
      await u.create(d, b('tmp'), { mode: 'unchecked', attr: { mode: 0o644 } }, rootCred);
      const tmp = u.lookup(d, b('tmp'), rootCred);
      await u.write(tmp, 0, b('renamed'), StableHow.FILE_SYNC, rootCred);
      await u.rename(d, b('tmp'), d, b('h'), rootCred); // over a listed lower name
      await u.mkdir(d, b('m'), { mode: 0o755 }, rootCred);
      const m = u.lookup(d, b('m'), rootCred);
      t.is((t.throws(() => u.lookup(m, b('nothing'), rootCred)) as FsError).code, 'ENOENT');
      await u.create(m, b('f'), { mode: 'guarded', attr: { mode: 0o644 } }, rootCred);
      t.is((await view(u, m, 'f')).slice(0, 6), 'file:0');
      const names = [...probe, 'tmp', 'm'];
      const cached: string[] = [];
      for (const n of names) cached.push(await view(u, d, n));
      // many lookups in a directory that was never listed (the walk threshold builds its listing)
      const s = u.lookup(d, b('s'), rootCred);
      const sNames = ['a', 'b', 'c', 'q1', 'q2', 'q3', 'q4', 'q5', 'q6', 'q7', 'q8', 'a', 'b', 'c'];
      const sCached: string[] = [];
      for (const n of sNames) sCached.push(await view(u, s, n));
      await u.close();
      // a fresh server walks the layers (no listing cached)
      const v = await open();
      const d2 = v.lookup(v.root, b('d'), rootCred);
      const fresh: string[] = [];
      for (const n of names) fresh.push(await view(v, d2, n));
      t.deepEqual(cached, fresh);
      t.is(cached[names.indexOf('y')], 'file:5:Yid-y');
      t.is(cached[names.indexOf('h')], 'file:7:renamed');
      t.is(cached[names.indexOf('z')], 'ENOENT');
      t.is(cached[names.indexOf('gone')], 'file:0:');
      const s2 = v.lookup(d2, b('s'), rootCred);
      const sFresh: string[] = [];
      for (const n of sNames.slice(0, 3)) sFresh.push(await view(v, s2, n));
      t.deepEqual(sCached.slice(0, 3), sFresh);
      t.deepEqual(sCached.slice(3, 11), Array(8).fill('ENOENT'));
      t.deepEqual(sCached.slice(11), sFresh);
      await v.close();
    } finally {
      L.cleanup();
    }
  });
}

test('handles: cached MACs give the same bytes; a forged MAC on a live id is EBADHANDLE', async (t) => {
  const L = makeLayers('oci', [top]);
  try {
    const u = await openUnion({ lowers: L.lowers, upper: L.upper, workdir: L.workdir, whiteoutFormat: 'oci', state: L.base + '/state' });
    const d = u.lookup(u.root, b('d'), rootCred);
    const h1 = u.handleOf(d);
    const h2 = u.handleOf(d);
    t.deepEqual(h1, h2);
    t.is(u.resolve(h1), d);
    t.is(u.resolve(Buffer.from(h1)), d);
    for (let i = 12; i < 28; i++) {
      const f = Buffer.from(h1);
      f[i]! ^= 1;
      t.is((t.throws(() => u.resolve(f)) as FsError).code, 'EBADHANDLE');
    }
    await u.close();
    const v = await openUnion({ lowers: L.lowers, upper: L.upper, workdir: L.workdir, whiteoutFormat: 'oci', state: L.base + '/state' });
    t.is(v.resolve(h1), d, 'after a restart (MAC computed, then cached)');
    t.is(v.resolve(h1), d);
    t.deepEqual(v.handleOf(d), h1);
    await v.close();
  } finally {
    L.cleanup();
  }
});
