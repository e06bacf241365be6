/*
 * RFC 1813 §3.3.17
 *
 *   READDIRPLUS3res NFSPROC3_READDIRPLUS(READDIRPLUS3args) = 17;
 *
 *   struct READDIRPLUS3args {
 *     nfs_fh3 dir; cookie3 cookie; cookieverf3 cookieverf; count3 dircount; count3 maxcount;
 *   };
 *   struct entryplus3 {
 *     fileid3 fileid; filename3 name; cookie3 cookie;
 *     post_op_attr name_attributes; post_op_fh3 name_handle; entryplus3 *nextentry;
 *   };
 *   struct dirlistplus3 { entryplus3 *entries; bool eof; };
 *   struct READDIRPLUS3resok {
 *     post_op_attr dir_attributes; cookieverf3 cookieverf; dirlistplus3 reply;
 *   };
 *   struct READDIRPLUS3resfail { post_op_attr dir_attributes; };
 *   union READDIRPLUS3res switch (nfsstat3 status) {
 *   case NFS3_OK: READDIRPLUS3resok resok;
 *   default: READDIRPLUS3resfail resfail;
 *   };
 *
 * Two byte limits, both honoured exactly:
 * - maxcount bounds the whole encoded READDIRPLUS3resok (as READDIR's count);
 * - dircount bounds the "directory information" only, i.e. the entries as READDIR would encode
 *   them (value_follows + fileid + name + cookie), without attributes and handles. A dircount
 *   of 0 means no such limit (some clients send it; knfsd ignores dircount altogether).
 * Nothing fits but entries exist: NFS3ERR_TOOSMALL. eof as READDIR. Verifier never checked.
 */
import type { XdrWriter } from '@nfs-ts/xdr';
import type { RpcCall } from '../../rpc/types.js';
import type { Attr, DirPage, NodeId } from '../../vfs/types.js';
import { toNfsstat3 } from '../../errors/nfsstat.js';
import { readEntries } from '../dir-pages.js';
import { NFS3_COOKIEVERFSIZE, NFS3_OK, NFS3ERR_TOOSMALL } from '../constants.js';
import { maxDirBytesFor, tryGetattr, tryHandleOf, type Nfs3Context } from '../context.js';
import { postOpFhSize, readFh, writePostOpFh } from '../structs/fh.js';
import { FATTR3_SIZE, postOpAttrSize, writePostOpAttr } from '../structs/attr.js';
import { ENTRY3_FIXED, READDIR3RESOK_FIXED, entry3Size } from './readdir.js';

/** An entry with a 4-byte name, attributes and a 28-byte handle. */
const TYPICAL_ENTRY = ENTRY3_FIXED + 4 + 4 + FATTR3_SIZE + 4 + 4 + 28;

export async function readdirplus3(ctx: Nfs3Context, call: RpcCall, reply: XdrWriter): Promise<void> {
  const r = call.args;
  const fh = readFh(r);
  const cookie = r.uint64();
  r.opaqueFixed(NFS3_COOKIEVERFSIZE);
  const dircount = r.uint32();
  const asked = r.uint32();
  const max = maxDirBytesFor(ctx, call);
  const maxcount = asked < max ? asked : max;
  const dirLimit = dircount === 0 ? Infinity : dircount;
  const fs = ctx.fs;
  let dir: NodeId | undefined;
  let page: DirPage;
  try {
    dir = fs.resolve(fh);
    // Entries as they usually are (attributes and a 28-byte handle): asking for more than fit
    // would make the union look up and stat entries only to drop them (and again next page).
    const byMax = Math.floor((maxcount - READDIR3RESOK_FIXED - 4 - 4 - FATTR3_SIZE) / TYPICAL_ENTRY);
    const byDir = Math.floor(dirLimit / (ENTRY3_FIXED + 4));
    const maxEntries = Math.max(1, Math.min(ctx.maxDirEntries, byMax, byDir));
    page = await readEntries(fs, dir, cookie, maxEntries, true, call.cred);
  } catch (err) {
    reply.uint32(toNfsstat3(err, 'READDIRPLUS', ctx, call));
    writePostOpAttr(reply, tryGetattr(fs, dir));
    return;
  }
  const dirAttr: Attr | undefined = tryGetattr(fs, dir);
  const entries = [...page.entries];
  let eof = page.eof;
  const handles: (Buffer | undefined)[] = [];
  let used = postOpAttrSize(dirAttr) + READDIR3RESOK_FIXED;
  let dirUsed = 0;
  let n = 0;
  for (let more = 0; ; more++) {
    for (; n < entries.length; n++) {
      const e = entries[n]!;
      const dirSize = entry3Size(e.name.length);
      const handle = tryHandleOf(fs, e.fileid);
      const size = dirSize + postOpAttrSize(e.attr) + postOpFhSize(handle);
      if (used + size > maxcount || dirUsed + dirSize > dirLimit) break;
      used += size;
      dirUsed += dirSize;
      handles.push(handle);
    }
    // everything fitted and the directory goes on: fill the room left (smaller entries than typical)
    if (n < entries.length || eof || n === 0 || more >= 8 || n >= ctx.maxDirEntries) break;
    const left = maxcount - used;
    if (left < ENTRY3_FIXED + 4 + 4 + 4 || dirLimit - dirUsed < ENTRY3_FIXED + 4) break;
    const room = Math.max(1, Math.min(Math.floor(left / TYPICAL_ENTRY), Math.floor((dirLimit - dirUsed) / (ENTRY3_FIXED + 4)), ctx.maxDirEntries - n));
    let next: DirPage;
    try {
      next = await readEntries(fs, dir, entries[n - 1]!.cookie, room, true, call.cred);
    } catch {
      break;
    }
    entries.push(...next.entries);
    eof = next.eof;
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
    writePostOpAttr(reply, e.attr);
    writePostOpFh(reply, handles[i]);
  }
  reply.uint32(0);
  reply.bool(eof && n === entries.length);
}
