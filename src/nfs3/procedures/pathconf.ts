/*
 * RFC 1813 §3.3.20
 *
 *   PATHCONF3res NFSPROC3_PATHCONF(PATHCONF3args) = 20;
 *
 *   struct PATHCONF3args { nfs_fh3 object; };
 *   struct PATHCONF3resok {
 *     post_op_attr obj_attributes;
 *     uint32 linkmax; uint32 name_max;
 *     bool no_trunc; bool chown_restricted; bool case_insensitive; bool case_preserving;
 *   };
 *   struct PATHCONF3resfail { post_op_attr obj_attributes; };
 *   union PATHCONF3res switch (nfsstat3 status) {
 *   case NFS3_OK: PATHCONF3resok resok;
 *   default: PATHCONF3resfail resfail;
 *   };
 *
 * linkmax defaults to 65000 (ext4, the usual upper layer); the union's EMLINK is what counts.
 * Over-long names are refused (no_trunc), only root may chown, names are case-sensitive.
 */
import type { XdrWriter } from '@nfs-ts/xdr';
import type { RpcCall } from '../../rpc/types.js';
import type { Attr } from '../../vfs/types.js';
import { toNfsstat3 } from '../../errors/nfsstat.js';
import { NFS3_NAME_MAX, NFS3_OK } from '../constants.js';
import type { Nfs3Context } from '../context.js';
import { readFh } from '../structs/fh.js';
import { writePostOpAttr } from '../structs/attr.js';

export function pathconf3(ctx: Nfs3Context, call: RpcCall, reply: XdrWriter): void {
  const fh = readFh(call.args);
  const fs = ctx.fs;
  let attr: Attr;
  try {
    attr = fs.getattr(fs.resolve(fh));
  } catch (err) {
    reply.uint32(toNfsstat3(err, 'PATHCONF', ctx, call));
    reply.uint32(0);
    return;
  }
  reply.uint32(NFS3_OK);
  writePostOpAttr(reply, attr);
  reply.uint32(ctx.linkMax);
  reply.uint32(NFS3_NAME_MAX);
  reply.bool(true);
  reply.bool(true);
  reply.bool(false);
  reply.bool(true);
}
