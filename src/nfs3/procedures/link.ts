/*
 * RFC 1813 §3.3.15
 *
 *   LINK3res NFSPROC3_LINK(LINK3args) = 15;
 *
 *   struct LINK3args { nfs_fh3 file; diropargs3 link; };
 *   struct LINK3resok   { post_op_attr file_attributes; wcc_data linkdir_wcc; };
 *   struct LINK3resfail { post_op_attr file_attributes; wcc_data linkdir_wcc; };
 *   union LINK3res switch (nfsstat3 status) {
 *   case NFS3_OK: LINK3resok resok;
 *   default: LINK3resfail resfail;
 *   };
 */
import type { XdrWriter } from '@nfs-ts/xdr';
import type { RpcCall } from '../../rpc/types.js';
import type { Attr, NodeId } from '../../vfs/types.js';
import { toNfsstat3 } from '../../errors/nfsstat.js';
import { NFS3_OK, NFS3ERR_ROFS } from '../constants.js';
import { tryGetattr, type Nfs3Context } from '../context.js';
import { readFh } from '../structs/fh.js';
import { checkFilename, readFilename } from '../structs/names.js';
import { writePostOpAttr, writeWcc } from '../structs/attr.js';

export async function link3(ctx: Nfs3Context, call: RpcCall, reply: XdrWriter): Promise<void> {
  const r = call.args;
  const fileFh = readFh(r);
  const dirFh = readFh(r);
  const name = readFilename(r);
  const fs = ctx.fs;
  let file: NodeId | undefined;
  let dir: NodeId | undefined;
  let pre: Attr | undefined;
  let status: number;
  try {
    file = fs.resolve(fileFh);
    dir = fs.resolve(dirFh);
    pre = fs.getattr(dir);
    status = ctx.readOnly ? NFS3ERR_ROFS : checkFilename(name);
    if (status === NFS3_OK) await fs.link(file, dir, name, call.cred);
  } catch (err) {
    status = toNfsstat3(err, 'LINK', ctx, call);
  }
  const fileAttr = tryGetattr(fs, file);
  const dirPost = tryGetattr(fs, dir);
  reply.uint32(status);
  writePostOpAttr(reply, fileAttr);
  writeWcc(reply, pre, dirPost);
}
