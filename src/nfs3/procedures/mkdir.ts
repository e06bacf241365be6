/*
 * RFC 1813 §3.3.9
 *
 *   MKDIR3res NFSPROC3_MKDIR(MKDIR3args) = 9;
 *
 *   struct MKDIR3args { diropargs3 where; sattr3 attributes; };
 *   struct MKDIR3resok {
 *     post_op_fh3 obj; post_op_attr obj_attributes; wcc_data dir_wcc;
 *   };
 *   struct MKDIR3resfail { wcc_data dir_wcc; };
 *   union MKDIR3res switch (nfsstat3 status) {
 *   case NFS3_OK: MKDIR3resok resok;
 *   default: MKDIR3resfail resfail;
 *   };
 */
import type { XdrWriter } from '@nfs-ts/xdr';
import type { RpcCall } from '../../rpc/types.js';
import type { Attr, NodeId } from '../../vfs/types.js';
import { toNfsstat3 } from '../../errors/nfsstat.js';
import { NFS3_OK, NFS3ERR_ROFS } from '../constants.js';
import type { Nfs3Context } from '../context.js';
import { readFh } from '../structs/fh.js';
import { checkFilename, readFilename } from '../structs/names.js';
import { readSattr3 } from '../structs/sattr3.js';
import { writeDiropres3 } from '../structs/diropres.js';

export async function mkdir3(ctx: Nfs3Context, call: RpcCall, reply: XdrWriter): Promise<void> {
  const r = call.args;
  const dirFh = readFh(r);
  const name = readFilename(r);
  const attr = readSattr3(r);
  const fs = ctx.fs;
  let dir: NodeId | undefined;
  let pre: Attr | undefined;
  let obj: NodeId | undefined;
  let status: number;
  try {
    dir = fs.resolve(dirFh);
    pre = fs.getattr(dir);
    status = fs.readOnly ? NFS3ERR_ROFS : checkFilename(name);
    if (status === NFS3_OK) obj = await fs.mkdir(dir, name, attr, call.cred);
  } catch (err) {
    status = toNfsstat3(err, 'MKDIR');
  }
  writeDiropres3(reply, fs, status, obj, dir, pre);
}
