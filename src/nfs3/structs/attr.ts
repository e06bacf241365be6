/**
 * fattr3, post_op_attr, pre_op_attr (wcc_attr) and wcc_data (RFC 1813 §2.6).
 *
 *   struct specdata3 { uint32 specdata1; uint32 specdata2; };
 *   struct nfstime3  { uint32 seconds; uint32 nseconds; };
 *   struct fattr3 {
 *     ftype3 type; mode3 mode; uint32 nlink; uid3 uid; gid3 gid;
 *     size3 size; size3 used; specdata3 rdev; uint64 fsid; fileid3 fileid;
 *     nfstime3 atime; nfstime3 mtime; nfstime3 ctime;
 *   };
 *   union post_op_attr switch (bool attributes_follow) {
 *   case TRUE: fattr3 attributes;  case FALSE: void;
 *   };
 *   struct wcc_attr { size3 size; nfstime3 mtime; nfstime3 ctime; };
 *   union pre_op_attr switch (bool attributes_follow) {
 *   case TRUE: wcc_attr attributes;  case FALSE: void;
 *   };
 *   struct wcc_data { pre_op_attr before; post_op_attr after; };
 *
 * Straight-line writes, no per-field closures: GETATTR and LOOKUP go through here.
 */
import type { XdrWriter } from '@nfs-ts/xdr';
import type { Attr } from '../../vfs/types.js';

/** Encoded size of a fattr3. */
export const FATTR3_SIZE = 84;

export function writeFattr3(w: XdrWriter, a: Attr): void {
  w.uint32(a.type);
  w.uint32(a.mode & 0o7777);
  w.uint32(a.nlink);
  w.uint32(a.uid);
  w.uint32(a.gid);
  w.uint64Number(a.size);
  w.uint64Number(a.used);
  w.uint32(a.rdevMajor);
  w.uint32(a.rdevMinor);
  w.uint64Number(a.fsid);
  w.uint64Number(a.fileid);
  w.uint32(a.atime.sec);
  w.uint32(a.atime.nsec);
  w.uint32(a.mtime.sec);
  w.uint32(a.mtime.nsec);
  w.uint32(a.ctime.sec);
  w.uint32(a.ctime.nsec);
}

export function writePostOpAttr(w: XdrWriter, a: Attr | undefined): void {
  if (a === undefined) {
    w.uint32(0);
  } else {
    w.uint32(1);
    writeFattr3(w, a);
  }
}

/** Encoded size of a post_op_attr. */
export function postOpAttrSize(a: Attr | undefined): number {
  return a === undefined ? 4 : 4 + FATTR3_SIZE;
}

export function writePreOpAttr(w: XdrWriter, a: Attr | undefined): void {
  if (a === undefined) {
    w.uint32(0);
  } else {
    w.uint32(1);
    w.uint64Number(a.size);
    w.uint32(a.mtime.sec);
    w.uint32(a.mtime.nsec);
    w.uint32(a.ctime.sec);
    w.uint32(a.ctime.nsec);
  }
}

export function writeWcc(w: XdrWriter, before: Attr | undefined, after: Attr | undefined): void {
  writePreOpAttr(w, before);
  writePostOpAttr(w, after);
}
