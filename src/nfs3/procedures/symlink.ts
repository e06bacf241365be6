/*
 * RFC 1813 §3.3.10
 *
 *   SYMLINK3res NFSPROC3_SYMLINK(SYMLINK3args) = 10;
 *
 *   struct symlinkdata3 { sattr3 symlink_attributes; nfspath3 symlink_data; };
 *   struct SYMLINK3args { diropargs3 where; symlinkdata3 symlink; };
 *   struct SYMLINK3resok {
 *     post_op_fh3 obj; post_op_attr obj_attributes; wcc_data dir_wcc;
 *   };
 *   struct SYMLINK3resfail { wcc_data dir_wcc; };
 *   union SYMLINK3res switch (nfsstat3 status) {
 *   case NFS3_OK: SYMLINK3resok resok;
 *   default: SYMLINK3resfail resfail;
 *   };
 *
 * The target is stored as given: the server never follows it, so where it points is harmless.
 */
import type { XdrWriter } from '@nfs-ts/xdr';
import type { RpcCall } from '../../rpc/types.js';
import type { Nfs3Context } from '../context.js';
import { changeEntry } from '../entry-change.js';
import { readFh } from '../structs/fh.js';
import { checkPath, readFilename, readPath } from '../structs/names.js';
import { readSattr3 } from '../structs/sattr3.js';
import { writeDiropres3 } from '../structs/diropres.js';

export async function symlink3(ctx: Nfs3Context, call: RpcCall, reply: XdrWriter): Promise<void> {
  const r = call.args;
  const dirFh = readFh(r);
  const name = readFilename(r);
  const attr = readSattr3(r);
  const target = readPath(r);
  const { status, dir, pre, result } = await changeEntry(ctx, call, 'SYMLINK', dirFh, name,
    (dir) => ctx.fs.symlink(dir, name, target, attr, call.cred), checkPath(target));
  writeDiropres3(reply, ctx.fs, status, result, dir, pre);
}
