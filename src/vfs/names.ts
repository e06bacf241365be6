/**
 * Names: the one place a client-supplied component is checked, and the READDIR cookie of a name.
 *
 * Rule: a component is raw bytes. It may not be empty, '.', '..', contain '/' or NUL, or be
 * longer than 255 bytes. Names that are union markers in OCI-format layers (`.wh.*`, OCI/aufs
 * whiteouts) are invisible there and cannot be created in an OCI-format upper (namei.ts,
 * union.ts checkNewName); in overlayfs-format layers they are names like any other. Internally names are "binary strings" (latin1 of the raw
 * bytes), a lossless 1:1 mapping that Map keys and path concatenation can use; node:fs gets the
 * bytes back through Buffer.from(s, 'latin1').
 * Example: Buffer 'a/b' -> EINVAL; '.wh.foo' in OCI format -> EPERM on create, ENOENT on lookup.
 * Races: none (pure functions).
 */
import { FsError } from '../errors/fs-error.js';

export const NAME_MAX = 255;
export const WH_PREFIX = '.wh.';
export const WH_OPAQUE = '.wh..wh..opq';

/** Validate a client name for lookup: returns the binary string. */
export function checkName(name: Buffer): string {
  if (name.length === 0) throw new FsError('EINVAL', 'empty name');
  if (name.length > NAME_MAX) throw new FsError('ENAMETOOLONG');
  if (name.includes(0x2f) || name.includes(0)) throw new FsError('EINVAL', 'name contains / or NUL');
  const s = name.toString('latin1');
  if (s === '.' || s === '..') throw new FsError('EINVAL', 'dot name');
  return s;
}

export function isMarkerName(s: string): boolean {
  return s.startsWith(WH_PREFIX);
}

/** Binary string of a path element from a real file name (Buffer from readdir). */
export function bin(b: Buffer): string {
  return b.toString('latin1');
}

export function pathBuf(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const MASK63 = (1n << 63n) - 1n;

/**
 * READDIR cookie of a name: FNV-1a-64 of the bytes, top bit cleared, values < 3 bumped to 3
 * ('.' = 1, '..' = 2). Independent of layer, position and time, so it survives adds, removes,
 * copy-ups and restarts (the ext4 htree idea). Computed with two 32-bit halves: BigInt only at
 * the end.
 */
export function cookieOf(name: string): bigint {
  // FNV-1a 64 in 32-bit halves: h = (h ^ b) * prime mod 2^64, prime = 2^40 + 0x1b3.
  let hi = 0xcbf29ce4 >>> 0;
  let lo = 0x84222325 >>> 0;
  for (let i = 0; i < name.length; i++) {
    lo = (lo ^ name.charCodeAt(i)) >>> 0;
    // multiply (hi,lo) by 0x100 0000 01b3: lo*0x1b3 + (lo << 40) + (hi*0x1b3 << 32)
    const loMul = lo * 0x1b3;
    const newLo = loMul >>> 0;
    const carry = Math.floor(loMul / 0x100000000);
    const newHi = (Math.imul(hi, 0x1b3) + carry + ((lo << 8) >>> 0)) >>> 0;
    hi = newHi;
    lo = newLo;
  }
  let c = ((BigInt(hi) << 32n) | BigInt(lo)) & MASK63;
  if (c < 3n) c = 3n;
  return c;
}

/** Reference (slow) implementation, used by tests. */
export function cookieOfRef(name: string): bigint {
  let h = FNV_OFFSET;
  for (let i = 0; i < name.length; i++) {
    h ^= BigInt(name.charCodeAt(i));
    h = (h * FNV_PRIME) & ((1n << 64n) - 1n);
  }
  let c = h & MASK63;
  if (c < 3n) c = 3n;
  return c;
}
