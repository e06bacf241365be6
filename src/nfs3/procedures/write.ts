/*
 * RFC 1813 §3.3.7
 *
 *   WRITE3res NFSPROC3_WRITE(WRITE3args) = 7;
 *
 *   enum stable_how { UNSTABLE = 0, DATA_SYNC = 1, FILE_SYNC = 2 };
 *   struct WRITE3args {
 *     nfs_fh3 file; offset3 offset; count3 count; stable_how stable; opaque data<>;
 *   };
 *   struct WRITE3resok {
 *     wcc_data file_wcc; count3 count; stable_how committed; writeverf3 verf;
 *   };
 *   struct WRITE3resfail { wcc_data file_wcc; };
 *   union WRITE3res switch (nfsstat3 status) {
 *   case NFS3_OK: WRITE3resok resok;
 *   default: WRITE3resfail resfail;
 *   };
 *
 * count larger than the data sent is NFS3ERR_INVAL; a count smaller than the data writes count
 * bytes (the client's stated intent, as knfsd). `committed` is never below what was asked: if
 * the union reports less, the range is committed here before answering. The verifier is the
 * server instance's, the one COMMIT returns.
 */
import { XdrError, type XdrWriter } from '@nfs-ts/xdr';
import type { RpcCall } from '../../rpc/types.js';
import type { Attr, NodeId, StableHow } from '../../vfs/types.js';
import { toNfsstat3 } from '../../errors/nfsstat.js';
import {
  FILE_SYNC, NF3DIR, NF3REG, NFS3_OK, NFS3ERR_INVAL, NFS3ERR_ISDIR, NFS3ERR_ROFS,
} from '../constants.js';
import { tryGetattr, writeVerf, type Nfs3Context } from '../context.js';
import { readFh } from '../structs/fh.js';
import { readOffset3 } from '../structs/offset.js';
import { writeWcc } from '../structs/attr.js';

export async function write3(ctx: Nfs3Context, call: RpcCall, reply: XdrWriter): Promise<void> {
  const r = call.args;
  const fh = readFh(r);
  const offset = readOffset3(r);
  const count = r.uint32();
  const stable = r.enum();
  if (stable < 0 || stable > FILE_SYNC) throw new XdrError(`stable_how out of range: ${stable}`);
  const data = r.opaque(0xffffffff);
  const fs = ctx.fs;
  let id: NodeId | undefined;
  let pre: Attr | undefined;
  let status: number;
  let committed: number = stable;
  try {
    id = fs.resolve(fh);
    pre = fs.getattr(id);
    if (ctx.readOnly) status = NFS3ERR_ROFS;
    else if (count > data.length) status = NFS3ERR_INVAL;
    else if (pre.type === NF3DIR) status = NFS3ERR_ISDIR;
    else if (pre.type !== NF3REG) status = NFS3ERR_INVAL;
    else {
      const payload = count < data.length ? data.subarray(0, count) : data;
      committed = await fs.write(id, offset, payload, stable as StableHow, call.cred);
      if (committed < stable) {
        await fs.commit(id, offset, count);
        committed = FILE_SYNC;
      }
      status = NFS3_OK;
    }
  } catch (err) {
    status = toNfsstat3(err, 'WRITE', ctx, call);
  }
  const unchanged = status === NFS3ERR_ROFS || status === NFS3ERR_INVAL || status === NFS3ERR_ISDIR;
  const post = unchanged ? pre : tryGetattr(fs, id);
  reply.uint32(status);
  writeWcc(reply, pre, post);
  if (status !== NFS3_OK) return;
  reply.uint32(count);
  reply.uint32(committed);
  writeVerf(reply, fs.writeVerifier);
}
