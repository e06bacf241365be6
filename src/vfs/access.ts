/**
 * Permission checks against the merged object, as the kernel does on the merged tree.
 *
 * Rule: root (uid 0) may read and write anything, and execute/search when any x bit is set
 * (search on directories always). Others get the owner, else the group (primary or
 * supplementary), else the other class of bits; never a mix. knfsd's owner override applies
 * to READ/WRITE of regular files (an owner may write a file it chmodded read-only after open).
 * Sticky directories: only the owner of the entry, the owner of the directory or root may
 * remove or rename it. Example: mode 0754 owner 1000 group 100 -> uid 2000 in group 100 gets
 * r-x, uid 2000 elsewhere gets r--.
 * Races: checks run against cached attributes and are repeated by nothing below: the server
 * acts as root on the layers, so these checks are the only gate.
 */
import { FsError } from '../errors/fs-error.js';
import type { Attr, Cred } from './types.js';
import { FileType } from './types.js';

export const R = 4, W = 2, X = 1;

export function inGroup(cred: Cred, gid: number): boolean {
  return cred.gid === gid || cred.gids.includes(gid);
}

/** The rwx bits (R|W|X) the caller holds on an object. */
export function permBits(attr: Attr, cred: Cred): number {
  if (cred.uid === 0) {
    const anyX = attr.type === FileType.DIR || (attr.mode & 0o111) !== 0;
    return R | W | (anyX ? X : 0);
  }
  if (cred.uid === attr.uid) return (attr.mode >> 6) & 7;
  if (inGroup(cred, attr.gid)) return (attr.mode >> 3) & 7;
  return attr.mode & 7;
}

export function check(attr: Attr, cred: Cred, want: number): void {
  if ((permBits(attr, cred) & want) !== want) throw new FsError('EACCES');
}

/** May `cred` remove/rename `child` from directory `dir` (write+search checked separately)? */
export function checkSticky(dir: Attr, childAttr: Attr, cred: Cred): void {
  if ((dir.mode & 0o1000) === 0 || cred.uid === 0) return;
  if (cred.uid === childAttr.uid || cred.uid === dir.uid) return;
  throw new FsError('EPERM', 'sticky directory');
}

export const ACCESS3_READ = 0x1, ACCESS3_LOOKUP = 0x2, ACCESS3_MODIFY = 0x4,
  ACCESS3_EXTEND = 0x8, ACCESS3_DELETE = 0x10, ACCESS3_EXECUTE = 0x20;

/** ACCESS3 bits granted out of `mask` (DELETE is judged as knfsd does: write on the object's dir is not known here, so it follows MODIFY). */
export function accessBits(attr: Attr, cred: Cred, mask: number, readOnly: boolean): number {
  const b = permBits(attr, cred);
  let r = 0;
  if (b & R) r |= ACCESS3_READ;
  if (attr.type === FileType.DIR) {
    if (b & X) r |= ACCESS3_LOOKUP;
    if ((b & W) && !readOnly) r |= ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_DELETE;
  } else {
    if (b & X) r |= ACCESS3_EXECUTE;
    if ((b & W) && !readOnly) r |= ACCESS3_MODIFY | ACCESS3_EXTEND;
  }
  return r & mask;
}
