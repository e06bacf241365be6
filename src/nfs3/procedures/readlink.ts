/*
 * RFC 1813 §3.3.5
 *
 *   READLINK3res NFSPROC3_READLINK(READLINK3args) = 5;
 *
 *   struct READLINK3args { nfs_fh3 symlink; };
 *   struct READLINK3resok { post_op_attr symlink_attributes; nfspath3 data; };
 *   struct READLINK3resfail { post_op_attr symlink_attributes; };
 *   union READLINK3res switch (nfsstat3 status) {
 *   case NFS3_OK: READLINK3resok resok;
 *   default: READLINK3resfail resfail;
 *   };
 */
import type { XdrWriter } from '@nfs-ts/xdr';
import type { RpcCall } from '../../rpc/types.js';
import type { NodeId } from '../../vfs/types.js';
import { toNfsstat3 } from '../../errors/nfsstat.js';
import { NFS3_OK } from '../constants.js';
import { tryGetattr, type Nfs3Context } from '../context.js';
import { readFh } from '../structs/fh.js';
import { writePostOpAttr } from '../structs/attr.js';

export function readlink3(ctx: Nfs3Context, call: RpcCall, reply: XdrWriter): void {
  const fh = readFh(call.args);
  const fs = ctx.fs;
  let id: NodeId | undefined;
  let target: Buffer;
  try {
    id = fs.resolve(fh);
    target = fs.readlink(id);
  } catch (err) {
    reply.uint32(toNfsstat3(err, 'READLINK', ctx, call));
    writePostOpAttr(reply, tryGetattr(fs, id));
    return;
  }
  const attr = tryGetattr(fs, id);
  reply.uint32(NFS3_OK);
  writePostOpAttr(reply, attr);
  reply.opaque(target);
}
