/**
 * The NFS program, version 3 only (RFC 1813): a table indexed by procedure number. Versions 2
 * and 4 are the dispatcher's business (PROG_MISMATCH(3,3) from what is registered).
 *
 * nonIdempotent lists what the duplicate request cache must answer from memory on a retransmit
 * (RFC 1813 §4.5): the namespace operations, plus SETATTR, whose replay can undo a later WRITE
 * (size) or fail a guard that held the first time.
 */
import type { XdrWriter } from '@nfs-ts/xdr';
import type { Procedure, ProgramVersion, RpcCall } from '../rpc/types.js';
import type { UnionFs } from '../vfs/types.js';
import { NFS_PROGRAM, NFS_V3, NFSPROC3 } from './constants.js';
import { makeContext, type Nfs3Context, type Nfs3Options } from './context.js';
import { null3 } from './procedures/null.js';
import { getattr3 } from './procedures/getattr.js';
import { setattr3 } from './procedures/setattr.js';
import { lookup3 } from './procedures/lookup.js';
import { access3 } from './procedures/access.js';
import { readlink3 } from './procedures/readlink.js';
import { read3 } from './procedures/read.js';
import { write3 } from './procedures/write.js';
import { create3 } from './procedures/create.js';
import { mkdir3 } from './procedures/mkdir.js';
import { symlink3 } from './procedures/symlink.js';
import { mknod3 } from './procedures/mknod.js';
import { remove3 } from './procedures/remove.js';
import { rmdir3 } from './procedures/rmdir.js';
import { rename3 } from './procedures/rename.js';
import { link3 } from './procedures/link.js';
import { readdir3 } from './procedures/readdir.js';
import { readdirplus3 } from './procedures/readdirplus.js';
import { fsstat3 } from './procedures/fsstat.js';
import { fsinfo3 } from './procedures/fsinfo.js';
import { pathconf3 } from './procedures/pathconf.js';
import { commit3 } from './procedures/commit.js';

export type { Nfs3Options } from './context.js';

type Handler = (ctx: Nfs3Context, call: RpcCall, reply: XdrWriter) => void | Promise<void>;

/** Handlers by procedure number, exactly RFC 1813's numbering. */
export const NFS3_HANDLERS: readonly Handler[] = [
  null3, getattr3, setattr3, lookup3, access3, readlink3, read3, write3,
  create3, mkdir3, symlink3, mknod3, remove3, rmdir3, rename3, link3,
  readdir3, readdirplus3, fsstat3, fsinfo3, pathconf3, commit3,
];

export const NFS3_NON_IDEMPOTENT: ReadonlySet<number> = new Set<number>([
  NFSPROC3.SETATTR, NFSPROC3.CREATE, NFSPROC3.MKDIR, NFSPROC3.SYMLINK, NFSPROC3.MKNOD,
  NFSPROC3.REMOVE, NFSPROC3.RMDIR, NFSPROC3.RENAME, NFSPROC3.LINK,
]);

export function nfs3Program(fs: UnionFs, opts: Nfs3Options = {}): ProgramVersion {
  const ctx = makeContext(fs, opts);
  // One closure per procedure per program, made once here: none per call.
  const procedures: Procedure[] = NFS3_HANDLERS.map((h): Procedure => (call, reply) => h(ctx, call, reply));
  return {
    prog: NFS_PROGRAM,
    vers: NFS_V3,
    name: 'nfs',
    procedures,
    nonIdempotent: NFS3_NON_IDEMPOTENT,
  };
}
