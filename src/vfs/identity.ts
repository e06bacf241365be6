/**
 * File handles: 28 bytes that name an object id under a keyed check.
 *
 * Rule: [0]=1 version, [1]=export index (0), [2..3]=0, [4..11]=id u64 BE,
 * [12..27]=HMAC-SHA256(key, bytes 0..11) truncated to 16 bytes. The key lives in the state
 * directory with the identity log (store.ts). A handle of the wrong length, version, export or
 * MAC is EBADHANDLE; a well-formed handle whose id has no live object is ESTALE (namei.ts).
 * Example: id 7 -> 01 00 0000 0000000000000007 <16 MAC bytes>.
 * Races: none; handles are pure functions of (key, id), so the same object always gets the
 * same bytes, before and after copy-up, rename and restart.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { FsError } from '../errors/fs-error.js';

export const HANDLE_LEN = 28;
const VERSION = 1;

export function makeHandle(key: Buffer, id: number, exportIndex = 0): Buffer {
  const h = Buffer.alloc(HANDLE_LEN);
  h[0] = VERSION;
  h[1] = exportIndex;
  h.writeBigUInt64BE(BigInt(id), 4);
  createHmac('sha256', key).update(h.subarray(0, 12)).digest().copy(h, 12, 0, 16);
  return h;
}

/** The id inside a handle, after checking its shape and MAC. */
export function parseHandle(key: Buffer, h: Buffer, exportIndex = 0): number {
  if (h.length !== HANDLE_LEN || h[0] !== VERSION || h[1] !== exportIndex || h[2] !== 0 || h[3] !== 0) {
    throw new FsError('EBADHANDLE');
  }
  const mac = createHmac('sha256', key).update(h.subarray(0, 12)).digest().subarray(0, 16);
  if (!timingSafeEqual(mac, h.subarray(12, 28))) throw new FsError('EBADHANDLE');
  const id = h.readBigUInt64BE(4);
  if (id === 0n || id > BigInt(Number.MAX_SAFE_INTEGER)) throw new FsError('EBADHANDLE');
  return Number(id);
}
