/**
 * The result shared by CREATE, MKDIR, SYMLINK and MKNOD (RFC 1813 §3.3.8-11):
 *
 *   struct CREATE3resok {
 *     post_op_fh3 obj; post_op_attr obj_attributes; wcc_data dir_wcc;
 *   };
 *   struct CREATE3resfail { wcc_data dir_wcc; };
 *
 * The new object's handle and attributes are optional on the wire: if either cannot be had
 * after a successful create the call still succeeds and the client LOOKUPs the name.
 */
import type { XdrWriter } from '@nfs-ts/xdr';
import type { Attr, NodeId, UnionFs } from '../../vfs/types.js';
import { NFS3_OK } from '../constants.js';
import { tryGetattr, tryHandleOf } from '../context.js';
import { writePostOpFh } from './fh.js';
import { writePostOpAttr, writeWcc } from './attr.js';

export function writeDiropres3(
  w: XdrWriter, fs: UnionFs, status: number, obj: NodeId | undefined,
  dir: NodeId | undefined, dirPre: Attr | undefined,
): void {
  if (status === NFS3_OK && obj !== undefined) {
    const fh = tryHandleOf(fs, obj);
    const objAttr = tryGetattr(fs, obj);
    const dirPost = tryGetattr(fs, dir);
    w.uint32(NFS3_OK);
    writePostOpFh(w, fh);
    writePostOpAttr(w, objAttr);
    writeWcc(w, dirPre, dirPost);
  } else {
    const dirPost = tryGetattr(fs, dir);
    w.uint32(status);
    writeWcc(w, dirPre, dirPost);
  }
}
