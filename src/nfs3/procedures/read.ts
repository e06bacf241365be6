/*
 * RFC 1813 §3.3.6
 *
 *   READ3res NFSPROC3_READ(READ3args) = 6;
 *
 *   struct READ3args { nfs_fh3 file; offset3 offset; count3 count; };
 *   struct READ3resok {
 *     post_op_attr file_attributes; count3 count; bool eof; opaque data<>;
 *   };
 *   struct READ3resfail { post_op_attr file_attributes; };
 *   union READ3res switch (nfsstat3 status) {
 *   case NFS3_OK: READ3resok resok;
 *   default: READ3resfail resfail;
 *   };
 *
 * The data is spliced into the reply by reference (XdrWriter.opaqueRef): header, file bytes and
 * padding go out in one writev, never concatenated. count is capped at the advertised rtmax.
 *
 * The data is read into a buffer from ctx.readBuffers, lent to the reply: it goes back to the
 * pool through call.afterReply, which the transport runs once the reply has been written (or
 * dropped, or lost with its connection), never earlier. Where the caller cannot tell when that
 * is (no afterReply), the read gets a buffer of its own.
 */
import type { XdrWriter } from '@nfs-ts/xdr';
import type { RpcCall } from '../../rpc/types.js';
import type { NodeId } from '../../vfs/types.js';
import { toNfsstat3 } from '../../errors/nfsstat.js';
import { NFS3_OK } from '../constants.js';
import { maxIoFor, tryGetattr, type Nfs3Context } from '../context.js';
import { readFh } from '../structs/fh.js';
import { readOffset3 } from '../structs/offset.js';
import { writePostOpAttr } from '../structs/attr.js';

export async function read3(ctx: Nfs3Context, call: RpcCall, reply: XdrWriter): Promise<void> {
  const r = call.args;
  const fh = readFh(r);
  const offset = readOffset3(r);
  const asked = r.uint32();
  const max = maxIoFor(ctx, call);
  const count = asked < max ? asked : max;
  const fs = ctx.fs;
  let id: NodeId | undefined;
  let data: Buffer;
  let eof: boolean;
  try {
    id = fs.resolve(fh);
    let into: Buffer | undefined;
    if (call.afterReply && count > 0) {
      const pool = ctx.readBuffers;
      const b = (into = pool.take(count));
      call.afterReply(() => pool.give(b));
    }
    const res = await fs.read(id, offset, count, call.cred, into);
    data = res.data.length > count ? res.data.subarray(0, count) : res.data;
    eof = res.eof;
  } catch (err) {
    reply.uint32(toNfsstat3(err, 'READ', ctx, call));
    writePostOpAttr(reply, tryGetattr(fs, id));
    return;
  }
  const attr = tryGetattr(fs, id);
  reply.uint32(NFS3_OK);
  writePostOpAttr(reply, attr);
  reply.uint32(data.length);
  reply.bool(eof);
  reply.opaqueRef(data);
}
