/**
 * filename3 and nfspath3 (RFC 1813 §2.5): `string<>` on the wire, bytes to us (names need not
 * be UTF-8; node:fs accepts Buffer paths). The XDR type is unbounded, so an over-long name is
 * valid XDR and gets NFS3ERR_NAMETOOLONG, not GARBAGE_ARGS; the reader still refuses a length
 * past the end of the record before slicing anything.
 */
import type { XdrReader } from '@nfs-ts/xdr';
import { NFS3_OK, NFS3ERR_ACCES, NFS3ERR_NAMETOOLONG, NFS3_NAME_MAX, NFS3_PATH_MAX } from '../constants.js';

const UNBOUNDED = 0xffffffff;

export function readFilename(r: XdrReader): Buffer {
  return r.string(UNBOUNDED);
}

export function readPath(r: XdrReader): Buffer {
  return r.string(UNBOUNDED);
}

/**
 * NFS3_OK when `name` can be a single path component, else the status to answer. As Linux
 * (lookup_one_len): an empty name or one holding '/' or NUL is NFS3ERR_ACCES. '.' and '..'
 * pass: their meaning per procedure is the VFS's business. Defence in depth: the VFS checks
 * containment again.
 */
export function checkFilename(name: Buffer): number {
  if (name.length === 0) return NFS3ERR_ACCES;
  if (name.length > NFS3_NAME_MAX) return NFS3ERR_NAMETOOLONG;
  if (name.indexOf(0x2f) !== -1 || name.indexOf(0) !== -1) return NFS3ERR_ACCES;
  return NFS3_OK;
}

/** Symlink targets: any bytes except NUL, at most NFS3_PATH_MAX. */
export function checkPath(path: Buffer): number {
  if (path.length > NFS3_PATH_MAX) return NFS3ERR_NAMETOOLONG;
  if (path.indexOf(0) !== -1) return NFS3ERR_ACCES;
  return NFS3_OK;
}
