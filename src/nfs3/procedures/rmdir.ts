/*
 * RFC 1813 §3.3.13
 *
 *   RMDIR3res NFSPROC3_RMDIR(RMDIR3args) = 13;
 *
 *   struct RMDIR3args { diropargs3 object; };
 *   struct RMDIR3resok { wcc_data dir_wcc; };
 *   struct RMDIR3resfail { wcc_data dir_wcc; };
 *   union RMDIR3res switch (nfsstat3 status) {
 *   case NFS3_OK: RMDIR3resok resok;
 *   default: RMDIR3resfail resfail;
 *   };
 *
 * Whether a name present in a lower layer leaves a whiteout is the union's business.
 */
import type { XdrWriter } from '@nfs-ts/xdr';
import type { RpcCall } from '../../rpc/types.js';
import { tryGetattr, type Nfs3Context } from '../context.js';
import { changeEntry } from '../entry-change.js';
import { readFh } from '../structs/fh.js';
import { readFilename } from '../structs/names.js';
import { writeWcc } from '../structs/attr.js';

export async function rmdir3(ctx: Nfs3Context, call: RpcCall, reply: XdrWriter): Promise<void> {
  const r = call.args;
  const dirFh = readFh(r);
  const name = readFilename(r);
  const { status, dir, pre } = await changeEntry(ctx, call, 'RMDIR', dirFh, name, (dir) => ctx.fs.rmdir(dir, name, call.cred));
  reply.uint32(status);
  writeWcc(reply, pre, tryGetattr(ctx.fs, dir));
}
