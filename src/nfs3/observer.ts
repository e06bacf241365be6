/**
 * What the NFS program reports of every call it answers (src/metrics counts it): the export,
 * the client, the procedure, the nfsstat3 answered, and the bytes of file data moved.
 *
 * The status and the byte counts are read back from the encoded reply, so no procedure has to
 * report anything: every NFSv3 result starts with its nfsstat3 (RFC 1813), and READ and WRITE
 * carry their count at a place fixed by the attributes before it.
 */
import type { XdrWriter } from '@nfs-ts/xdr';
import * as C from './constants.js';

export interface Nfs3Observer {
  /**
   * One NFS call answered. `exportPath` is undefined when the handle named no export served
   * (STALE or BADHANDLE before any union saw it).
   */
  answered(exportPath: string | undefined, client: string, proc: number, status: number, read: number, written: number): void;
}

/** fattr3 is 21 words; wcc_attr (size, mtime, ctime) 6. */
const FATTR3_BYTES = 84;
const WCC_ATTR_BYTES = 24;

/** Reports the reply encoded from offset `at` of `reply` (the procedure's result body). */
export function observeReply(obs: Nfs3Observer, exportPath: string, client: string, proc: number, reply: XdrWriter, at: number): void {
  const status = reply.uint32At(at);
  let read = 0;
  let written = 0;
  if (status === C.NFS3_OK) {
    if (proc === C.NFSPROC3.READ) {
      // READ3resok: post_op_attr file_attributes; count3 count; bool eof; opaque data<>
      read = reply.uint32At(at + 8 + (reply.uint32At(at + 4) === 1 ? FATTR3_BYTES : 0));
    } else if (proc === C.NFSPROC3.WRITE) {
      // WRITE3resok: wcc_data (pre_op_attr, post_op_attr); count3 count; ...
      let p = at + 4;
      p += 4 + (reply.uint32At(p) === 1 ? WCC_ATTR_BYTES : 0);
      p += 4 + (reply.uint32At(p) === 1 ? FATTR3_BYTES : 0);
      written = reply.uint32At(p);
    }
  }
  obs.answered(exportPath, client, proc, status, read, written);
}

const STATUS_NAMES = new Map<number, string>(
  Object.entries(C).filter(([k, v]) => typeof v === 'number' && (k === 'NFS3_OK' || k.startsWith('NFS3ERR_'))).map(([k, v]) => [v as number, k]),
);

/** 'NFS3ERR_NOENT' for 2: the RFC's name of an nfsstat3 (its number when unknown). */
export function nfsstat3Name(status: number): string {
  return STATUS_NAMES.get(status) ?? String(status);
}
