/**
 * The frame shared by every procedure that changes one entry of one directory (CREATE, MKDIR,
 * SYMLINK, MKNOD, REMOVE, RMDIR): resolve the directory, take its pre-op attributes for
 * wcc_data, refuse on a read-only union or an invalid name before the union sees the call, run
 * the change, and map a failure through the one errno table. The procedures keep their own
 * argument decoding and reply shapes.
 */
import type { RpcCall } from '../rpc/types.js';
import type { Attr, NodeId } from '../vfs/types.js';
import { toNfsstat3 } from '../errors/nfsstat.js';
import { NFS3_OK, NFS3ERR_ROFS } from './constants.js';
import type { Nfs3Context } from './context.js';
import { checkFilename } from './structs/names.js';

export interface EntryChange<T> {
  readonly status: number;
  /** The directory, once its handle resolved (for the post-op half of wcc_data). */
  readonly dir?: NodeId;
  readonly pre?: Attr;
  readonly result?: T;
}

/** `argStatus` is a procedure's own verdict on its other arguments (NFS3_OK when they are fine). */
export async function changeEntry<T>(
  ctx: Nfs3Context, call: RpcCall, proc: string, dirFh: Buffer, name: Buffer,
  change: (dir: NodeId) => Promise<T>, argStatus: number = NFS3_OK,
): Promise<EntryChange<T>> {
  const fs = ctx.fs;
  let dir: NodeId | undefined;
  let pre: Attr | undefined;
  try {
    dir = fs.resolve(dirFh);
    pre = fs.getattr(dir);
    const status = ctx.readOnly ? NFS3ERR_ROFS : argStatus !== NFS3_OK ? argStatus : checkFilename(name);
    if (status !== NFS3_OK) return { status, dir, pre };
    return { status, dir, pre, result: await change(dir) };
  } catch (err) {
    return { status: toNfsstat3(err, proc, ctx, call), dir, pre };
  }
}
