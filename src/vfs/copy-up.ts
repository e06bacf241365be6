/**
 * copy-up: moving a lower object into the upper layer before it is changed.
 *
 * Rule (overlayfs copy_up.c): parents first (each with its lower directory's owner, mode and
 * times), then the object itself: data, mode, owner, times and symlink target are written to
 * a temporary in <workdir>/union-nfsd/tmp and renamed into place, so a crash never leaves a
 * partial object visible (a file's data is fsynced before the rename, as overlayfs does, so
 * after a power loss too); the temporaries are removed when the union opens. The object keeps
 * its id: its identity record gets the upper key before the rename (the origin key stays, so
 * a crash between the two still resolves). A SETATTR to size 0 copies no data. Data moves on
 * the libuv thread pool (a reflink where the file system shares blocks, else copy_file_range
 * in 16 MiB steps), so a multi-GiB copy-up never blocks the event loop.
 * A directory rename whose redirect record would be too long copies the whole subtree up
 * (copyUpTree) and marks it opaque: see dir-ops.ts and redirect.ts.
 * Example: WRITE to lower /a/b/f -> mkdir upper/a, upper/a/b (lower metadata), copy f to
 * tmp/#x, chown/chmod/utimes, rename to upper/a/b/f; node f: layer 2 -> 0, same id.
 * Races: two copy-ups of one object share one promise (the second waits for the first); the
 * destination path is computed from the node tree after the data copy, synchronously with the
 * rename, so a rename of a parent during the copy is followed. REMOVE and RENAME over the
 * object wait for its copy-up (dir-ops.ts settled); should its identity record be gone all
 * the same when the copy is done, the copy is dropped with ESTALE instead of being renamed
 * into place, where it would bring a removed file back or overwrite a new one of the same
 * name. ENOSPC removes the temporary and leaves the lower object as it was.
 */
import * as fs from 'node:fs';
import { FsError, hasErrnoCode } from '../errors/fs-error.js';
import { child } from '../log.js';
import type { Node } from './node.js';
import type { Union } from './union.js';
import { FileType } from './types.js';
import { pathBuf, WH_OPAQUE, WH_PREFIX } from './names.js';
import { isWhiteoutDev, writeOpaque } from './whiteout.js';
import { lstatIn, lstatQuiet, single } from './namei.js';
import { vfsCounters } from './stats.js';
import { devNumbers, makeNode } from './special.js';
import { copyTimes, timeOfNs } from './times.js';
import { INDEX_MARK } from './metadata-sync.js';
import { sys } from './syscalls.js';

const log = child('vfs');

/** Empty the workdir's temporaries (crash leftovers) and return the tmp dir (binary string). */
export function prepareWorkdir(workdir: string): { tmp: string; index: string } {
  const tmp = workdir + '/union-nfsd/tmp';
  const index = workdir + '/union-nfsd/index';
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true, mode: 0o700 });
  fs.mkdirSync(index, { recursive: true, mode: 0o700 });
  return { tmp: Buffer.from(tmp, 'utf8').toString('latin1'), index: Buffer.from(index, 'utf8').toString('latin1') };
}

export function copyUp(u: Union, n: Node, opts?: { noData?: boolean }): Promise<void> {
  if (n.layer === 0) return Promise.resolve();
  const inflight = u.copyUps.get(n.id);
  if (inflight !== undefined) return inflight;
  const p = doCopyUp(u, n, opts?.noData === true).finally(() => u.copyUps.delete(n.id));
  u.copyUps.set(n.id, p);
  return p;
}

/** Counted in vfsCounters: this object's own copy, its parents' being counted as theirs. */
async function doCopyUp(u: Union, n: Node, noData: boolean): Promise<void> {
  if (n.id !== 1) await copyUp(u, u.node(n.parent));
  if (n.layer === 0) return;
  const t0 = performance.now();
  const src = u.path(n); // good until the next await (beneath.ts): copyDurably opens it first
  const st = fs.lstatSync(src, { bigint: true });
  const tmp = pathBuf(u.tmpName());
  let indexed: { index: Buffer; nlinkOff: number } | undefined;
  try {
    switch (n.type) {
      case FileType.REG:
        if (noData) fs.closeSync(fs.openSync(tmp, 'wx', 0o600));
        else await copyDurably(src, tmp);
        break;
      case FileType.DIR: fs.mkdirSync(tmp, 0o700); break;
      case FileType.LNK: fs.symlinkSync(fs.readlinkSync(src, { encoding: 'buffer' }), tmp); break;
      default: await makeNode(tmp, n.type, ...devNumbers(Number(st.rdev)));
    }
    fs.lchownSync(tmp, Number(st.uid), Number(st.gid));
    if (n.type !== FileType.LNK) fs.chmodSync(tmp, Number(st.mode) & 0o7777);
    copyTimes(tmp, timeOfNs(st.atimeNs), timeOfNs(st.mtimeNs));
    // Everything below is synchronous: the destination is where the node is *now*.
    if (n.layer === 0) throw new Error('raced copy-up');
    const rec = u.store.get(n.id);
    if (rec === undefined) throw new FsError('ESTALE', 'removed during its copy-up');
    const tst = fs.lstatSync(tmp, { bigint: true });
    u.store.put({ ...rec, key: { layer: 0, dev: tst.dev, ino: tst.ino } });
    u.store.flush();
    const parent = u.node(n.parent);
    if (parent.layer !== 0) throw new Error('parent not copied up');
    if (n.type !== FileType.DIR && st.nlink > 1n && u.links.enabled) {
      // A lower hard link: index the copy by the lower inode first, so every other name of it
      // (seen or not yet seen) resolves to this copy (link-index.ts).
      indexed = u.links.enter(tmp, st);
    }
    fs.renameSync(tmp, u.upperPath(u.rel(n)));
    u.meta.mark(n.parent);
    if (indexed !== undefined) {
      u.meta.mark(INDEX_MARK);
      n.index = indexed.index;
      n.nlinkOff = indexed.nlinkOff;
    }
  } catch (e) {
    const removed = hasErrnoCode(e) && e.code === 'ESTALE';
    if (!removed) vfsCounters.copyUpFailures++;
    fs.rmSync(tmp, { recursive: true, force: true });
    if (indexed !== undefined) u.links.discard(indexed.index);
    if (hasErrnoCode(e)) {
      if (e.code !== 'ENOSPC' && e.code !== 'EDQUOT' && !removed) log.error('copy-up failed', { id: n.id, code: e.code });
      throw new FsError(e.code, `copy-up: ${String((e as unknown as Error).message)}`);
    }
    throw e;
  }
  n.layer = 0;
  n.stack = n.type === FileType.DIR ? [0, ...n.stack] : single(0);
  n.attr = null;
  u.dirs.touch(n.parent, n.name);
  u.fds.drop(n.id);
  vfsCounters.copyUps++;
  if (n.type === FileType.REG && !noData) vfsCounters.copyUpBytes += Number(st.size);
  vfsCounters.copyUpSeconds += (performance.now() - t0) / 1000;
}

/**
 * The data of `src` into the new file `tmp`, on disk before the copy is renamed into place
 * (overlayfs fsyncs its copy-up too): after a power loss the upper copy, which hides the
 * intact lower file, must not be empty or short. src is opened before anything is awaited;
 * the copy (a reflink, else copy_file_range 16 MiB at a time) and the fsync run as one job on
 * the thread pool (the syscalls addon), or as copyFile and fsync without it.
 */
async function copyDurably(src: Buffer, tmp: Buffer): Promise<void> {
  if (sys === undefined) {
    await fs.promises.copyFile(src, tmp, fs.constants.COPYFILE_EXCL);
    const fh = await fs.promises.open(tmp, fs.constants.O_RDONLY);
    try { await fh.sync(); } finally { await fh.close(); }
    return;
  }
  const inFd = fs.openSync(src, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const outFd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
    try { await sys.copyData(inFd, outFd); } finally { fs.closeSync(outFd); }
  } finally {
    fs.closeSync(inFd);
  }
}

/**
 * Copy a directory and everything below it up, then make it opaque (its merge is complete).
 * Each directory keeps the times it had before: what is copied into it is no change of its
 * own (kernel overlayfs, redirect_dir=on, moves the directory alone and its mtime stays).
 */
export async function copyUpTree(u: Union, d: Node): Promise<void> {
  await copyUp(u, d);
  if (d.stack.length === 1) return; // upper only: nothing below to copy
  const times = lstatIn(u.layers, 0, u.rel(d));
  const l = u.dirs.get(d);
  for (const name of [...l.names]) {
    const c = u.child(d, name);
    if (c === null) continue;
    if (c.type === FileType.DIR) await copyUpTree(u, c);
    else {
      await copyUp(u, c);
      // an indexed hard link whose copy sits under another name: link it here too
      const here = u.upperPath(u.rel(d) + '/' + name);
      if (c.index !== undefined && lstatQuiet(here) === undefined) {
        fs.linkSync(c.index, here);
        u.dirs.touch(d.id, name);
        u.links.setOff(c, (c.nlinkOff ?? 0) - 1);
      }
    }
  }
  const dir = u.layers.dirAt(0, u.rel(d));
  writeOpaque(u.whiteoutFormat, dir, u.facts[0]!);
  // Whiteouts in an opaque directory hide nothing; kernel overlayfs would list them (it reads a
  // non-merged directory as is), so they go.
  for (const de of fs.readdirSync(dir.inside, { withFileTypes: true, encoding: 'buffer' }) as unknown as fs.Dirent[]) {
    const nm = (de.name as unknown as Buffer).toString('latin1');
    const p = pathBuf(dir.inside + '/' + nm);
    const marker = u.layers.markers(0) && nm.startsWith(WH_PREFIX) && nm !== WH_OPAQUE;
    if (marker || (de.isCharacterDevice() && isWhiteoutDev(fs.lstatSync(p)))) fs.unlinkSync(p);
  }
  if (times !== undefined) copyTimes(u.upperPath(u.rel(d)), timeOfNs(times.atimeNs), timeOfNs(times.mtimeNs));
  d.stack = [0];
  u.dirs.forget(d.id);
  u.meta.mark(d.id);
}

