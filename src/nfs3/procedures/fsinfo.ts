/*
 * RFC 1813 §3.3.19
 *
 *   FSINFO3res NFSPROC3_FSINFO(FSINFO3args) = 19;
 *
 *   const FSF3_LINK = 0x0001; const FSF3_SYMLINK = 0x0002;
 *   const FSF3_HOMOGENEOUS = 0x0008; const FSF3_CANSETTIME = 0x0010;
 *   struct FSINFO3args { nfs_fh3 fsroot; };
 *   struct FSINFO3resok {
 *     post_op_attr obj_attributes;
 *     uint32 rtmax; uint32 rtpref; uint32 rtmult;
 *     uint32 wtmax; uint32 wtpref; uint32 wtmult;
 *     uint32 dtpref;
 *     size3 maxfilesize; nfstime3 time_delta; uint32 properties;
 *   };
 *   struct FSINFO3resfail { post_op_attr obj_attributes; };
 *   union FSINFO3res switch (nfsstat3 status) {
 *   case NFS3_OK: FSINFO3resok resok;
 *   default: FSINFO3resfail resfail;
 *   };
 *
 * rtmax/wtmax decide the Linux client's rsize/wsize: 1 MiB, or clients crawl. The attributes
 * matter too: the kernel skips a GETATTR after MNT when FSINFO carries them.
 * maxfilesize: 2^53-1, the largest offset this server represents exactly.
 */
import type { XdrWriter } from '@nfs-ts/xdr';
import type { RpcCall } from '../../rpc/types.js';
import { MAX_FILE_SIZE, type Attr } from '../../vfs/types.js';
import { toNfsstat3 } from '../../errors/nfsstat.js';
import { FSF3_CANSETTIME, FSF3_HOMOGENEOUS, FSF3_LINK, FSF3_SYMLINK, NFS3_OK } from '../constants.js';
import { maxIoFor, type Nfs3Context } from '../context.js';
import { readFh } from '../structs/fh.js';
import { writePostOpAttr } from '../structs/attr.js';

export const FSINFO_PROPERTIES = FSF3_LINK | FSF3_SYMLINK | FSF3_HOMOGENEOUS | FSF3_CANSETTIME;
export const FSINFO_RTMULT = 4096;

export function fsinfo3(ctx: Nfs3Context, call: RpcCall, reply: XdrWriter): void {
  const fh = readFh(call.args);
  const fs = ctx.fs;
  let attr: Attr;
  try {
    attr = fs.getattr(fs.resolve(fh));
  } catch (err) {
    reply.uint32(toNfsstat3(err, 'FSINFO', ctx, call));
    reply.uint32(0);
    return;
  }
  reply.uint32(NFS3_OK);
  writePostOpAttr(reply, attr);
  const maxIo = maxIoFor(ctx, call);
  reply.uint32(maxIo);
  reply.uint32(maxIo);
  reply.uint32(FSINFO_RTMULT);
  reply.uint32(maxIo);
  reply.uint32(maxIo);
  reply.uint32(FSINFO_RTMULT);
  reply.uint32(ctx.dtpref);
  reply.uint64Number(MAX_FILE_SIZE);
  reply.uint32(0);
  reply.uint32(1);
  reply.uint32(FSINFO_PROPERTIES);
}
