/*
 * RFC 1813 §3.3.14
 *
 *   RENAME3res NFSPROC3_RENAME(RENAME3args) = 14;
 *
 *   struct RENAME3args { diropargs3 from; diropargs3 to; };
 *   struct RENAME3resok   { wcc_data fromdir_wcc; wcc_data todir_wcc; };
 *   struct RENAME3resfail { wcc_data fromdir_wcc; wcc_data todir_wcc; };
 *   union RENAME3res switch (nfsstat3 status) {
 *   case NFS3_OK: RENAME3resok resok;
 *   default: RENAME3resfail resfail;
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
import { writeWcc } from '../structs/attr.js';

export async function rename3(ctx: Nfs3Context, call: RpcCall, reply: XdrWriter): Promise<void> {
  const r = call.args;
  const fromFh = readFh(r);
  const fromName = readFilename(r);
  const toFh = readFh(r);
  const toName = readFilename(r);
  const fs = ctx.fs;
  let fromDir: NodeId | undefined;
  let toDir: NodeId | undefined;
  let fromPre: Attr | undefined;
  let toPre: Attr | undefined;
  let status: number;
  try {
    fromDir = fs.resolve(fromFh);
    toDir = fs.resolve(toFh);
    fromPre = fs.getattr(fromDir);
    toPre = toDir === fromDir ? fromPre : fs.getattr(toDir);
    status = ctx.readOnly ? NFS3ERR_ROFS : checkFilename(fromName);
    if (status === NFS3_OK) status = checkFilename(toName);
    if (status === NFS3_OK) await fs.rename(fromDir, fromName, toDir, toName, call.cred);
  } catch (err) {
    status = toNfsstat3(err, 'RENAME', ctx, call);
  }
  const fromPost = tryGetattr(fs, fromDir);
  const toPost = toDir === fromDir ? fromPost : tryGetattr(fs, toDir);
  reply.uint32(status);
  writeWcc(reply, fromPre, fromPost);
  writeWcc(reply, toPre, toPost);
}
