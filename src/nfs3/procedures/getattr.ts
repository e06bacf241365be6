/*
 * RFC 1813 §3.3.1
 *
 *   GETATTR3res NFSPROC3_GETATTR(GETATTR3args) = 1;
 *
 *   struct GETATTR3args { nfs_fh3 object; };
 *   struct GETATTR3resok { fattr3 obj_attributes; };
 *   union GETATTR3res switch (nfsstat3 status) {
 *   case NFS3_OK: GETATTR3resok resok;
 *   default: void;
 *   };
 */
import type { XdrWriter } from '@nfs-ts/xdr';
import type { RpcCall } from '../../rpc/types.js';
import type { Attr } from '../../vfs/types.js';
import { toNfsstat3 } from '../../errors/nfsstat.js';
import { NFS3_OK } from '../constants.js';
import type { Nfs3Context } from '../context.js';
import { readFh } from '../structs/fh.js';
import { writeFattr3 } from '../structs/attr.js';

export function getattr3(ctx: Nfs3Context, call: RpcCall, reply: XdrWriter): void {
  const fh = readFh(call.args);
  let attr: Attr;
  try {
    attr = ctx.fs.getattr(ctx.fs.resolve(fh));
  } catch (err) {
    reply.uint32(toNfsstat3(err, 'GETATTR', ctx, call));
    return;
  }
  reply.uint32(NFS3_OK);
  writeFattr3(reply, attr);
}
