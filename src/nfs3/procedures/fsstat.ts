/*
 * RFC 1813 §3.3.18
 *
 *   FSSTAT3res NFSPROC3_FSSTAT(FSSTAT3args) = 18;
 *
 *   struct FSSTAT3args { nfs_fh3 fsroot; };
 *   struct FSSTAT3resok {
 *     post_op_attr obj_attributes;
 *     size3 tbytes; size3 fbytes; size3 abytes;
 *     size3 tfiles; size3 ffiles; size3 afiles;
 *     uint32 invarsec;
 *   };
 *   struct FSSTAT3resfail { post_op_attr obj_attributes; };
 *   union FSSTAT3res switch (nfsstat3 status) {
 *   case NFS3_OK: FSSTAT3resok resok;
 *   default: FSSTAT3resfail resfail;
 *   };
 *
 * invarsec 0: the numbers can change at any moment.
 */
import type { XdrWriter } from '@nfs-ts/xdr';
import type { RpcCall } from '../../rpc/types.js';
import type { FsStat, NodeId } from '../../vfs/types.js';
import { toNfsstat3 } from '../../errors/nfsstat.js';
import { NFS3_OK } from '../constants.js';
import { tryGetattr, type Nfs3Context } from '../context.js';
import { readFh } from '../structs/fh.js';
import { writePostOpAttr } from '../structs/attr.js';

export function fsstat3(ctx: Nfs3Context, call: RpcCall, reply: XdrWriter): void {
  const fh = readFh(call.args);
  const fs = ctx.fs;
  let id: NodeId | undefined;
  let st: FsStat;
  try {
    id = fs.resolve(fh);
    st = fs.fsstat(id);
  } catch (err) {
    reply.uint32(toNfsstat3(err, 'FSSTAT', ctx, call));
    writePostOpAttr(reply, tryGetattr(fs, id));
    return;
  }
  const attr = tryGetattr(fs, id);
  reply.uint32(NFS3_OK);
  writePostOpAttr(reply, attr);
  reply.uint64Number(st.tbytes);
  reply.uint64Number(st.fbytes);
  reply.uint64Number(st.abytes);
  reply.uint64Number(st.tfiles);
  reply.uint64Number(st.ffiles);
  reply.uint64Number(st.afiles);
  reply.uint32(0);
}
