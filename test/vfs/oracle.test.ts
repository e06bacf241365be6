/**
 * Kernel overlayfs as the oracle: the same layers mounted by the kernel and walked through the
 * union must give the same tree (names, types, sizes, contents, symlink targets, modes). And an
 * upper layer written by the union in overlayfs format must read the same under the kernel.
 * Xattr whiteouts count in directories marked for them, as the kernel's listings count them.
 */
import test from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { openUnion } from '../../src/vfs/index.js';
import { FileType, type UnionFs } from '../../src/vfs/types.js';
import { buildLayer, isRoot, makeLayers, mkTmp, rootCred, type Entry, type Format } from '../helpers/layers.js';
import { Beneath } from '../../src/vfs/beneath.js';
import { scanFacts, xattrFacts } from '../../src/vfs/xattr.js';

const b = (s: string): Buffer => Buffer.from(s);

function canMount(): boolean {
  if (!isRoot) return false;
  try { return fs.readFileSync('/proc/filesystems', 'utf8').includes('overlay'); } catch { return false; }
}

function mountOverlay(lowers: string[], upper?: string, work?: string): { dir: string; umount(): void } {
  const dir = mkTmp('unfs-mnt-');
  const opts = [`lowerdir=${lowers.join(':')}`];
  if (upper && work) opts.push(`upperdir=${upper}`, `workdir=${work}`, 'redirect_dir=on');
  else opts.push('redirect_dir=follow');
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', opts.join(','), dir]);
  return { dir, umount: () => { execFileSync('umount', [dir]); fs.rmSync(dir, { recursive: true, force: true }); } };
}

function kernelTree(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const n of fs.readdirSync(path.join(root, rel)).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      const p = path.join(root, r);
      // listed but not found: the kernel's LOOKUP took it for an xattr whiteout (xattr.ts)
      const st = fs.lstatSync(p, { throwIfNoEntry: false });
      if (st === undefined) { out.push(`${r} ?`); continue; }
      if (st.isDirectory()) { out.push(`${r} d ${st.mode & 0o7777}`); walk(r); }
      else if (st.isSymbolicLink()) out.push(`${r} l ${fs.readlinkSync(p)}`);
      else if (st.isFile()) out.push(`${r} f ${st.mode & 0o7777} ${fs.readFileSync(p, 'latin1')}`);
      else out.push(`${r} o`);
    }
  };
  walk('');
  return out;
}

async function unionTree(u: UnionFs): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: number, rel: string): Promise<void> => {
    const names: { n: string; id: number }[] = [];
    let cookie = 0n;
    for (;;) {
      const p = u.readdir(dir, cookie, 50, false, rootCred);
      for (const e of p.entries) { cookie = e.cookie; const n = e.name.toString('latin1'); if (n !== '.' && n !== '..') names.push({ n, id: e.fileid }); }
      if (p.eof) break;
    }
    names.sort((a, c) => (a.n < c.n ? -1 : a.n > c.n ? 1 : 0));
    for (const { n, id } of names) {
      const r = rel ? `${rel}/${n}` : n;
      const a = u.getattr(id);
      if (a.type === FileType.DIR) { out.push(`${r} d ${a.mode}`); await walk(id, r); }
      else if (a.type === FileType.LNK) out.push(`${r} l ${u.readlink(id).toString('latin1')}`);
      else if (a.type === FileType.REG) out.push(`${r} f ${a.mode} ${(await u.read(id, 0, a.size + 1, rootCred)).data.toString('latin1')}`);
      else out.push(`${r} o`);
    }
  };
  await walk(u.root, '');
  return out;
}

const top: Entry[] = [['a/x', 'file', 'top-x'], ['a/gone', 'whiteout'], ['o', 'opaque'], ['o/new', 'file', 'n'], ['f', 'whiteout'],
  ['esc', 'symlink', '../../../../etc'], ['nd', 'file', 'file hides dir'], ['q/', 'dir']];
const mid: Entry[] = [['a/y', 'file', 'mid-y'], ['a/gone', 'file', 'hidden'], ['o/old', 'file', 'old'], ['f', 'file', 'f'], ['nd/z', 'file'], ['q/r/s', 'file', 's']];
const bottom: Entry[] = [['a/x', 'file', 'bottom-x'], ['a/z', 'file', 'bottom-z'], ['g', 'file', 'gg'], ['o/older', 'file'], ['q/r/t', 'file', 't']];

for (const format of ['oci', 'overlayfs'] as Format[]) {
  test(`${format}: merged tree equals kernel overlayfs`, async (t) => {
    if (!canMount()) { t.log('SKIPPED: needs root and overlayfs'); t.pass(); return; }
    if (format === 'oci') { t.pass('the kernel does not read OCI whiteouts; covered by read.test'); return; }
    const L = makeLayers(format, [top, mid, bottom]);
    const m = mountOverlay(L.lowers);
    try {
      const u = await openUnion({ lowers: L.lowers, whiteoutFormat: format, state: L.base + '/state' });
      t.deepEqual(await unionTree(u), kernelTree(m.dir));
      await u.close();
    } finally {
      m.umount();
      L.cleanup();
    }
  });
}

test('overlayfs-format upper written by the union reads the same under the kernel', async (t) => {
  if (!canMount()) { t.log('SKIPPED: needs root and overlayfs'); t.pass(); return; }
  const L = makeLayers('overlayfs', [top, mid, bottom]);
  try {
    const u = await openUnion({ lowers: L.lowers, upper: L.upper, workdir: L.workdir, whiteoutFormat: 'overlayfs' });
    const look = (p: string): number => p.split('/').reduce((id, c) => u.lookup(id, b(c), rootCred), u.root);
    await u.remove(look('a'), b('y'), rootCred);
    await u.write(look('a/z'), 0, b('Z'), 2, rootCred);
    await u.remove(look('q/r'), b('s'), rootCred);
    await u.remove(look('q/r'), b('t'), rootCred);
    await u.rmdir(look('q'), b('r'), rootCred);
    await u.mkdir(look('q'), b('r'), { mode: 0o750 }, rootCred);
    await u.create(look('q/r'), b('new'), { mode: 'unchecked', attr: { mode: 0o600 } }, rootCred);
    await u.rename(u.root, b('a'), look('q'), b('a2'), rootCred);
    await u.symlink(u.root, b('sl'), b('/nowhere'), {}, rootCred);
    const mine = await unionTree(u);
    await u.close();
    // the lower directory moved alone (redirect_dir): a redirect on its upper copy, its lower
    // files not copied
    t.is(execFileSync('getfattr', ['--absolute-names', '--only-values', '-n', 'trusted.overlay.redirect', path.join(L.upper, 'q/a2')], { encoding: 'latin1' }), '/a');
    t.deepEqual(fs.readdirSync(path.join(L.upper, 'q/a2')).sort(), ['y', 'z']);
    const work2 = path.join(L.base, 'kwork');
    fs.mkdirSync(work2);
    const m = mountOverlay(L.lowers, L.upper, work2);
    try {
      t.deepEqual(kernelTree(m.dir), mine);
    } finally {
      m.umount();
    }
  } finally {
    L.cleanup();
  }
});

test('an upper kernel overlayfs wrote with redirects, stacked as a lower, reads as under the kernel', async (t) => {
  if (!canMount()) { t.log('SKIPPED: needs root and overlayfs'); t.pass(); return; }
  const L = makeLayers('overlayfs', [top, mid, bottom]);
  try {
    const work = path.join(L.base, 'kwork');
    fs.mkdirSync(work);
    const m = mountOverlay(L.lowers, L.upper, work);
    try {
      fs.renameSync(path.join(m.dir, 'a'), path.join(m.dir, 'q/a2')); // to another directory: "/a"
      fs.renameSync(path.join(m.dir, 'q/r'), path.join(m.dir, 'q/r2')); // within its directory: "r"
      fs.rmSync(path.join(m.dir, 'q/a2/x'));
      fs.writeFileSync(path.join(m.dir, 'q/a2/new'), 'new');
    } finally {
      m.umount();
    }
    const redirect = (p: string): string => execFileSync('getfattr', ['--absolute-names', '--only-values', '-n', 'trusted.overlay.redirect', path.join(L.upper, p)], { encoding: 'latin1' });
    t.is(redirect('q/a2'), '/a');
    t.is(redirect('q/r2'), 'r');
    const lowers = [L.upper, ...L.lowers];
    const k = mountOverlay(lowers);
    try {
      const u = await openUnion({ lowers, whiteoutFormat: 'overlayfs', state: L.base + '/state' });
      const mine = await unionTree(u);
      await u.close();
      t.deepEqual(mine, kernelTree(k.dir));
      t.true(mine.includes('q/a2/y f 420 mid-y') && mine.includes('q/r2/t f 420 t'), 'the moved directories hold their lower files');
    } finally {
      k.umount();
    }
  } finally {
    L.cleanup();
  }
});

/** A layer with overlayfs xattr marks (setfattr): `marks` maps a path ('' = root) to name=value. */
function markedLayer(root: string, entries: Entry[], marks: [string, string, string][]): string {
  buildLayer(root, 'overlayfs', entries);
  for (const [p, name, value] of marks) execFileSync('setfattr', ['-n', name, '-v', value, path.join(root, p)]);
  return root;
}

for (const rootMarked of [true, false]) {
  test(`xattr whiteouts and marks read as the kernel reads them (layer root ${rootMarked ? '' : 'not '}marked "x")`, async (t) => {
    if (!canMount()) { t.log('SKIPPED: needs root and overlayfs'); t.pass(); return; }
    const base = mkTmp('unfs-xw-');
    try {
      // (user.overlay.* marks count for the union as for a userxattr mount: not compared here)
      const top = markedLayer(path.join(base, 'top'), [['w/gone', 'file'], ['w/here', 'file', 'h'], ['u/stays', 'file'], ['o/', 'dir']], [
        ...(rootMarked ? [['', 'trusted.overlay.opaque', 'x'] as [string, string, string]] : []),
        ['w', 'trusted.overlay.opaque', 'x'], ['w/gone', 'trusted.overlay.whiteout', ''],
        ['u/stays', 'trusted.overlay.whiteout', ''], ['o', 'trusted.overlay.opaque', 'y'],
      ]);
      const bottom = buildLayer(path.join(base, 'bottom'), 'overlayfs', [['w/gone', 'file', 'hidden'], ['w/kept', 'file', 'k'], ['o/old', 'file', 'old']]);
      const m = mountOverlay([top, bottom]);
      try {
        const u = await openUnion({ lowers: [top, bottom], whiteoutFormat: 'overlayfs', state: base + '/state' });
        const kernel = kernelTree(m.dir);
        // a name the kernel lists but cannot stat (an xattr whiteout in an unmarked directory)
        // is the empty file it is for the union (xattr.ts says why)
        t.deepEqual(kernel.filter((l) => l.endsWith(' ?')), ['u/stays ?']);
        t.deepEqual(await unionTree(u), kernel.map((l) => l.replace(/ \?$/, ' f 420 ')));
        t.true(kernel.some((l) => l.startsWith('w/kept')));
        await u.close();
      } finally {
        m.umount();
      }
      // the walk at open (hosts without the addon) and lgetxattr agree on every path
      const scanned = await scanFacts(top, true), live = await xattrFacts(top, true);
      const held = Beneath.acquire(top); // the layer a union would hold: lgetxattr reads through it
      try {
        for (const p of ['', '/w', '/w/gone', '/w/here', '/u', '/u/stays', '/o']) {
          const abs = top + p;
          t.deepEqual([scanned.opaque(abs), scanned.xwhiteouts(abs), scanned.xwhiteout(abs)], [live.opaque(abs), live.xwhiteouts(abs), live.xwhiteout(abs)], p);
        }
      } finally {
        held.release();
      }
    } finally {
      fs.rmSync(base, { recursive: true, force: true });
    }
  });
}
