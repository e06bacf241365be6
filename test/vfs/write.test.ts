import test from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { openUnion } from '../../src/vfs/index.js';
import { FileType, StableHow, type Cred, type UnionFs } from '../../src/vfs/types.js';
import { sys } from '../../src/vfs/syscalls.js';
import { canOverlayFormat, makeLayers, rootCred, treeDigest, type Entry, type Format, type TmpUnion } from '../helpers/layers.js';
import { cat, ls, walk } from '../helpers/union-paths.js';

const b = (s: string): Buffer => Buffer.from(s);

const lowerA: Entry[] = [['d/f', 'file', 'lower-f'], ['d/g', 'file', 'g'], ['d/sub/deep', 'file', 'deep'], ['e/', 'dir'], ['h', 'file', 'hh'], ['ln', 'symlink', '/etc/passwd']];
const lowerB: Entry[] = [['d/b', 'file', 'from-b'], ['d/sub/deep2', 'file', 'deep2'], ['only-b', 'file', 'ob']];

async function withUnion(t: import('ava').ExecutionContext, format: Format, fn: (u: UnionFs & { close(): Promise<void> }, L: TmpUnion) => Promise<void>): Promise<void> {
  const L = makeLayers(format, [lowerA, lowerB]);
  const before = L.lowers.map(treeDigest);
  try {
    const u = await openUnion({ lowers: L.lowers, upper: L.upper, workdir: L.workdir, whiteoutFormat: format });
    await fn(u, L);
    await u.close();
    t.deepEqual(fs.readdirSync(path.join(L.workdir, 'union-nfsd', 'tmp')), [], 'no temporaries left');
  } finally {
    t.deepEqual(L.lowers.map(treeDigest), before, 'lower layers unchanged');
    L.cleanup();
  }
}

for (const format of ['oci', 'overlayfs'] as Format[]) {
  const skip = (): boolean => format === 'overlayfs' && !canOverlayFormat();

  test(`${format}: write copies up, same id, lower untouched`, async (t) => {
    if (skip()) { t.pass(); return; }
    await withUnion(t, format, async (u, L) => {
      const f = walk(u, 'd/f');
      const h = u.handleOf(f);
      t.is(await u.write(f, 0, b('UPPER'), StableHow.FILE_SYNC, rootCred), StableHow.FILE_SYNC);
      t.is(await cat(u, 'd/f'), 'UPPER-f');
      t.is(u.resolve(h), f);
      t.is(walk(u, 'd/f'), f);
      t.is(u.getattr(f).fileid, f);
      t.is(fs.readFileSync(path.join(L.upper, 'd/f'), 'utf8'), 'UPPER-f');
      await u.setattr(walk(u, 'd/g'), { size: 0 }, rootCred);
      t.is(await cat(u, 'd/g'), '');
      t.deepEqual(await ls(u, 'd'), ['b', 'f', 'g', 'sub']);
    });
  });

  test(`${format}: remove leaves a whiteout; rmdir then mkdir is opaque; rmdir with whiteouts`, async (t) => {
    if (skip()) { t.pass(); return; }
    await withUnion(t, format, async (u, L) => {
      const f = walk(u, 'd/f');
      const hf = u.handleOf(f);
      await u.remove(walk(u, 'd'), b('f'), rootCred);
      t.throws(() => walk(u, 'd/f'), { code: 'ENOENT' });
      t.throws(() => u.resolve(hf), { code: 'ESTALE' });
      t.deepEqual(await ls(u, 'd'), ['b', 'g', 'sub']);
      // empty d/sub then rmdir it
      await u.remove(walk(u, 'd/sub'), b('deep'), rootCred);
      await t.throwsAsync(u.rmdir(walk(u, 'd'), b('sub'), rootCred), { code: 'ENOTEMPTY' });
      await u.remove(walk(u, 'd/sub'), b('deep2'), rootCred);
      await u.rmdir(walk(u, 'd'), b('sub'), rootCred);
      t.deepEqual(await ls(u, 'd'), ['b', 'g']);
      await u.mkdir(walk(u, 'd'), b('sub'), { mode: 0o755 }, rootCred);
      t.deepEqual(await ls(u, 'd/sub'), []);
      t.is(u.getattr(walk(u, 'd/sub')).type, FileType.DIR);
      // recreate a removed file
      const id = await u.create(walk(u, 'd'), b('f'), { mode: 'guarded', attr: { mode: 0o640 } }, rootCred);
      t.not(id, f);
      t.is(await cat(u, 'd/f'), '');
      t.is(u.getattr(id).mode, 0o640);
      // made over its whiteout: an OCI `.wh.f` is gone, a char-dev whiteout replaced by the file
      t.false(fs.existsSync(path.join(L.upper, 'd/.wh.f')));
      t.true(fs.lstatSync(path.join(L.upper, 'd/f')).isFile());
      // a marker name: refused in an OCI-format upper, a file like any other in an overlayfs one
      if (format === 'oci') await t.throwsAsync(u.create(walk(u, 'd'), b('.wh.x'), { mode: 'guarded', attr: {} }, rootCred), { code: 'EPERM' });
      else {
        const made = await u.create(walk(u, 'd'), b('.wh.x'), { mode: 'guarded', attr: {} }, rootCred);
        t.is(walk(u, 'd/.wh.x'), made);
      }
    });
  });

  test(`${format}: rename files and a lower directory keeps ids, survives restart`, async (t) => {
    if (skip()) { t.pass(); return; }
    const L = makeLayers(format, [lowerA, lowerB]);
    const before = L.lowers.map(treeDigest);
    const opts = { lowers: L.lowers, upper: L.upper, workdir: L.workdir, whiteoutFormat: format };
    try {
      let u = await openUnion(opts);
      const h = walk(u, 'h'), d = walk(u, 'd'), deep = walk(u, 'd/sub/deep');
      const dTimes = u.getattr(d).mtime, subTimes = u.getattr(walk(u, 'd/sub')).mtime;
      await u.rename(u.root, b('h'), walk(u, 'e'), b('h2'), rootCred);
      t.is(walk(u, 'e/h2'), h);
      t.throws(() => walk(u, 'h'), { code: 'ENOENT' });
      await u.rename(u.root, b('d'), walk(u, 'e'), b('dd'), rootCred);
      t.is(walk(u, 'e/dd'), d);
      t.is(walk(u, 'e/dd/sub/deep'), deep);
      t.deepEqual(await ls(u, 'e/dd'), ['b', 'f', 'g', 'sub']);
      t.deepEqual(await ls(u, 'e/dd/sub'), ['deep', 'deep2']);
      // as kernel overlayfs with redirect_dir=on: the moved directories keep their mtimes
      t.deepEqual([u.getattr(d).mtime, u.getattr(walk(u, 'e/dd/sub')).mtime], [dTimes, subTimes]);
      t.deepEqual(await ls(u, ''), ['e', 'ln', 'only-b']);
      const hh = u.handleOf(h), hd = u.handleOf(deep);
      await u.close();
      u = await openUnion(opts);
      t.is(u.resolve(hh), h);
      t.is(u.resolve(hd), deep);
      t.is(await cat(u, 'e/dd/sub/deep'), 'deep');
      t.is(walk(u, 'e/h2'), h);
      // mkdir d again: the lower d must stay hidden
      await u.mkdir(u.root, b('d'), {}, rootCred);
      t.deepEqual(await ls(u, 'd'), []);
      await u.close();
    } finally {
      t.deepEqual(L.lowers.map(treeDigest), before);
      L.cleanup();
    }
  });

  test(`${format}: link to a lower file shares the id`, async (t) => {
    if (skip()) { t.pass(); return; }
    await withUnion(t, format, async (u) => {
      const g = walk(u, 'd/g');
      await u.link(g, walk(u, 'e'), b('g2'), rootCred);
      t.is(walk(u, 'e/g2'), g);
      t.is(u.getattr(g).nlink, 2);
      await u.write(g, 0, b('G'), StableHow.UNSTABLE, rootCred);
      t.is(await cat(u, 'e/g2'), 'G');
      await u.remove(walk(u, 'd'), b('g'), rootCred);
      t.is(walk(u, 'e/g2'), g);
      t.is(u.getattr(g).nlink, 1);
    });
  });
}

test('permissions: non-root caller', async (t) => {
  await withUnion(t, 'oci', async (u) => {
    const alice: Cred = { uid: 1000, gid: 1000, gids: [1000] };
    await t.throwsAsync(u.create(walk(u, 'd'), b('x'), { mode: 'unchecked', attr: {} }, alice), { code: 'EACCES' });
    await u.setattr(walk(u, 'e'), { mode: 0o1777 }, rootCred);
    const id = await u.create(walk(u, 'e'), b('mine'), { mode: 'unchecked', attr: { mode: 0o600 } }, alice);
    const a = u.getattr(id);
    t.is(a.uid, 1000);
    t.is(a.gid, 1000);
    const bob: Cred = { uid: 1001, gid: 1001, gids: [] };
    await t.throwsAsync(u.remove(walk(u, 'e'), b('mine'), bob), { code: 'EPERM' });
    await t.throwsAsync(u.setattr(id, { uid: 1001 }, alice), { code: 'EPERM' });
    await t.throwsAsync(u.read(walk(u, 'e/mine'), 0, 10, bob), { code: 'EACCES' });
    await u.remove(walk(u, 'e'), b('mine'), alice);
  });
});

test('readdir cookies stay valid while entries change during a paging walk', async (t) => {
  const es: Entry[] = [];
  for (let i = 0; i < 300; i++) es.push([`big/f${i}`, 'file']);
  const L = makeLayers('oci', [es, [['big/zz', 'file']]]);
  try {
    const u = await openUnion({ lowers: L.lowers, upper: L.upper, workdir: L.workdir, whiteoutFormat: 'oci' });
    const d = walk(u, 'big');
    const seen = new Map<string, number>();
    let cookie = 0n;
    let step = 0;
    for (;;) {
      const p = u.readdir(d, cookie, 10, true, rootCred);
      for (const e of p.entries) { const n = e.name.toString(); seen.set(n, (seen.get(n) ?? 0) + 1); cookie = e.cookie; }
      // mutate: add new names, remove and copy up names we have not reached yet
      await u.create(d, b(`new${step}`), { mode: 'unchecked', attr: {} }, rootCred);
      if (step < 100) await u.remove(d, b(`f${299 - step}`), rootCred);
      await u.write(walk(u, `big/f${step}`), 0, b('x'), StableHow.UNSTABLE, rootCred);
      step++;
      if (p.eof) break;
    }
    for (const [n, c] of seen) t.is(c, 1, n);
    // every entry present throughout was listed exactly once
    for (let i = 0; i < 200; i++) t.is(seen.get(`f${i}`), 1, `f${i}`);
    t.is(seen.get('zz'), 1);
    await u.close();
  } finally {
    L.cleanup();
  }
});

test('concurrent copy-ups of one object give one copy; exclusive create retransmit', async (t) => {
  const big = Buffer.alloc(8 << 20, 7);
  const L = makeLayers('oci', [[['big', 'file', big], ['d/x', 'file', 'x']]]);
  const before = L.lowers.map(treeDigest);
  try {
    const u = await openUnion({ lowers: L.lowers, upper: L.upper, workdir: L.workdir, whiteoutFormat: 'oci' });
    const id = walk(u, 'big');
    await Promise.all([
      u.write(id, 0, b('A'), StableHow.UNSTABLE, rootCred),
      u.write(id, 1, b('B'), StableHow.UNSTABLE, rootCred),
      u.setattr(id, { mode: 0o600 }, rootCred),
    ]);
    await u.commit(id, 0, 0);
    const data = fs.readFileSync(path.join(L.upper, 'big'));
    t.is(data.length, big.length);
    t.is(data.subarray(0, 2).toString(), 'AB');
    t.is(u.getattr(id).mode, 0o600);
    const v = Buffer.from('12345678');
    const d = walk(u, 'd');
    const c1 = await u.create(d, b('ex'), { mode: 'exclusive', verifier: v }, rootCred);
    t.is(await u.create(d, b('ex'), { mode: 'exclusive', verifier: v }, rootCred), c1);
    await t.throwsAsync(u.create(d, b('ex'), { mode: 'exclusive', verifier: Buffer.from('87654321') }, rootCred), { code: 'EEXIST' });
    await t.throwsAsync(u.create(d, b('x'), { mode: 'guarded', attr: {} }, rootCred), { code: 'EEXIST' });
    await u.close();
    t.deepEqual(fs.readdirSync(path.join(L.workdir, 'union-nfsd', 'tmp')), []);
  } finally {
    t.deepEqual(L.lowers.map(treeDigest), before);
    L.cleanup();
  }
});

test('MKNOD with device numbers Linux cannot hold is EINVAL, and nothing is made', async (t) => {
  if (process.getuid?.() !== 0) {
    if (process.env['CI'] === 'true') t.fail('device nodes need root');
    else t.log('SKIPPED: device nodes need root');
    t.pass();
    return;
  }
  await withUnion(t, 'oci', async (u) => {
    for (const rdev of [{ major: 4096, minor: 0 }, { major: 1, minor: 1 << 20 }, { major: 659474538, minor: 909975083 }]) {
      await t.throwsAsync(u.mknod(u.root, b('dev'), FileType.CHR, {}, rdev, rootCred), { code: 'EINVAL' }, `${rdev.major}:${rdev.minor}`);
    }
    t.throws(() => walk(u, 'dev'), { code: 'ENOENT' });
    const id = await u.mknod(u.root, b('dev'), FileType.CHR, {}, { major: 4095, minor: 0xfffff }, rootCred);
    t.truthy(id, 'the largest numbers Linux holds are fine');
  });
});

/** Whether the syscalls addon is there; if not, says loudly what is skipped (fails under CI). */
function haveSyscalls(t: import('ava').ExecutionContext, what: string): boolean {
  if (sys !== undefined) return true;
  if (process.env['CI'] === 'true') t.fail('the syscalls addon was not built');
  else t.log(`SKIPPED: ${what} need the syscalls addon (npm install builds it)`);
  t.pass();
  return false;
}

test('sockets: MKNOD makes one, and a lower one is copied up by SETATTR and by renaming its directory', async (t) => {
  if (!haveSyscalls(t, 'sockets')) return;
  const L = makeLayers('oci', [[['sd/', 'dir'], ['sd/f', 'file', 'f']]]);
  try {
    sys!.mknod(Buffer.from(path.join(L.lowers[0]!, 'sd/sock')), fs.constants.S_IFSOCK | 0o640, 0, 0);
    const before = L.lowers.map(treeDigest);
    const u = await openUnion({ lowers: L.lowers, upper: L.upper, workdir: L.workdir, whiteoutFormat: 'oci' });
    const made = await u.mknod(u.root, b('mine'), FileType.SOCK, { mode: 0o600 }, { major: 0, minor: 0 }, rootCred);
    t.is(u.getattr(made).type, FileType.SOCK);
    t.true(fs.lstatSync(path.join(L.upper, 'mine')).isSocket());
    const lowerSock = walk(u, 'sd/sock');
    await u.setattr(lowerSock, { mode: 0o600 }, rootCred);
    t.deepEqual([u.getattr(lowerSock).type, u.getattr(lowerSock).mode], [FileType.SOCK, 0o600]);
    await u.rename(u.root, b('sd'), u.root, b('moved'), rootCred);
    t.true(fs.lstatSync(path.join(L.upper, 'moved/sock')).isSocket());
    t.is(walk(u, 'moved/sock'), lowerSock, 'same object after the rename');
    await u.close();
    t.deepEqual(fs.readdirSync(path.join(L.workdir, 'union-nfsd', 'tmp')), [], 'no temporaries left');
    t.deepEqual(L.lowers.map(treeDigest), before, 'lower layer unchanged');
  } finally {
    L.cleanup();
  }
});

test('times to the nanosecond: SETATTR and CREATE keep what the client sent, copy-up keeps the lower file\'s', async (t) => {
  if (!haveSyscalls(t, 'nanosecond times')) return;
  const L = makeLayers('oci', [[['f', 'file', 'f'], ['g', 'file', 'g']]]);
  try {
    // a lower mtime with nanoseconds a double cannot hold (1.7e9 s + 123456789 ns)
    sys!.lutimens(Buffer.from(path.join(L.lowers[0]!, 'g')), 1_700_000_000, 987654321, 1_700_000_000, 123456789);
    const u = await openUnion({ lowers: L.lowers, upper: L.upper, workdir: L.workdir, whiteoutFormat: 'oci' });
    const f = walk(u, 'f');
    await u.setattr(f, { mtime: { how: 'client', time: { sec: 1000, nsec: 200_000_000 } } }, rootCred);
    t.deepEqual(u.getattr(f).mtime, { sec: 1000, nsec: 200_000_000 });
    const before = u.getattr(f).atime;
    await u.setattr(f, { atime: { how: 'client', time: { sec: 2000, nsec: 1 } } }, rootCred);
    t.deepEqual([u.getattr(f).atime, u.getattr(f).mtime], [{ sec: 2000, nsec: 1 }, { sec: 1000, nsec: 200_000_000 }], 'the other time stays');
    t.notDeepEqual(before, u.getattr(f).atime);
    const c = await u.create(u.root, b('new'), { mode: 'unchecked', attr: { mtime: { how: 'client', time: { sec: 3000, nsec: 999_999_999 } } } }, rootCred);
    t.deepEqual(u.getattr(c).mtime, { sec: 3000, nsec: 999_999_999 });
    const g = walk(u, 'g');
    await u.setattr(g, { mode: 0o600 }, rootCred); // copy-up
    t.deepEqual([u.getattr(g).atime, u.getattr(g).mtime], [{ sec: 1_700_000_000, nsec: 987654321 }, { sec: 1_700_000_000, nsec: 123456789 }]);
    await u.close();
  } finally {
    L.cleanup();
  }
});

test('overlayfs: REMOVE and RMDIR of upper objects that hide lower ones put the whiteout in their place in one step', async (t) => {
  if (!canOverlayFormat()) { t.pass(); return; }
  const L = makeLayers('overlayfs', [[['f', 'file', 'lower f'], ['d/x', 'file', 'x']]]);
  const tmp = path.join(L.workdir, 'union-nfsd', 'tmp');
  try {
    const u = await openUnion({ lowers: L.lowers, upper: L.upper, workdir: L.workdir, whiteoutFormat: 'overlayfs' });
    await u.write(walk(u, 'f'), 0, b('upper f'), StableHow.FILE_SYNC, rootCred);
    const d = walk(u, 'd');
    await u.remove(d, b('x'), rootCred);
    t.true(fs.statSync(path.join(L.upper, 'd')).isDirectory(), 'd copied up, with a whiteout of x');
    // a whiteout that cannot be made (an immutable workdir) must leave the objects as they were
    execFileSync('chattr', ['+i', tmp]);
    try {
      await t.throwsAsync(u.remove(u.root, b('f'), rootCred));
      t.is(fs.readFileSync(path.join(L.upper, 'f'), 'utf8'), 'upper f', 'the upper file is still there');
      await t.throwsAsync(u.rmdir(u.root, b('d'), rootCred));
      t.true(fs.statSync(path.join(L.upper, 'd')).isDirectory(), 'the upper directory is still there');
    } finally {
      execFileSync('chattr', ['-i', tmp]);
    }
    t.is(await cat(u, 'f'), 'upper f', 'never the lower file');
    // a file a local process put in the upper directory, unknown to the cached listing
    fs.writeFileSync(path.join(L.upper, 'd', 'local'), 'mine');
    await t.throwsAsync(u.rmdir(u.root, b('d'), rootCred), { code: 'ENOTEMPTY' });
    t.is(fs.readFileSync(path.join(L.upper, 'd', 'local'), 'utf8'), 'mine', 'and it is kept');
    fs.unlinkSync(path.join(L.upper, 'd', 'local'));
    await u.remove(u.root, b('f'), rootCred);
    await u.rmdir(u.root, b('d'), rootCred);
    for (const n of ['f', 'd']) {
      const st = fs.lstatSync(path.join(L.upper, n));
      t.true(st.isCharacterDevice() && st.rdev === 0, `${n} is a whiteout`);
    }
    t.throws(() => walk(u, 'f'), { code: 'ENOENT' });
    t.throws(() => walk(u, 'd'), { code: 'ENOENT' });
    await u.close();
    t.deepEqual(fs.readdirSync(tmp), [], 'no temporaries left');
  } finally {
    L.cleanup();
  }
});

test('overlayfs: RENAME of an upper object that hides a lower one leaves the whiteout in the same step', async (t) => {
  if (!canOverlayFormat()) { t.pass(); return; }
  const L = makeLayers('overlayfs', [[['f', 'file', 'lower f']]]);
  const tmp = path.join(L.workdir, 'union-nfsd', 'tmp');
  try {
    const u = await openUnion({ lowers: L.lowers, upper: L.upper, workdir: L.workdir, whiteoutFormat: 'overlayfs' });
    const f = walk(u, 'f');
    await u.write(f, 0, b('upper f'), StableHow.FILE_SYNC, rootCred);
    // nothing may be made in the workdir: the whiteout must come with the rename itself
    execFileSync('chattr', ['+i', tmp]);
    try {
      await u.rename(u.root, b('f'), u.root, b('g'), rootCred);
    } finally {
      execFileSync('chattr', ['-i', tmp]);
    }
    t.is(walk(u, 'g'), f);
    t.is(await cat(u, 'g'), 'upper f');
    t.throws(() => walk(u, 'f'), { code: 'ENOENT' }, 'the lower f stays hidden');
    const st = fs.lstatSync(path.join(L.upper, 'f'));
    t.true(st.isCharacterDevice() && st.rdev === 0);
    await u.close();
  } finally {
    L.cleanup();
  }
});

test('offsets and sizes past 2^53: a WRITE or truncate there is EFBIG, a READ there is past the end; none is moved to a nearby offset', async (t) => {
  await withUnion(t, 'oci', async (u) => {
    const f = walk(u, 'h');
    for (const offset of [2 ** 53, Infinity, Number.MAX_SAFE_INTEGER]) {
      await t.throwsAsync(u.write(f, offset, b('x'), StableHow.UNSTABLE, rootCred), { code: 'EFBIG' }, `WRITE at ${offset}`);
    }
    await t.throwsAsync(u.setattr(f, { size: Infinity }, rootCred), { code: 'EFBIG' });
    const r = await u.read(f, Infinity, 10, rootCred);
    t.deepEqual([r.data.length, r.eof], [0, true]);
    t.is(await cat(u, 'h'), 'hh', 'the file is as it was');
  });
});
