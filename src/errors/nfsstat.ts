/**
 * errno -> nfsstat3: the one table (modelled on Linux nfsd's `nfserrno()`).
 *
 * The VFS speaks errno (FsError, or a node:fs error passed through); only the protocol side
 * turns that into nfsstat3, and only here. Codes nobody expected become NFS3ERR_IO and are
 * logged once per code, so a new failure mode shows up in the log without flooding it. An
 * exception without an errno code is a bug: NFS3ERR_SERVERFAULT, logged with its stack, every
 * time, and the connection stays up.
 */
import { hasErrnoCode } from './fs-error.js';
import { child } from '../log.js';
import {
  NFS3ERR_ACCES, NFS3ERR_BADHANDLE, NFS3ERR_DQUOT, NFS3ERR_EXIST, NFS3ERR_FBIG, NFS3ERR_INVAL,
  NFS3ERR_IO, NFS3ERR_ISDIR, NFS3ERR_JUKEBOX, NFS3ERR_MLINK, NFS3ERR_NAMETOOLONG, NFS3ERR_NODEV,
  NFS3ERR_NOENT, NFS3ERR_NOSPC, NFS3ERR_NOTDIR, NFS3ERR_NOTEMPTY, NFS3ERR_NOTSUPP, NFS3ERR_NXIO,
  NFS3ERR_PERM, NFS3ERR_ROFS, NFS3ERR_SERVERFAULT, NFS3ERR_STALE, NFS3ERR_XDEV,
} from '../nfs3/constants.js';

const log = child('nfs3');

export const ERRNO_TO_NFSSTAT3: ReadonlyMap<string, number> = new Map<string, number>([
  ['EPERM', NFS3ERR_PERM],
  ['ENOENT', NFS3ERR_NOENT],
  ['EIO', NFS3ERR_IO],
  ['ENXIO', NFS3ERR_NXIO],
  ['EACCES', NFS3ERR_ACCES],
  ['EEXIST', NFS3ERR_EXIST],
  ['EXDEV', NFS3ERR_XDEV],
  ['ENODEV', NFS3ERR_NODEV],
  ['ENOTDIR', NFS3ERR_NOTDIR],
  ['EISDIR', NFS3ERR_ISDIR],
  ['EINVAL', NFS3ERR_INVAL],
  // Linux nfsd maps ELOOP to nfserr_symlink, which NFSv3 lacks: for a v3 client it is an
  // invalid operation on a symlink (e.g. opening one with O_NOFOLLOW to write it).
  ['ELOOP', NFS3ERR_INVAL],
  ['EFBIG', NFS3ERR_FBIG],
  ['E2BIG', NFS3ERR_FBIG],
  ['ENOSPC', NFS3ERR_NOSPC],
  ['EROFS', NFS3ERR_ROFS],
  ['EMLINK', NFS3ERR_MLINK],
  ['ENAMETOOLONG', NFS3ERR_NAMETOOLONG],
  ['ENOTEMPTY', NFS3ERR_NOTEMPTY],
  ['EDQUOT', NFS3ERR_DQUOT],
  ['ESTALE', NFS3ERR_STALE],
  ['EBADHANDLE', NFS3ERR_BADHANDLE],
  ['ENOTSUP', NFS3ERR_NOTSUPP],
  ['EOPNOTSUPP', NFS3ERR_NOTSUPP],
  // Transient: the Linux client retries JUKEBOX later instead of failing the syscall.
  ['EAGAIN', NFS3ERR_JUKEBOX],
  ['EWOULDBLOCK', NFS3ERR_JUKEBOX],
  ['ENOMEM', NFS3ERR_JUKEBOX],
  ['EMFILE', NFS3ERR_JUKEBOX],
  ['ENFILE', NFS3ERR_JUKEBOX],
  ['ETIMEDOUT', NFS3ERR_JUKEBOX],
]);

const reportedUnexpected = new Set<string>();

/**
 * The nfsstat3 for a failure thrown by the VFS. `where` names the caller (e.g. 'LOOKUP'), and
 * `on` and `by` the export and the client, in the log lines of unexpected codes and bugs.
 */
export function toNfsstat3(err: unknown, where = 'nfs3', on?: { readonly exportPath: string }, by?: { readonly peer: { readonly address: string } }): number {
  if (hasErrnoCode(err)) {
    const stat = ERRNO_TO_NFSSTAT3.get(err.code);
    if (stat !== undefined) return stat;
    if (!reportedUnexpected.has(err.code)) {
      // Bounded: errno names are a small finite set, and hasErrnoCode checks their shape.
      reportedUnexpected.add(err.code);
      log.warn(`${where}: unexpected errno ${err.code} answered NFS3ERR_IO (reported once per code)`, {
        procedure: where, export: on?.exportPath, client: by?.peer.address,
        error: err instanceof Error ? err.message : String(err),
      });
    }
    return NFS3ERR_IO;
  }
  log.error(`${where}: bug answered NFS3ERR_SERVERFAULT`, {
    procedure: where, export: on?.exportPath, client: by?.peer.address,
    stack: err instanceof Error ? err.stack : String(err),
  });
  return NFS3ERR_SERVERFAULT;
}
