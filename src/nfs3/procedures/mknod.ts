/*
 * RFC 1813 §3.3.11
 *
 *   MKNOD3res NFSPROC3_MKNOD(MKNOD3args) = 11;
 *
 *   struct devicedata3 { sattr3 dev_attributes; specdata3 spec; };
 *   union mknoddata3 switch (ftype3 type) {
 *   case NF3CHR:
 *   case NF3BLK:  devicedata3 device;
 *   case NF3SOCK:
 *   case NF3FIFO: sattr3 pipe_attributes;
 *   default:      void;
 *   };
 *   struct MKNOD3args { diropargs3 where; mknoddata3 what; };
 *   struct MKNOD3resok {
 *     post_op_fh3 obj; post_op_attr obj_attributes; wcc_data dir_wcc;
 *   };
 *   struct MKNOD3resfail { wcc_data dir_wcc; };
 *   union MKNOD3res switch (nfsstat3 status) {
 *   case NFS3_OK: MKNOD3resok resok;
 *   default: MKNOD3resfail resfail;
 *   };
 *
 * The union has a void default, so any other type decodes and is answered NFS3ERR_BADTYPE.
 * Whether devices can be made is the union's call (EPERM/ENOTSUP map through the table).
 */
import type { XdrWriter } from '@nfs-ts/xdr';
import type { RpcCall } from '../../rpc/types.js';
import type { FileType, SetAttr } from '../../vfs/types.js';
import {
  NF3BLK, NF3CHR, NF3FIFO, NF3SOCK, NFS3_OK, NFS3ERR_BADTYPE,
} from '../constants.js';
import type { Nfs3Context } from '../context.js';
import { changeEntry } from '../entry-change.js';
import { readFh } from '../structs/fh.js';
import { readFilename } from '../structs/names.js';
import { readSattr3 } from '../structs/sattr3.js';
import { writeDiropres3 } from '../structs/diropres.js';

const NO_ATTR: SetAttr = Object.freeze({});

export async function mknod3(ctx: Nfs3Context, call: RpcCall, reply: XdrWriter): Promise<void> {
  const r = call.args;
  const dirFh = readFh(r);
  const name = readFilename(r);
  const type = r.enum();
  let attr = NO_ATTR;
  let major = 0;
  let minor = 0;
  let typeOk = false;
  if (type === NF3CHR || type === NF3BLK) {
    attr = readSattr3(r);
    major = r.uint32();
    minor = r.uint32();
    typeOk = true;
  } else if (type === NF3SOCK || type === NF3FIFO) {
    attr = readSattr3(r);
    typeOk = true;
  }
  const { status, dir, pre, result } = await changeEntry(ctx, call, 'MKNOD', dirFh, name,
    (dir) => ctx.fs.mknod(dir, name, type as FileType, attr, { major, minor }, call.cred), typeOk ? NFS3_OK : NFS3ERR_BADTYPE);
  writeDiropres3(reply, ctx.fs, status, result, dir, pre);
}
