/**
 * nfs_fh3 and post_op_fh3 (RFC 1813 §2.5, §2.6).
 *
 *   struct nfs_fh3 { opaque data<NFS3_FHSIZE>; };
 *   union post_op_fh3 switch (bool handle_follows) {
 *   case TRUE:  nfs_fh3 handle;
 *   case FALSE: void;
 *   };
 *
 * A handle longer than 64 bytes is not an nfs_fh3 at all: XdrError, so GARBAGE_ARGS. A handle
 * that decodes but is not one of ours is the VFS's call (EBADHANDLE -> NFS3ERR_BADHANDLE).
 * The handle comes back as a view of the arguments, never a copy.
 */
import type { XdrReader, XdrWriter } from '@nfs-ts/xdr';
import { NFS3_FHSIZE } from '../constants.js';

export function readFh(r: XdrReader): Buffer {
  return r.opaque(NFS3_FHSIZE);
}

export function writeFh(w: XdrWriter, fh: Buffer): void {
  w.opaque(fh);
}

export function writePostOpFh(w: XdrWriter, fh: Buffer | undefined): void {
  if (fh === undefined) {
    w.uint32(0);
  } else {
    w.uint32(1);
    w.opaque(fh);
  }
}

/** Encoded size of a post_op_fh3. */
export function postOpFhSize(fh: Buffer | undefined): number {
  return fh === undefined ? 4 : 8 + pad4(fh.length);
}

export function pad4(n: number): number {
  return n + ((4 - (n % 4)) % 4);
}
