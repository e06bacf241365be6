/*
 * RFC 1813 §3.3.2
 *
 *   SETATTR3res NFSPROC3_SETATTR(SETATTR3args) = 2;
 *
 *   union sattrguard3 switch (bool check) {
 *   case TRUE:  nfstime3 obj_ctime;
 *   case FALSE: void;
 *   };
 *   struct SETATTR3args { nfs_fh3 object; sattr3 new_attributes; sattrguard3 guard; };
 *   struct SETATTR3resok   { wcc_data obj_wcc; };
 *   struct SETATTR3resfail { wcc_data obj_wcc; };
 *   union SETATTR3res switch (nfsstat3 status) {
 *   case NFS3_OK: SETATTR3resok resok;
 *   default: SETATTR3resfail resfail;
 *   };
 *
 * The guard compares the object's current ctime with the client's: a mismatch is
 * NFS3ERR_NOT_SYNC and nothing changes.
 */
import type { XdrWriter } from '@nfs-ts/xdr';
import type { RpcCall } from '../../rpc/types.js';
import type { Attr, NodeId } from '../../vfs/types.js';
import { toNfsstat3 } from '../../errors/nfsstat.js';
import { NFS3_OK, NFS3ERR_NOT_SYNC, NFS3ERR_ROFS } from '../constants.js';
import { tryGetattr, type Nfs3Context } from '../context.js';
import { readFh } from '../structs/fh.js';
import { readSattr3, readSattrguard3 } from '../structs/sattr3.js';
import { writeWcc } from '../structs/attr.js';

export async function setattr3(ctx: Nfs3Context, call: RpcCall, reply: XdrWriter): Promise<void> {
  const r = call.args;
  const fh = readFh(r);
  const attr = readSattr3(r);
  const guard = readSattrguard3(r);
  const fs = ctx.fs;
  let id: NodeId | undefined;
  let pre: Attr | undefined;
  let status: number;
  try {
    id = fs.resolve(fh);
    pre = fs.getattr(id);
    if (ctx.readOnly) {
      status = NFS3ERR_ROFS;
    } else if (guard !== undefined && (guard.sec !== pre.ctime.sec || guard.nsec !== pre.ctime.nsec)) {
      status = NFS3ERR_NOT_SYNC;
    } else {
      await fs.setattr(id, attr, call.cred);
      status = NFS3_OK;
    }
  } catch (err) {
    status = toNfsstat3(err, 'SETATTR', ctx, call);
  }
  // Refused before anything changed: the pre-op attributes are also the post-op ones.
  const unchanged = status === NFS3ERR_ROFS || status === NFS3ERR_NOT_SYNC;
  reply.uint32(status);
  writeWcc(reply, pre, unchanged ? pre : tryGetattr(fs, id));
}
