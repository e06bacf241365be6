/**
 * offset3 and size3 (RFC 1813 §2.5): uint64 on the wire, numbers here. A value of 2^53 or more
 * cannot be a number exactly; it becomes Infinity, never a nearby smaller value: a READ there is
 * past the end of any file, and a WRITE or a SETATTR of size there is EFBIG (src/vfs), as
 * knfsd answers offsets past what the file system can hold.
 */
import type { XdrReader } from '@nfs-ts/xdr';

const MAX_EXACT = BigInt(Number.MAX_SAFE_INTEGER);

export function readOffset3(r: XdrReader): number {
  const v = r.uint64();
  return v > MAX_EXACT ? Infinity : Number(v);
}
