/*
 * RFC 1813 §3.3.4
 *
 *   ACCESS3res NFSPROC3_ACCESS(ACCESS3args) = 4;
 *
 *   const ACCESS3_READ = 0x0001; const ACCESS3_LOOKUP = 0x0002; const ACCESS3_MODIFY = 0x0004;
 *   const ACCESS3_EXTEND = 0x0008; const ACCESS3_DELETE = 0x0010; const ACCESS3_EXECUTE = 0x0020;
 *   struct ACCESS3args { nfs_fh3 object; uint32 access; };
 *   struct ACCESS3resok { post_op_attr obj_attributes; uint32 access; };
 *   struct ACCESS3resfail { post_op_attr obj_attributes; };
 *   union ACCESS3res switch (nfsstat3 status) {
 *   case NFS3_OK: ACCESS3resok resok;
 *   default: ACCESS3resfail resfail;
 *   };
 *
 * On a read-only union MODIFY, EXTEND and DELETE are withheld for files, directories and
 * symlinks whatever the permission bits say (as knfsd on a read-only export), so clients do not
 * offer writes that can only fail with NFS3ERR_ROFS. Devices, fifos and sockets keep them.
 */
import type { XdrWriter } from '@nfs-ts/xdr';
import type { RpcCall } from '../../rpc/types.js';
import type { Attr, NodeId } from '../../vfs/types.js';
import { toNfsstat3 } from '../../errors/nfsstat.js';
import {
  ACCESS3_DELETE, ACCESS3_EXTEND, ACCESS3_MODIFY, NF3DIR, NF3LNK, NF3REG, NFS3_OK,
} from '../constants.js';

const WRITE_BITS = ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_DELETE;
import { tryGetattr, type Nfs3Context } from '../context.js';
import { readFh } from '../structs/fh.js';
import { writePostOpAttr } from '../structs/attr.js';

export function access3(ctx: Nfs3Context, call: RpcCall, reply: XdrWriter): void {
  const r = call.args;
  const fh = readFh(r);
  const mask = r.uint32();
  const fs = ctx.fs;
  let id: NodeId | undefined;
  let attr: Attr;
  let granted: number;
  try {
    id = fs.resolve(fh);
    attr = fs.getattr(id);
    // Never more than was asked, whatever the VFS says.
    granted = fs.access(id, mask, call.cred) & mask;
    if (ctx.readOnly && (attr.type === NF3REG || attr.type === NF3DIR || attr.type === NF3LNK)) {
      granted &= ~WRITE_BITS;
    }
  } catch (err) {
    reply.uint32(toNfsstat3(err, 'ACCESS', ctx, call));
    writePostOpAttr(reply, tryGetattr(fs, id));
    return;
  }
  reply.uint32(NFS3_OK);
  writePostOpAttr(reply, attr);
  reply.uint32(granted);
}
