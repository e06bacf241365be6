/*
 * RFC 1813 §3.3.3
 *
 *   LOOKUP3res NFSPROC3_LOOKUP(LOOKUP3args) = 3;
 *
 *   struct diropargs3 { nfs_fh3 dir; filename3 name; };
 *   struct LOOKUP3args { diropargs3 what; };
 *   struct LOOKUP3resok {
 *     nfs_fh3 object; post_op_attr obj_attributes; post_op_attr dir_attributes;
 *   };
 *   struct LOOKUP3resfail { post_op_attr dir_attributes; };
 *   union LOOKUP3res switch (nfsstat3 status) {
 *   case NFS3_OK: LOOKUP3resok resok;
 *   default: LOOKUP3resfail resfail;
 *   };
 *
 * A failed LOOKUP still carries the directory's attributes when the directory resolved: the
 * Linux client revalidates its dentry cache with them (negative lookups are the common case).
 */
import type { XdrWriter } from '@nfs-ts/xdr';
import type { RpcCall } from '../../rpc/types.js';
import type { NodeId } from '../../vfs/types.js';
import { toNfsstat3 } from '../../errors/nfsstat.js';
import { NFS3_OK } from '../constants.js';
import { tryGetattr, type Nfs3Context } from '../context.js';
import { readFh, writeFh } from '../structs/fh.js';
import { checkFilename, readFilename } from '../structs/names.js';
import { writePostOpAttr } from '../structs/attr.js';

export function lookup3(ctx: Nfs3Context, call: RpcCall, reply: XdrWriter): void {
  const r = call.args;
  const dirFh = readFh(r);
  const name = readFilename(r);
  const fs = ctx.fs;
  let dir: NodeId | undefined;
  let obj: NodeId;
  let fh: Buffer;
  try {
    dir = fs.resolve(dirFh);
    const bad = checkFilename(name);
    if (bad !== NFS3_OK) {
      reply.uint32(bad);
      writePostOpAttr(reply, tryGetattr(fs, dir));
      return;
    }
    obj = fs.lookup(dir, name, call.cred);
    fh = fs.handleOf(obj);
  } catch (err) {
    reply.uint32(toNfsstat3(err, 'LOOKUP', ctx, call));
    writePostOpAttr(reply, tryGetattr(fs, dir));
    return;
  }
  const objAttr = tryGetattr(fs, obj);
  const dirAttr = tryGetattr(fs, dir);
  reply.uint32(NFS3_OK);
  writeFh(reply, fh);
  writePostOpAttr(reply, objAttr);
  writePostOpAttr(reply, dirAttr);
}
