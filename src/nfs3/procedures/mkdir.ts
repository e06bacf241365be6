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
import type { Nfs3Context } from '../context.js';
import { changeEntry } from '../entry-change.js';
import { readFh } from '../structs/fh.js';
import { readFilename } from '../structs/names.js';
import { readSattr3 } from '../structs/sattr3.js';
import { writeDiropres3 } from '../structs/diropres.js';

export async function mkdir3(ctx: Nfs3Context, call: RpcCall, reply: XdrWriter): Promise<void> {
  const r = call.args;
  const dirFh = readFh(r);
  const name = readFilename(r);
  const attr = readSattr3(r);
  const { status, dir, pre, result } = await changeEntry(ctx, call, 'MKDIR', dirFh, name, (dir) => ctx.fs.mkdir(dir, name, attr, call.cred));
  writeDiropres3(reply, ctx.fs, status, result, dir, pre);
}
