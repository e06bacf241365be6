/** Result decoders for tests: the client's view of fattr3, post_op_attr, wcc_data. */
import type { XdrReader } from '@nfs-ts/xdr';

export interface Fattr3 {
  type: number; mode: number; nlink: number; uid: number; gid: number; size: number; used: number;
  rdev: [number, number]; fsid: number; fileid: number;
  atime: [number, number]; mtime: [number, number]; ctime: [number, number];
}

export function fattr3(r: XdrReader): Fattr3 {
  return {
    type: r.uint32(), mode: r.uint32(), nlink: r.uint32(), uid: r.uint32(), gid: r.uint32(),
    size: r.uint64Number(), used: r.uint64Number(), rdev: [r.uint32(), r.uint32()],
    fsid: r.uint64Number(), fileid: r.uint64Number(),
    atime: [r.uint32(), r.uint32()], mtime: [r.uint32(), r.uint32()], ctime: [r.uint32(), r.uint32()],
  };
}

export function postOpAttr(r: XdrReader): Fattr3 | undefined {
  return r.bool() ? fattr3(r) : undefined;
}

export interface WccAttr { size: number; mtime: [number, number]; ctime: [number, number] }

export function preOpAttr(r: XdrReader): WccAttr | undefined {
  return r.bool() ? { size: r.uint64Number(), mtime: [r.uint32(), r.uint32()], ctime: [r.uint32(), r.uint32()] } : undefined;
}

export function wcc(r: XdrReader): { before: WccAttr | undefined; after: Fattr3 | undefined } {
  return { before: preOpAttr(r), after: postOpAttr(r) };
}

export function postOpFh(r: XdrReader): Buffer | undefined {
  return r.bool() ? Buffer.from(r.opaque(64)) : undefined;
}
