/*
 * RFC 1813 §3.3.12
 *
 *   REMOVE3res NFSPROC3_REMOVE(REMOVE3args) = 12;
 *
 *   struct REMOVE3args { diropargs3 object; };
 *   struct REMOVE3resok { wcc_data dir_wcc; };
 *   struct REMOVE3resfail { wcc_data dir_wcc; };
 *   union REMOVE3res switch (nfsstat3 status) {
 *   case NFS3_OK: REMOVE3resok resok;
 *   default: REMOVE3resfail resfail;
 *   };
 *
 * Whether a name present in a lower layer leaves a whiteout is the union's business.
 */
import type { XdrWriter } from '@nfs-ts/xdr';
import type { RpcCall } from '../../rpc/types.js';
import type { Attr, NodeId } from '../../vfs/types.js';
import { toNfsstat3 } from '../../errors/nfsstat.js';
import { NFS3_OK, NFS3ERR_ROFS } from '../constants.js';
import { tryGetattr, type Nfs3Context } from '../context.js';
import { readFh } from '../structs/fh.js';
import { checkFilename, readFilename } from '../structs/names.js';
import { writeWcc } from '../structs/attr.js';

export async function remove3(ctx: Nfs3Context, call: RpcCall, reply: XdrWriter): Promise<void> {
  const r = call.args;
  const dirFh = readFh(r);
  const name = readFilename(r);
  const fs = ctx.fs;
  let dir: NodeId | undefined;
  let pre: Attr | undefined;
  let status: number;
  try {
    dir = fs.resolve(dirFh);
    pre = fs.getattr(dir);
    status = fs.readOnly ? NFS3ERR_ROFS : checkFilename(name);
    if (status === NFS3_OK) await fs.remove(dir, name, call.cred);
  } catch (err) {
    status = toNfsstat3(err, 'REMOVE');
  }
  reply.uint32(status);
  writeWcc(reply, pre, tryGetattr(fs, dir));
}
