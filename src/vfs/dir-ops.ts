/**
 * dir-ops: the modifying operations over the union (overlayfs dir.c and inode.c).
 *
 * Rules:
 * - Permission checks run first, against the merged objects, with the caller's credentials;
 *   then parents are copied up; then the change lands in the upper layer only.
 * - New objects are built complete (owner = caller, gid from a setgid parent, mode, opaque
 *   marker) as temporaries in the workdir and renamed into place; a regular file that
 *   open(O_CREAT|O_EXCL) alone makes complete is created in place (createInPlace). A name
 *   whited out in upper is reused: the new object replaces a char-dev whiteout atomically, an
 *   OCI `.wh.<name>` is removed after the object exists (a real entry wins over its own
 *   layer's whiteout). A directory made over a name that exists below is opaque (rmdir then
 *   mkdir = opaque dir).
 * - REMOVE/RMDIR of a name present below leaves a whiteout (OCI: written before the upper
 *   object is removed, so a crash shows the old state). RMDIR of a directory whose merged view
 *   is empty removes the upper copy with the whiteouts it holds, after moving it to the workdir
 *   in one step (overlayfs format: swapped with the whiteout, replaceByWhiteout).
 * - RENAME of a directory that exists below (overlayfs redirect_dir=on): the directory alone
 *   is copied up, its upper copy records where its lower part is (redirect.ts), and it is
 *   renamed like any upper directory; the old name gets a whiteout. The cost does not grow with
 *   the subtree. Only a record longer than REDIRECT_MAX makes the subtree be copied up and the
 *   directory marked opaque instead. A directory moved over an empty one whose upper copy holds
 *   whiteouts takes its place in one renameat2(RENAME_EXCHANGE) (exchangeOverEmptyDir), so the
 *   names those whiteouts hide never show.
 * - Hard links (overlayfs index=on): lower hard links share one id (found by backing key), and
 *   a copied-up one is found by all its names through the index (link-index.ts). REMOVE or
 *   RENAME-over of a lower-only name of such a file copies it up first (as overlayfs does), so
 *   the union's link count is kept; the index entry goes with the last name. LINK links the
 *   copy in upper. A lower-only name renamed, or inside a directory subtree copied up for a
 *   rename, gets an upper hard link of the copy (never a second copy).
 * Example: lower d/f, REMOVE d/f -> upper/d/ (copied up), upper/d/.wh.f (OCI).
 * Races: paths are recomputed after every await; a name checked before an await is checked
 * again after it. A call that ends or replaces an object's name (REMOVE, RENAME over it) first
 * waits for the object's copy-up in flight (settled); LINK and SETATTR join it (copyUp). No
 * wait can close a cycle: a copy-up waits only for its parents' copy-ups (parent before
 * child), never for a call.
 */
import * as fs from 'node:fs';
import { FsError } from '../errors/fs-error.js';
import type { Node } from './node.js';
import type { Union } from './union.js';
import { FileType, MAX_FILE_SIZE, StableHow, type Attr, type CreateHow, type Cred, type NodeId, type SetAttr } from './types.js';
import { check, checkSticky, inGroup, W, X } from './access.js';
import { pathBuf, WH_PREFIX } from './names.js';
import { findInLayers, isOpaque, lstatQuiet } from './namei.js';
import { isWhiteoutDev, writeOpaque, writeWhiteout } from './whiteout.js';
import { copyUp, copyUpTree } from './copy-up.js';
import { makeNode, makeWhiteoutDev } from './special.js';
import { RENAME_EXCHANGE, RENAME_WHITEOUT, sys } from './syscalls.js';
import { workdirDir, type DirAt } from './layers.js';
import { setTimes } from './times.js';
import { dropRedirect, prepareRedirect, recordRedirect, type PreparedRedirect } from './redirect.js';

const S_ISUID = 0o4000, S_ISGID = 0o2000;
const SERVER_UID = process.geteuid?.() ?? -1;
const SERVER_GID = process.getegid?.() ?? -1;
/** Read once (process.umask() has no getter that leaves it alone); the server never changes it. */
const UMASK = process.umask();

function lowerStack(d: Node): number[] {
  return d.stack.filter((i) => i !== 0);
}

/** Does the name exist (unhidden) in one of the directory's lower layers? */
function existsBelow(u: Union, d: Node, name: string): boolean {
  const ls = lowerStack(d);
  return ls.length > 0 && findInLayers(u.layers, u.facts, ls, u.rels(d), name) !== null;
}

/** A lower non-directory with other hard links: copied up before a name of it is removed. */
function lowerHardlink(u: Union, n: Node): boolean {
  return u.links.enabled && n.layer !== 0 && n.type !== FileType.DIR && u.getattr(n.id).nlink > 1;
}

/** Is the upper entry at `p` the indexed object's copy (vs. a lower-only name of it)? */
function upperIsCopy(n: Node, p: Buffer): boolean {
  if (n.index === undefined) return lstatQuiet(p) !== undefined;
  const a = lstatQuiet(p), b = lstatQuiet(n.index);
  return a !== undefined && b !== undefined && a.ino === b.ino && a.dev === b.dev;
}

function checkDirWrite(u: Union, d: Node, cred: Cred): Attr {
  const a = u.getattr(d.id);
  check(a, cred, W | X);
  return a;
}

/** Put a finished temporary at upper <dir>/<name>, clearing any whiteout of that name. */
function install(u: Union, d: Node, name: string, tmp: Buffer, isDir: boolean): void {
  const dirRel = u.rel(d);
  const dst = u.upperPath(dirRel + '/' + name);
  const st = lstatQuiet(dst);
  if (st !== undefined) {
    if (!isWhiteoutDev(st)) throw new FsError('EEXIST');
    if (isDir) fs.unlinkSync(dst);
  }
  fs.renameSync(tmp, dst);
  clearOciWhiteout(u, dirRel, name);
}

/**
 * A real entry now exists at upper <dirRel>/<name>: in an OCI-format upper its own `.wh.<name>`
 * goes (in an overlayfs-format one that is a file of its own).
 */
function clearOciWhiteout(u: Union, dirRel: string, name: string): void {
  if (u.whiteoutFormat !== 'oci' || name.length + WH_PREFIX.length > 255) return;
  const wh = u.upperPath(dirRel + '/' + WH_PREFIX + name);
  if (lstatQuiet(wh) !== undefined) fs.unlinkSync(wh);
}

/**
 * A regular file that open(2) alone makes complete (the server's owner, a mode the umask
 * leaves whole, no times or size to set) is created at its final name with O_EXCL, as
 * overlayfs creates in upper: it is whole from its first instant, so the temporary and the
 * rename buy nothing (a rename and an lstat fewer per CREATE). false when that does not
 * apply or the name is taken in upper (a char-dev whiteout to replace atomically): the
 * caller then builds a temporary, with its full checks.
 */
function createInPlace(u: Union, d: Node, name: string, own: { uid: number; gid: number }, mode: number, attr: SetAttr): boolean {
  if (!serverOwned(own) || !modeAsMade(mode)) return false;
  if (attr.atime !== undefined || attr.mtime !== undefined || (attr.size !== undefined && attr.size > 0)) return false;
  const dirRel = u.rel(d);
  let fd: number;
  try {
    // O_EXCL: never follows a symlink at the name, never truncates what is there
    fd = fs.openSync(u.upperPath(dirRel + '/' + name), fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, mode);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
  fs.closeSync(fd);
  clearOciWhiteout(u, dirRel, name);
  return true;
}

/** The owner a new object of ours gets without a chown. */
function serverOwned(own: { uid: number; gid: number }): boolean {
  return own.uid === SERVER_UID && own.gid === SERVER_GID;
}

/** A mode open(2) and mkdir(2) give as asked: no special bits, none the umask clears. */
function modeAsMade(mode: number): boolean {
  return (mode & ~0o777) === 0 && (mode & UMASK) === 0;
}

/** Register a newly made upper object as the child `name` of `d`. */
function adopt(u: Union, d: Node, name: string): Node {
  d.attr = null;
  d.children?.delete(name);
  const stale = u.store.idByName(d.id, name);
  if (stale !== undefined) u.forgetName(stale, d.id, name);
  u.dirs.add(d.id, name);
  // the reply carries the new object's attributes: kept from the lstat its lookup makes
  const n = u.childWithAttr(d, name);
  if (n === null) throw new FsError('EIO', 'created object not found');
  if (n.type === FileType.DIR) u.dirs.made(n);
  return n;
}

function newOwner(dirAttr: Attr, cred: Cred): { uid: number; gid: number; sgid: boolean } {
  const sgid = (dirAttr.mode & S_ISGID) !== 0;
  return { uid: cred.uid, gid: sgid ? dirAttr.gid : cred.gid, sgid };
}

export async function mknodAny(u: Union, d: Node, name: string, type: FileType, attr: SetAttr, cred: Cred,
  x: { target: Buffer | undefined; rdev: { major: number; minor: number } | undefined }): Promise<NodeId> {
  const dirAttr = checkDirWrite(u, d, cred);
  if (u.child(d, name) !== null) throw new FsError('EEXIST');
  if ((type === FileType.CHR || type === FileType.BLK) && cred.uid !== 0) throw new FsError('EPERM');
  await copyUp(u, d);
  if (u.child(d, name) !== null) throw new FsError('EEXIST');
  const own = newOwner(dirAttr, cred);
  let mode = (attr.mode ?? (type === FileType.DIR ? 0o755 : 0o644)) & 0o7777;
  if (type === FileType.DIR && own.sgid) mode |= S_ISGID;
  if (type !== FileType.DIR && cred.uid !== 0 && (mode & S_ISGID) && !inGroup(cred, own.gid)) mode &= ~S_ISGID;
  if (type === FileType.REG && createInPlace(u, d, name, own, mode, attr)) return adopt(u, d, name).id;
  const tmp = pathBuf(u.tmpName());
  try {
    switch (type) {
      case FileType.DIR: fs.mkdirSync(tmp, mode & 0o777); break;
      case FileType.LNK: fs.symlinkSync(x.target ?? Buffer.alloc(0), tmp); break;
      case FileType.REG: fs.closeSync(fs.openSync(tmp, 'wx', mode & 0o777)); break;
      default: await makeNode(tmp, type, x.rdev?.major ?? 0, x.rdev?.minor ?? 0);
    }
    // The temporary is invisible until renamed (the workdir is 0700): it may start with the
    // server's owner and the umask's mode, and only what differs is changed (two fewer
    // syscalls per CREATE from root). chown clears setuid/setgid, so chmod comes after it.
    if (!serverOwned(own)) fs.lchownSync(tmp, own.uid, own.gid);
    const madeWithMode = (type === FileType.REG || type === FileType.DIR) && modeAsMade(mode);
    if (type !== FileType.LNK && !madeWithMode) fs.chmodSync(tmp, mode);
    if (type === FileType.DIR && existsBelow(u, d, name)) writeOpaque(u.whiteoutFormat, workdirDir(tmp.toString('latin1')), u.facts[0]!);
    setTimes(tmp, attr.atime, attr.mtime);
    if (type === FileType.REG && attr.size !== undefined && attr.size > 0) fs.truncateSync(tmp, attr.size);
    // After the awaits above: the name may have been taken meanwhile.
    if (u.child(d, name) !== null) throw new FsError('EEXIST');
    install(u, d, name, tmp, type === FileType.DIR);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  if (type === FileType.DIR) {
    // the opaque marker written into tmp now lives under the final path
    const tmpS = tmp.toString('latin1');
    u.facts[0]!.moved(tmpS, u.layers.s(0, u.rel(d) + '/' + name));
  }
  return adopt(u, d, name).id;
}

export async function create(u: Union, d: Node, name: string, how: CreateHow, cred: Cred): Promise<NodeId> {
  const existing = u.child(d, name);
  if (existing !== null) {
    checkDirWrite(u, d, cred);
    if (how.mode === 'guarded') throw new FsError('EEXIST');
    if (how.mode === 'exclusive') {
      const a = u.getattr(existing.id);
      if (existing.type === FileType.REG && a.atime.sec === how.verifier.readUInt32BE(0) && a.mtime.sec === how.verifier.readUInt32BE(4)) {
        return existing.id; // a retransmitted exclusive create
      }
      throw new FsError('EEXIST');
    }
    if (existing.type === FileType.DIR) throw new FsError('EISDIR');
    if (how.attr.size !== undefined) await setattr(u, existing, { size: how.attr.size }, cred);
    return existing.id;
  }
  if (how.mode === 'exclusive') {
    // The verifier is kept in atime/mtime seconds (as knfsd and unfs3 do): durable, and a
    // retransmit finds it. The client sets the real times with a SETATTR afterwards.
    const v = how.verifier;
    const id = await mknodAny(u, d, name, FileType.REG, {
      mode: 0o600,
      atime: { how: 'client', time: { sec: v.readUInt32BE(0), nsec: 0 } },
      mtime: { how: 'client', time: { sec: v.readUInt32BE(4), nsec: 0 } },
    }, cred, { target: undefined, rdev: undefined });
    const fd = fs.openSync(u.path(u.node(id)), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
    return id;
  }
  return mknodAny(u, d, name, FileType.REG, how.attr, cred, { target: undefined, rdev: undefined });
}

export async function remove(u: Union, d: Node, name: string, isDir: boolean, cred: Cred): Promise<void> {
  const dirAttr = checkDirWrite(u, d, cred);
  let n = u.child(d, name);
  if (n === null) throw new FsError('ENOENT');
  checkSticky(dirAttr, u.getattr(n.id), cred);
  if (isDir && n.type !== FileType.DIR) throw new FsError('ENOTDIR');
  if (!isDir && n.type === FileType.DIR) throw new FsError('EISDIR');
  if (isDir && u.dirs.get(n).names.length > 0) throw new FsError('ENOTEMPTY');
  if (isDir && n.id === u.root) throw new FsError('EBUSY');
  if (lowerHardlink(u, n)) await copyUp(u, n);
  await settled(u, n);
  await copyUp(u, d);
  // re-check after the await
  n = u.child(d, name);
  if (n === null) throw new FsError('ENOENT');
  if (isDir && (n.type !== FileType.DIR || u.dirs.get(n).names.length > 0)) throw new FsError('ENOTEMPTY');
  const dirRel = u.rel(d);
  const objUpper = u.upperPath(dirRel + '/' + name);
  const below = n.layer !== 0 || existsBelow(u, d, name);
  // an indexed hard link removed by a name that only exists below: whiteout only
  const upperName = n.layer === 0 && upperIsCopy(n, objUpper);
  if (below && u.whiteoutFormat === 'oci') writeWhiteout('oci', u.layers.dirAt(0, dirRel), name, '');
  if (upperName && below && u.whiteoutFormat === 'overlayfs') {
    replaceByWhiteout(u, n.type === FileType.DIR, dirRel + '/' + name);
    if (n.type === FileType.DIR) upperDirGone(u, dirRel + '/' + name);
  } else if (upperName) {
    if (n.type === FileType.DIR) retireEmptyUpperDir(u, dirRel + '/' + name);
    else fs.unlinkSync(objUpper);
    if (n.type === FileType.DIR) upperDirGone(u, dirRel + '/' + name);
  } else if (n.layer === 0 && n.index === undefined) {
    throw new FsError('EIO', 'upper copy missing');
  } else if (below && u.whiteoutFormat === 'overlayfs') {
    writeWhiteout('overlayfs', u.layers.dirAt(0, dirRel), name, u.tmpName());
  }
  if (n.index !== undefined) {
    if (!upperName) u.links.setOff(n, (n.nlinkOff ?? 0) - 1);
    u.links.settle(n);
  }
  const wasId = n.id;
  u.dirs.remove(d.id, name);
  d.attr = null;
  n.attr = null;
  u.forgetName(wasId, d.id, name);
}

/**
 * An upper object that hides lower ones gives its name to an overlayfs whiteout in one step, as
 * the kernel's ovl_remove_and_whiteout does: the whiteout is made in the workdir, then renamed
 * over a non-directory, or swapped with a directory (renameat2 RENAME_EXCHANGE) whose old copy
 * is then removed from the workdir. A crash leaves the object or the whiteout, never neither
 * (which would show the lower object again); the workdir's tmp/ is emptied at start. Without
 * the syscalls addon a directory is removed first and the whiteout made after.
 */
function replaceByWhiteout(u: Union, isDir: boolean, rel: string): void {
  const tmp = pathBuf(u.tmpName());
  const objUpper = u.upperPath(rel);
  if (isDir && sys === undefined) {
    removeEmptyUpperDir(u.layers.dirAt(0, rel), u.layers.markers(0));
    makeWhiteoutDev(tmp);
    fs.renameSync(tmp, objUpper);
    return;
  }
  makeWhiteoutDev(tmp);
  if (!isDir) {
    fs.renameSync(tmp, objUpper);
    return;
  }
  try {
    markersOnly(u.layers.dirAt(0, rel), u.layers.markers(0));
    sys!.rename2(tmp, objUpper, RENAME_EXCHANGE);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  try {
    removeEmptyUpperDir(workdirDir(tmp.toString('latin1')), u.layers.markers(0));
  } catch (e) {
    // something appeared in it meanwhile: the directory goes back where it was
    sys!.rename2(tmp, objUpper, RENAME_EXCHANGE);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * Rename from -> to leaving an overlayfs whiteout at `from` in the same step (renameat2
 * RENAME_WHITEOUT, as the kernel's ovl_rename does), so the lower object the name hid never
 * shows between the two. false when that cannot be done (no syscalls addon, a file system
 * without RENAME_WHITEOUT: EINVAL): then it is a plain rename and the caller makes the whiteout.
 */
function moveLeavingWhiteout(from: Buffer, to: Buffer): boolean {
  if (sys !== undefined) {
    try {
      sys.rename2(from, to, RENAME_WHITEOUT);
      return true;
    } catch (e) {
      if ((e as { code?: string }).code !== 'EINVAL') throw e;
    }
  }
  fs.renameSync(from, to);
  return false;
}

/**
 * Moves the upper directory at `fromRel` over the one at `toRel`, which holds only markers (the
 * rename's target is empty), as one renameat2(RENAME_EXCHANGE): the target is never missing,
 * so the lower names its whiteouts hide never show (removing it first, then renaming, would
 * show them until the rename). The old target, marked opaque first so that it shows nothing
 * where it lands, then leaves `fromRel` for the workdir: replaced by a whiteout in the same
 * step when `fromRel` hides a lower name in an overlayfs-format upper (returns true; an OCI one
 * has its `.wh.` file already), renamed away otherwise. A crash between the two steps leaves an
 * empty directory at `fromRel` (the workdir's tmp/ is emptied at start).
 */
function exchangeOverEmptyDir(u: Union, fromRel: string, toRel: string, whiteout: boolean): boolean {
  const markerNames = u.layers.markers(0);
  writeOpaque(u.whiteoutFormat, u.layers.dirAt(0, toRel), u.facts[0]!);
  sys!.rename2(u.upperPath(fromRel), u.upperPath(toRel), RENAME_EXCHANGE);
  u.layers.forget(0, fromRel);
  u.layers.forget(0, toRel);
  const tmp = pathBuf(u.tmpName());
  const leaveWhiteout = whiteout && u.whiteoutFormat === 'overlayfs';
  if (leaveWhiteout) {
    makeWhiteoutDev(tmp);
    sys!.rename2(tmp, u.upperPath(fromRel), RENAME_EXCHANGE);
  } else {
    fs.renameSync(u.upperPath(fromRel), tmp);
  }
  removeEmptyUpperDir(workdirDir(tmp.toString('latin1')), markerNames);
  return leaveWhiteout;
}

/**
 * An upper directory the union shows as empty leaves its name in one rename, to the workdir,
 * and is removed there (removeEmptyUpperDir): a crash never leaves it at its name with a part
 * of the whiteouts it held, showing the lower names the rest hid (an OCI `.wh.` file beside it
 * counts only once it is gone). The workdir's tmp/ is emptied at start.
 */
function retireEmptyUpperDir(u: Union, rel: string): void {
  const tmp = pathBuf(u.tmpName());
  fs.renameSync(u.upperPath(rel), tmp);
  try {
    removeEmptyUpperDir(workdirDir(tmp.toString('latin1')), u.layers.markers(0));
  } catch (e) {
    // it holds more than markers (seen before any marker is unlinked): back where it was
    fs.renameSync(tmp, u.upperPath(rel));
    throw e;
  }
}

/**
 * Removes an upper directory the union shows as empty (its listing, read whole, has no
 * names): first the whiteouts and markers it holds, which hide names of the layers below, then
 * the directory itself with rmdir(2). Never a recursive delete: an entry that is no marker
 * means the listing was wrong, and stops the removal (ENOTEMPTY), as does the kernel's
 * ENOTEMPTY for anything that appeared meanwhile.
 */
function removeEmptyUpperDir(dir: DirAt, markerNames: boolean): void {
  for (const p of markersOnly(dir, markerNames)) fs.unlinkSync(pathBuf(p));
  fs.rmdirSync(dir.self);
}

/**
 * The upper directory at rel is gone or moved: what the union keeps about it goes too (its
 * opaque mark; its open fds, a scan of the layer's open directories: not for other objects).
 */
function upperDirGone(u: Union, rel: string): void {
  u.facts[0]!.removed(u.layers.s(0, rel));
  u.layers.forget(0, rel);
}

/**
 * The markers a directory holds (paths, binary strings): whiteout devices, and `.wh.*` names
 * where they are markers (an OCI-format upper); ENOTEMPTY when it holds anything else.
 */
function markersOnly(dir: DirAt, markerNames: boolean): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir.inside, { withFileTypes: true, encoding: 'buffer' })) {
    const p = dir.inside + '/' + e.name.toString('latin1');
    const marker = (markerNames && e.name.toString('latin1').startsWith(WH_PREFIX)) ||
      (e.isCharacterDevice() && isWhiteoutDev(fs.lstatSync(pathBuf(p))));
    if (!marker) throw new FsError('ENOTEMPTY', `${p} is not in the directory's listing`);
    out.push(p);
  }
  return out;
}

function isAncestor(u: Union, a: Node, b: Node): boolean {
  for (let x: Node = b, i = 0; i < 4096; i++) {
    if (x.id === a.id) return true;
    if (x.id === u.root) return false;
    x = u.node(x.parent);
  }
  return false;
}

export async function rename(u: Union, sd: Node, sn: string, td: Node, tn: string, cred: Cred): Promise<void> {
  const sdAttr = checkDirWrite(u, sd, cred);
  const tdAttr = checkDirWrite(u, td, cred);
  const src = u.child(sd, sn);
  if (src === null) throw new FsError('ENOENT');
  checkSticky(sdAttr, u.getattr(src.id), cred);
  const check1 = (): Node | null => {
    const tgt = u.child(td, tn);
    if (src.type === FileType.DIR && isAncestor(u, src, td)) throw new FsError('EINVAL');
    if (tgt !== null) {
      if (src.type === FileType.DIR && tgt.type !== FileType.DIR) throw new FsError('ENOTDIR');
      if (src.type !== FileType.DIR && tgt.type === FileType.DIR) throw new FsError('EISDIR');
      if (tgt.type === FileType.DIR && u.dirs.get(tgt).names.length > 0) throw new FsError('ENOTEMPTY');
    }
    return tgt;
  };
  const tgt = check1();
  if (tgt !== null) checkSticky(tdAttr, u.getattr(tgt.id), cred);
  if (tgt !== null && tgt.id === src.id) return; // same object (hard links): POSIX no-op
  u.hold(src);
  try {
    await renameHeld(u, sd, sn, td, tn, src, tgt, check1);
  } finally {
    u.release(src);
  }
}

/** rename past its first checks, with `src` held (Union.hold) across the copy-ups. */
async function renameHeld(u: Union, sd: Node, sn: string, td: Node, tn: string, src: Node, tgt: Node | null, check1: () => Node | null): Promise<void> {
  const redirect = await movedDirCopyUp(u, src, sd.id === td.id);
  try {
    await renameCopiedUp(u, sd, sn, td, tn, src, tgt, check1, redirect);
  } finally {
    dropRedirect(redirect);
  }
}

/**
 * Copy up what a rename of src needs: a directory with lower parts alone, with its redirect
 * record made ready (redirect.ts); the whole subtree when the record would be too long (as the
 * kernel's EXDEV leaves it to mv); anything else as itself. A directory that has a record
 * keeps it within its parent (`samedir`); moved elsewhere, it gets an absolute one, which a
 * record the kernel wrote (a name, relative to the parent) may not be.
 */
async function movedDirCopyUp(u: Union, src: Node, samedir: boolean): Promise<PreparedRedirect | undefined> {
  if (src.type !== FileType.DIR || (src.layer === 0 && src.stack.length === 1) || (src.below !== undefined && samedir)) {
    await copyUp(u, src);
    return undefined;
  }
  const r = await prepareRedirect(u.layers.markers(0), u.rels(src).lower, u.tmpName());
  if (r === undefined) {
    await copyUpTree(u, src);
    return undefined;
  }
  try {
    await copyUp(u, src);
  } catch (e) {
    dropRedirect(r);
    throw e;
  }
  return r;
}

/** rename once src is copied up (movedDirCopyUp) and its redirect, if it needs one, is ready. */
async function renameCopiedUp(u: Union, sd: Node, sn: string, td: Node, tn: string, src: Node, tgt: Node | null, check1: () => Node | null, redirect: PreparedRedirect | undefined): Promise<void> {
  if (tgt !== null && lowerHardlink(u, tgt)) await copyUp(u, tgt);
  if (tgt !== null) await settled(u, tgt);
  await copyUp(u, sd);
  await copyUp(u, td);
  // all synchronous from here: re-validate
  if (u.child(sd, sn)?.id !== src.id) throw new FsError('ENOENT');
  tgt = check1();
  if (tgt !== null && tgt.id === src.id) return;
  const sRel = u.rel(sd), tRel = u.rel(td);
  const srcUpper = u.upperPath(sRel + '/' + sn);
  const dstUpper = u.upperPath(tRel + '/' + tn);
  const srcBelow = existsBelow(u, sd, sn);
  if (redirect !== undefined && (src.below === undefined || sd.id !== td.id)) {
    // the lower part stays where it is and the upper copy says where (redirect.ts)
    recordRedirect(redirect, u.layers.dirAt(0, sRel + '/' + sn), u.facts[0]!);
    u.redirect(src, redirect.value);
  }
  if (src.type === FileType.DIR && src.below === undefined && existsBelow(u, td, tn) && !isOpaque(u.layers, u.facts, 0, sRel + '/' + sn)) {
    // a directory moved over a name that exists below must not merge with it
    writeOpaque(u.whiteoutFormat, u.layers.dirAt(0, sRel + '/' + sn), u.facts[0]!);
    src.stack = [0];
    u.dirs.forget(src.id);
  }
  if (srcBelow && u.whiteoutFormat === 'oci') writeWhiteout('oci', u.layers.dirAt(0, sRel), sn, '');
  // the target's upper copy: an empty directory may still hold whiteouts
  const tgtUpperName = tgt !== null && tgt.layer === 0 && upperIsCopy(tgt, dstUpper);
  // a lower-only name of an indexed hard link moves as a new upper link of the copy
  const srcLink = src.index !== undefined && !upperIsCopy(src, srcUpper);
  const dst = lstatQuiet(dstUpper);
  const overDir = dst?.isDirectory() === true;
  let whiteoutLeft = false;
  if (overDir && sys !== undefined) {
    whiteoutLeft = exchangeOverEmptyDir(u, sRel + '/' + sn, tRel + '/' + tn, srcBelow);
  } else {
    if (overDir) removeEmptyUpperDir(u.layers.dirAt(0, tRel + '/' + tn), u.layers.markers(0));
    else if (dst !== undefined && (src.type === FileType.DIR || srcLink)) fs.unlinkSync(dstUpper);
    if (srcLink) {
      fs.linkSync(src.index!, dstUpper);
      u.links.setOff(src, (src.nlinkOff ?? 0) - 1);
    } else if (srcBelow && u.whiteoutFormat === 'overlayfs') {
      whiteoutLeft = moveLeavingWhiteout(srcUpper, dstUpper);
    } else {
      fs.renameSync(srcUpper, dstUpper);
    }
  }
  if (overDir) upperDirGone(u, tRel + '/' + tn);
  clearOciWhiteout(u, tRel, tn);
  if (srcBelow && u.whiteoutFormat === 'overlayfs' && !whiteoutLeft) writeWhiteout('overlayfs', u.layers.dirAt(0, sRel), sn, u.tmpName());
  // opaque facts follow the directory; its open fds (beneath.ts) are dropped
  if (src.type === FileType.DIR) {
    u.facts[0]!.moved(u.layers.s(0, sRel + '/' + sn), u.layers.s(0, tRel + '/' + tn));
    u.layers.forget(0, sRel + '/' + sn);
  }
  // identity: the target name dies, the source name moves
  if (tgt !== null) {
    tgt.attr = null;
    if (tgt.index !== undefined) {
      if (!tgtUpperName) u.links.setOff(tgt, (tgt.nlinkOff ?? 0) - 1);
      u.links.settle(tgt);
    }
    u.forgetName(tgt.id, td.id, tn);
  }
  const rec = u.store.get(src.id);
  if (rec !== undefined) {
    const names = rec.names.map((r) => (r.parent === sd.id && r.name === sn ? { parent: td.id, name: tn } : r));
    u.store.put({ ...rec, names });
  }
  if (src.parent === sd.id && src.name === sn) { src.parent = td.id; src.name = tn; }
  sd.children?.delete(sn);
  (td.children ??= new Map()).set(tn, src.id);
  u.dirs.remove(sd.id, sn);
  u.dirs.add(td.id, tn);
  sd.attr = null; td.attr = null; src.attr = null;
}

/**
 * An in-flight copy-up of n, finished (whether it succeeded or not): REMOVE and RENAME over n
 * wait for it, as LINK and SETATTR do by copying up themselves (copyUp joins the one in
 * flight), so a WRITE that started the copy-up keeps its data until the name goes.
 */
async function settled(u: Union, n: Node): Promise<void> {
  await u.copyUps.get(n.id)?.catch(() => undefined);
}

export async function link(u: Union, n: Node, d: Node, name: string, cred: Cred): Promise<void> {
  if (n.type === FileType.DIR) throw new FsError('EPERM', 'hard link to a directory');
  checkDirWrite(u, d, cred);
  if (u.child(d, name) !== null) throw new FsError('EEXIST');
  await copyUp(u, n);
  await copyUp(u, d);
  if (u.child(d, name) !== null) throw new FsError('EEXIST');
  const dirRel = u.rel(d);
  const dst = u.upperPath(dirRel + '/' + name);
  const st = lstatQuiet(dst);
  if (st !== undefined && isWhiteoutDev(st)) fs.unlinkSync(dst);
  fs.linkSync(u.path(n), dst);
  clearOciWhiteout(u, dirRel, name);
  const rec = u.store.get(n.id);
  if (rec !== undefined) u.store.put({ ...rec, names: [...rec.names, { parent: d.id, name }] });
  (d.children ??= new Map()).set(name, n.id);
  u.dirs.add(d.id, name);
  d.attr = null;
  n.attr = null;
}

export async function setattr(u: Union, n: Node, a: SetAttr, cred: Cred): Promise<void> {
  const cur = u.getattr(n.id);
  const owner = cred.uid === 0 || cred.uid === cur.uid;
  if (a.mode !== undefined && !owner) throw new FsError('EPERM');
  if (a.uid !== undefined && a.uid !== cur.uid && cred.uid !== 0) throw new FsError('EPERM');
  if (a.gid !== undefined && a.gid !== cur.gid && cred.uid !== 0 && !(cred.uid === cur.uid && inGroup(cred, a.gid))) throw new FsError('EPERM');
  if (a.size !== undefined) {
    if (n.type === FileType.DIR) throw new FsError('EISDIR');
    if (n.type !== FileType.REG) throw new FsError('EINVAL');
    if (a.size > MAX_FILE_SIZE) throw new FsError('EFBIG');
    if (cred.uid !== cur.uid) check(cur, cred, W);
  }
  for (const t of [a.atime, a.mtime]) {
    if (t === undefined || owner) continue;
    if (t.how === 'client') throw new FsError('EPERM');
    check(cur, cred, W);
  }
  await copyUp(u, n, { noData: a.size === 0 });
  const p = u.path(n);
  if (a.uid !== undefined || a.gid !== undefined) fs.lchownSync(p, a.uid ?? cur.uid, a.gid ?? cur.gid);
  if (a.mode !== undefined && n.type !== FileType.LNK) {
    let mode = a.mode & 0o7777;
    const gid = a.gid ?? cur.gid;
    if (cred.uid !== 0 && n.type !== FileType.DIR && !inGroup(cred, gid)) mode &= ~S_ISGID;
    setMode(p, mode);
  }
  if (a.size !== undefined) {
    const fd = fs.openSync(p, fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW);
    try { fs.ftruncateSync(fd, a.size); } finally { fs.closeSync(fd); }
    if (cred.uid !== 0 && (cur.mode & (S_ISUID | S_ISGID)) && a.mode === undefined) setMode(p, cur.mode & ~(S_ISUID | S_ISGID));
  }
  setTimes(p, a.atime, a.mtime);
  n.attr = null;
}

/** chmod(2) of p itself: a symlink put at its name since is never followed (EOPNOTSUPP). */
function setMode(p: Buffer, mode: number): void {
  if (sys !== undefined) sys.lchmod(p, mode);
  else fs.chmodSync(p, mode);
}

export async function write(u: Union, n: Node, offset: number, data: Buffer, stable: StableHow, cred: Cred): Promise<StableHow> {
  if (n.type === FileType.DIR) throw new FsError('EISDIR');
  if (n.type !== FileType.REG) throw new FsError('EINVAL');
  const cur = u.getattr(n.id);
  if (cred.uid !== cur.uid) check(cur, cred, W);
  await copyUp(u, n);
  const sync = stable === StableHow.FILE_SYNC ? 'file' : stable === StableHow.DATA_SYNC ? 'data' : 'none';
  await u.fds.write(n.id, () => u.openFd(n), data, offset, sync);
  // A stable reply promises the data survives a crash, so also the names it is reached by.
  if (sync !== 'none') await u.syncEntries(n);
  if (cred.uid !== 0 && (cur.mode & (S_ISUID | S_ISGID))) {
    const fd = fs.openSync(u.path(n), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try { fs.fchmodSync(fd, cur.mode & ~(S_ISUID | ((cur.mode & 0o010) ? S_ISGID : 0))); } finally { fs.closeSync(fd); }
  }
  n.attr = null;
  return stable;
}
