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
import type { Attr, NodeId } from '../../vfs/types.js';
import { toNfsstat3 } from '../../errors/nfsstat.js';
import { NFS3_OK, NFS3ERR_ROFS } from '../constants.js';
import type { Nfs3Context } from '../context.js';
import { readFh } from '../structs/fh.js';
import { checkFilename, checkPath, readFilename, readPath } from '../structs/names.js';
import { readSattr3 } from '../structs/sattr3.js';
import { writeDiropres3 } from '../structs/diropres.js';

export async function symlink3(ctx: Nfs3Context, call: RpcCall, reply: XdrWriter): Promise<void> {
  const r = call.args;
  const dirFh = readFh(r);
  const name = readFilename(r);
  const attr = readSattr3(r);
  const target = readPath(r);
  const fs = ctx.fs;
  let dir: NodeId | undefined;
  let pre: Attr | undefined;
  let obj: NodeId | undefined;
  let status: number;
  try {
    dir = fs.resolve(dirFh);
    pre = fs.getattr(dir);
    status = fs.readOnly ? NFS3ERR_ROFS : checkFilename(name);
    if (status === NFS3_OK) status = checkPath(target);
    if (status === NFS3_OK) obj = await fs.symlink(dir, name, target, attr, call.cred);
  } catch (err) {
    status = toNfsstat3(err, 'SYMLINK');
  }
  writeDiropres3(reply, fs, status, obj, dir, pre);
}
