/*
 * RFC 1813 §3.3.8
 *
 *   CREATE3res NFSPROC3_CREATE(CREATE3args) = 8;
 *
 *   enum createmode3 { UNCHECKED = 0, GUARDED = 1, EXCLUSIVE = 2 };
 *   union createhow3 switch (createmode3 mode) {
 *   case UNCHECKED:
 *   case GUARDED:   sattr3 obj_attributes;
 *   case EXCLUSIVE: createverf3 verf;
 *   };
 *   struct CREATE3args { diropargs3 where; createhow3 how; };
 *   struct CREATE3resok {
 *     post_op_fh3 obj; post_op_attr obj_attributes; wcc_data dir_wcc;
 *   };
 *   struct CREATE3resfail { wcc_data dir_wcc; };
 *   union CREATE3res switch (nfsstat3 status) {
 *   case NFS3_OK: CREATE3resok resok;
 *   default: CREATE3resfail resfail;
 *   };
 *
 * EXCLUSIVE semantics (storing the verifier durably, succeeding on a retransmit) belong to the
 * union; this file only carries the verifier across.
 */
import { XdrError, type XdrWriter } from '@nfs-ts/xdr';
import type { RpcCall } from '../../rpc/types.js';
import type { CreateHow } from '../../vfs/types.js';
import { EXCLUSIVE, GUARDED, NFS3_CREATEVERFSIZE, UNCHECKED } from '../constants.js';
import type { Nfs3Context } from '../context.js';
import { changeEntry } from '../entry-change.js';
import { readFh } from '../structs/fh.js';
import { readFilename } from '../structs/names.js';
import { readSattr3 } from '../structs/sattr3.js';
import { writeDiropres3 } from '../structs/diropres.js';

export async function create3(ctx: Nfs3Context, call: RpcCall, reply: XdrWriter): Promise<void> {
  const r = call.args;
  const dirFh = readFh(r);
  const name = readFilename(r);
  const mode = r.enum();
  let how: CreateHow;
  if (mode === UNCHECKED) how = { mode: 'unchecked', attr: readSattr3(r) };
  else if (mode === GUARDED) how = { mode: 'guarded', attr: readSattr3(r) };
  else if (mode === EXCLUSIVE) how = { mode: 'exclusive', verifier: r.opaqueFixed(NFS3_CREATEVERFSIZE) };
  else throw new XdrError(`createmode3 out of range: ${mode}`);
  const { status, dir, pre, result } = await changeEntry(ctx, call, 'CREATE', dirFh, name, (dir) => ctx.fs.create(dir, name, how, call.cred));
  writeDiropres3(reply, ctx.fs, status, result, dir, pre);
}
