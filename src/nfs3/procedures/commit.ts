/*
 * RFC 1813 §3.3.21
 *
 *   COMMIT3res NFSPROC3_COMMIT(COMMIT3args) = 21;
 *
 *   struct COMMIT3args { nfs_fh3 file; offset3 offset; count3 count; };
 *   struct COMMIT3resok { wcc_data file_wcc; writeverf3 verf; };
 *   struct COMMIT3resfail { wcc_data file_wcc; };
 *   union COMMIT3res switch (nfsstat3 status) {
 *   case NFS3_OK: COMMIT3resok resok;
 *   default: COMMIT3resfail resfail;
 *   };
 *
 * count 0 means from offset to the end of the file (the union's commit takes it as given).
 * The verifier is the one WRITE returned during this server instance's life.
 */
import type { XdrWriter } from '@nfs-ts/xdr';
import type { RpcCall } from '../../rpc/types.js';
import type { Attr, NodeId } from '../../vfs/types.js';
import { toNfsstat3 } from '../../errors/nfsstat.js';
import { NFS3_OK, NFS3ERR_ROFS } from '../constants.js';
import { tryGetattr, writeVerf, type Nfs3Context } from '../context.js';
import { readFh } from '../structs/fh.js';
import { readOffset3 } from '../structs/offset.js';
import { writeWcc } from '../structs/attr.js';

export async function commit3(ctx: Nfs3Context, call: RpcCall, reply: XdrWriter): Promise<void> {
  const r = call.args;
  const fh = readFh(r);
  const offset = readOffset3(r);
  const count = r.uint32();
  const fs = ctx.fs;
  let id: NodeId | undefined;
  let pre: Attr | undefined;
  let status: number;
  try {
    id = fs.resolve(fh);
    pre = fs.getattr(id);
    if (ctx.readOnly) {
      status = NFS3ERR_ROFS;
    } else {
      await fs.commit(id, offset, count);
      status = NFS3_OK;
    }
  } catch (err) {
    status = toNfsstat3(err, 'COMMIT', ctx, call);
  }
  reply.uint32(status);
  writeWcc(reply, pre, status === NFS3ERR_ROFS ? pre : tryGetattr(fs, id));
  if (status === NFS3_OK) writeVerf(reply, fs.writeVerifier);
}
