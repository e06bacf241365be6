import test from 'ava';
import * as fs from 'node:fs';
import { openUnion } from '../../src/vfs/index.js';
import { FileType, type UnionFs } from '../../src/vfs/types.js';
import { FsError } from '../../src/errors/fs-error.js';
import { cookieOf, cookieOfRef } from '../../src/vfs/names.js';
import { canOverlayFormat, makeLayers, rootCred, treeDigest, type Entry, type Format } from '../helpers/layers.js';

const b = (s: string): Buffer => Buffer.from(s);

async function names(u: UnionFs, dir: number): Promise<string[]> {
  const out: string[] = [];
  let cookie = 0n;
  for (;;) {
    const p = u.readdir(dir, cookie, 3, false, rootCred);
    for (const e of p.entries) { out.push(e.name.toString()); cookie = e.cookie; }
    if (p.eof) break;
  }
  return out.filter((n) => n !== '.' && n !== '..').sort();
}

function walkPath(u: UnionFs, p: string): number {
  let id = u.root;
  for (const c of p.split('/').filter(Boolean)) id = u.lookup(id, b(c), rootCred);
  return id;
}

const top: Entry[] = [['a/', 'dir'], ['a/x', 'file', 'top-x'], ['a/gone', 'whiteout'], ['o', 'opaque'], ['o/new', 'file', 'n'],
  ['f', 'whiteout'], ['esc', 'symlink', '../../../../etc'], ['abs', 'symlink', '/etc/passwd'], ['nd', 'file', 'file hides dir']];
const mid: Entry[] = [['a/y', 'file', 'mid-y'], ['a/gone', 'file', 'hidden'], ['o/old', 'file', 'old'], ['f', 'file', 'f'], ['nd/', 'dir'], ['nd/z', 'file']];
const bottom: Entry[] = [['a/x', 'file', 'bottom-x'], ['a/z', 'file', 'bottom-z'], ['g', 'file', 'gg'], ['o/older', 'file']];

for (const format of ['oci', 'overlayfs'] as Format[]) {
  test(`${format}: lookup and readdir merge with whiteouts and opaque dirs`, async (t) => {
    if (format === 'overlayfs' && !canOverlayFormat()) { t.pass('skipped'); return; }
    const L = makeLayers(format, [top, mid, bottom]);
    const before = L.lowers.map(treeDigest);
    try {
      const u = await openUnion({ lowers: L.lowers, whiteoutFormat: format, state: L.base + '/state' });
      t.true(u.readOnly);
      t.deepEqual(await names(u, u.root), ['a', 'abs', 'esc', 'g', 'nd', 'o']);
      t.deepEqual(await names(u, walkPath(u, 'a')), ['x', 'y', 'z']);
      t.deepEqual(await names(u, walkPath(u, 'o')), ['new']);
      const x = walkPath(u, 'a/x');
      t.is((await u.read(x, 0, 100, rootCred)).data.toString(), 'top-x');
      t.is((await u.read(walkPath(u, 'a/z'), 0, 100, rootCred)).data.toString(), 'bottom-z');
      const err = t.throws(() => walkPath(u, 'a/gone')) as FsError;
      t.is(err.code, 'ENOENT');
      t.is((t.throws(() => walkPath(u, 'f')) as FsError).code, 'ENOENT');
      t.is((t.throws(() => walkPath(u, 'o/old')) as FsError).code, 'ENOENT');
      t.is(u.getattr(walkPath(u, 'nd')).type, FileType.REG);
      // containment: symlinks are returned as symlinks, never followed
      const esc = walkPath(u, 'esc');
      t.is(u.getattr(esc).type, FileType.LNK);
      t.is(u.readlink(esc).toString(), '../../../../etc');
      t.is((t.throws(() => u.lookup(esc, b('passwd'), rootCred)) as FsError).code, 'ENOTDIR');
      for (const bad of ['..', '.', '', 'a/b', 'x\0y']) {
        t.is((t.throws(() => u.lookup(u.root, b(bad), rootCred)) as FsError).code, 'EINVAL', bad);
      }
      t.is((t.throws(() => u.lookup(u.root, Buffer.alloc(256, 0x61), rootCred)) as FsError).code, 'ENAMETOOLONG');
      t.is((t.throws(() => u.lookup(walkPath(u, 'a'), b('.wh.gone'), rootCred)) as FsError).code, 'ENOENT');
      // fileids are node ids, stable and unique
      const a1 = u.getattr(x).fileid;
      t.is(a1, x);
      t.is(walkPath(u, 'a/x'), x);
      await u.close();
    } finally {
      t.deepEqual(L.lowers.map(treeDigest), before);
      L.cleanup();
    }
  });
}

test('cookies: fast FNV equals reference, never < 3', (t) => {
  for (const s of ['', 'a', 'hello', '\xff\xfe', 'x'.repeat(255), 'résumé']) t.is(cookieOf(s), cookieOfRef(s));
  for (let i = 0; i < 2000; i++) t.true(cookieOf(`n${i}`) >= 3n);
});

test('readdir pages are sorted by cookie with . and ..', async (t) => {
  const es: Entry[] = [];
  for (let i = 0; i < 50; i++) es.push([`d/f${i}`, 'file']);
  const L = makeLayers('oci', [es, [['d/g', 'file']]]);
  try {
    const u = await openUnion({ lowers: L.lowers, whiteoutFormat: 'oci', state: L.base + '/state' });
    const d = walkPath(u, 'd');
    const p = u.readdir(d, 0n, 1000, true, rootCred);
    t.true(p.eof);
    t.is(p.entries[0]!.name.toString(), '.');
    t.is(p.entries[1]!.name.toString(), '..');
    t.is(p.entries[1]!.fileid, u.root);
    const cs = p.entries.map((e) => e.cookie);
    for (let i = 1; i < cs.length; i++) t.true(cs[i]! > cs[i - 1]!);
    t.is(p.entries.length, 53);
    t.truthy(p.entries[5]!.attr);
    t.is(p.entries[5]!.attr!.fileid, p.entries[5]!.fileid);
    await u.close();
  } finally {
    L.cleanup();
  }
});

test('read-only union refuses writes with EROFS', async (t) => {
  const L = makeLayers('oci', [[['f', 'file', 'x']]]);
  try {
    const u = await openUnion({ lowers: L.lowers, whiteoutFormat: 'oci', state: L.base + '/state' });
    await t.throwsAsync(u.create(u.root, b('n'), { mode: 'unchecked', attr: {} }, rootCred), { code: 'EROFS' });
    await u.close();
    t.false(fs.existsSync(L.lowers[0] + '/n'));
  } finally {
    L.cleanup();
  }
});
