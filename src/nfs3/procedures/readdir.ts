/*
 * RFC 1813 §3.3.16
 *
 *   READDIR3res NFSPROC3_READDIR(READDIR3args) = 16;
 *
 *   struct READDIR3args {
 *     nfs_fh3 dir; cookie3 cookie; cookieverf3 cookieverf; count3 count;
 *   };
 *   struct entry3 {
 *     fileid3 fileid; filename3 name; cookie3 cookie; entry3 *nextentry;
 *   };
 *   struct dirlist3 { entry3 *entries; bool eof; };
 *   struct READDIR3resok {
 *     post_op_attr dir_attributes; cookieverf3 cookieverf; dirlist3 reply;
 *   };
 *   struct READDIR3resfail { post_op_attr dir_attributes; };
 *   union READDIR3res switch (nfsstat3 status) {
 *   case NFS3_OK: READDIR3resok resok;
 *   default: READDIR3resfail resfail;
 *   };
 *
 * Byte limit: `count` bounds the encoded READDIR3resok (everything after the status), computed
 * exactly: post_op_attr + cookieverf 8 + the terminating FALSE 4 + eof 4, plus per entry
 * value_follows 4 + fileid 8 + name (4 + padded) + cookie 8. If the VFS has entries but not
 * even one fits: NFS3ERR_TOOSMALL. eof only when the VFS said so and every entry it gave fit.
 * The client's cookie verifier is never checked (knfsd's leniency; a strict check hangs `ls`);
 * the VFS's verifier is echoed.
 */
import type { XdrWriter } from '@nfs-ts/xdr';
import type { RpcCall } from '../../rpc/types.js';
import type { Attr, DirPage, NodeId } from '../../vfs/types.js';
import { toNfsstat3 } from '../../errors/nfsstat.js';
import { readEntries } from '../dir-pages.js';
import { NFS3_COOKIEVERFSIZE, NFS3_OK, NFS3ERR_TOOSMALL } from '../constants.js';
import { maxDirBytesFor, tryGetattr, type Nfs3Context } from '../context.js';
import { pad4, readFh } from '../structs/fh.js';
import { postOpAttrSize, writePostOpAttr } from '../structs/attr.js';

/** value_follows + fileid + name length word + cookie: an entry3 less its name bytes. */
export const ENTRY3_FIXED = 4 + 8 + 4 + 8;
/** post_op_attr excluded: cookieverf + terminating FALSE + eof. */
export const READDIR3RESOK_FIXED = 8 + 4 + 4;

export function entry3Size(nameLength: number): number {
  return ENTRY3_FIXED + pad4(nameLength);
}

export async function readdir3(ctx: Nfs3Context, call: RpcCall, reply: XdrWriter): Promise<void> {
  const r = call.args;
  const fh = readFh(r);
  const cookie = r.uint64();
  r.opaqueFixed(NFS3_COOKIEVERFSIZE);
  const asked = r.uint32();
  const max = maxDirBytesFor(ctx, call);
  const count = asked < max ? asked : max;
  const fs = ctx.fs;
  let dir: NodeId | undefined;
  let page: DirPage;
  let dirAttr: Attr | undefined;
  try {
    dir = fs.resolve(fh);
    // The smallest entry (a 1-4 byte name) bounds how many could possibly fit.
    const room = Math.floor((count - READDIR3RESOK_FIXED - 4) / (ENTRY3_FIXED + 4));
    const maxEntries = Math.max(1, Math.min(ctx.maxDirEntries, room));
    page = await readEntries(fs, dir, cookie, maxEntries, false, call.cred);
  } catch (err) {
    reply.uint32(toNfsstat3(err, 'READDIR', ctx, call));
    writePostOpAttr(reply, tryGetattr(fs, dir));
    return;
  }
  dirAttr = tryGetattr(fs, dir);
  const entries = page.entries;
  let used = postOpAttrSize(dirAttr) + READDIR3RESOK_FIXED;
  let n = 0;
  for (; n < entries.length; n++) {
    const size = entry3Size(entries[n]!.name.length);
    if (used + size > count) break;
    used += size;
  }
  if (n === 0 && entries.length > 0) {
    reply.uint32(NFS3ERR_TOOSMALL);
    writePostOpAttr(reply, dirAttr);
    return;
  }
  reply.uint32(NFS3_OK);
  writePostOpAttr(reply, dirAttr);
  reply.uint64(page.verifier);
  for (let i = 0; i < n; i++) {
    const e = entries[i]!;
    reply.uint32(1);
    reply.uint64Number(e.fileid);
    reply.opaque(e.name);
    reply.uint64(e.cookie);
  }
  reply.uint32(0);
  reply.bool(page.eof && n === entries.length);
}
