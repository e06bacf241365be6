/**
 * NLM4's argument and result structures (XNFS chapter 10, the nlm4_* types):
 *
 *   struct nlm4_lock { string caller_name<LM_MAXSTRLEN>; netobj fh; netobj oh; int32 svid;
 *                      uint64 l_offset; uint64 l_len; };
 *   struct nlm4_holder { bool exclusive; int32 svid; netobj oh; uint64 l_offset; uint64 l_len; };
 *   struct nlm4_testargs   { netobj cookie; bool exclusive; nlm4_lock alock; };
 *   struct nlm4_lockargs   { netobj cookie; bool block; bool exclusive; nlm4_lock alock;
 *                            bool reclaim; int32 state; };
 *   struct nlm4_cancargs   { netobj cookie; bool block; bool exclusive; nlm4_lock alock; };
 *   struct nlm4_unlockargs { netobj cookie; nlm4_lock alock; };
 *   struct nlm4_res        { netobj cookie; nlm4_stats stat; };
 *   struct nlm4_testres    { netobj cookie; nlm4_testrply test_stat; }   (DENIED carries a holder)
 *   struct nlm4_share      { string caller_name<LM_MAXSTRLEN>; netobj fh; netobj oh;
 *                            fsh4_mode mode; fsh4_access access; };
 *   struct nlm4_shareargs  { netobj cookie; nlm4_share share; bool reclaim; };
 *   struct nlm4_shareres   { netobj cookie; nlm4_stats stat; int32 sequence; };
 *   struct nlm4_notify     { string name<LM_MAXSTRLEN>; int32 state; };
 *
 * Ranges are 64-bit; this module turns them into half-open [start, end) bigints, end at most
 * 2^64, with l_len 0 meaning "to the end of any file" (end = 2^64).
 */
import type { XdrReader, XdrWriter } from '@nfs-ts/xdr';
import { LM_MAXSTRLEN, MAXNETOBJ_SZ, nlm4_stats } from './constants.js';

/** One past the last byte of the largest file: the end of a lock of length 0. */
export const END_OF_FILE = 1n << 64n;

export interface Nlm4Lock {
  readonly callerName: string;
  readonly fh: Buffer;
  readonly oh: Buffer;
  readonly svid: number;
  readonly start: bigint;
  /** Exclusive end, at most END_OF_FILE. */
  readonly end: bigint;
}

export interface Holder {
  readonly exclusive: boolean;
  readonly svid: number;
  readonly oh: Buffer;
  readonly start: bigint;
  readonly end: bigint;
}

export function readLock(r: XdrReader): Nlm4Lock {
  const callerName = r.string(LM_MAXSTRLEN).toString('latin1');
  const fh = Buffer.from(r.opaque(MAXNETOBJ_SZ));
  const oh = Buffer.from(r.opaque(MAXNETOBJ_SZ));
  const svid = r.int32();
  const start = r.uint64();
  const len = r.uint64();
  const end = len === 0n || start + len > END_OF_FILE ? END_OF_FILE : start + len;
  return { callerName, fh, oh, svid, start, end };
}

/** l_offset and l_len of a range: length 0 for one that reaches END_OF_FILE. */
export function writeRange(w: XdrWriter, start: bigint, end: bigint): XdrWriter {
  return w.uint64(start).uint64(end === END_OF_FILE ? 0n : end - start);
}

export function writeLock(w: XdrWriter, l: Nlm4Lock): XdrWriter {
  w.string(Buffer.from(l.callerName, 'latin1')).opaque(l.fh).opaque(l.oh).int32(l.svid);
  return writeRange(w, l.start, l.end);
}

export function readCookie(r: XdrReader): Buffer {
  return Buffer.from(r.opaque(MAXNETOBJ_SZ));
}

export interface TestArgs { cookie: Buffer; exclusive: boolean; lock: Nlm4Lock }
export interface LockArgs { cookie: Buffer; block: boolean; exclusive: boolean; lock: Nlm4Lock; reclaim: boolean; state: number }
export interface CancelArgs { cookie: Buffer; block: boolean; exclusive: boolean; lock: Nlm4Lock }
export interface UnlockArgs { cookie: Buffer; lock: Nlm4Lock }
export interface Share { callerName: string; fh: Buffer; oh: Buffer; mode: number; access: number }
export interface ShareArgs { cookie: Buffer; share: Share; reclaim: boolean }
export interface NotifyArgs { name: string; state: number }

export function readTestArgs(r: XdrReader): TestArgs {
  return { cookie: readCookie(r), exclusive: r.bool(), lock: readLock(r) };
}

export function writeTestArgs(w: XdrWriter, a: TestArgs): XdrWriter {
  return writeLock(w.opaque(a.cookie).bool(a.exclusive), a.lock);
}

export function readLockArgs(r: XdrReader): LockArgs {
  return { cookie: readCookie(r), block: r.bool(), exclusive: r.bool(), lock: readLock(r), reclaim: r.bool(), state: r.int32() };
}

export function readCancelArgs(r: XdrReader): CancelArgs {
  return { cookie: readCookie(r), block: r.bool(), exclusive: r.bool(), lock: readLock(r) };
}

export function readUnlockArgs(r: XdrReader): UnlockArgs {
  return { cookie: readCookie(r), lock: readLock(r) };
}

export function readShareArgs(r: XdrReader): ShareArgs {
  const cookie = readCookie(r);
  const share = {
    callerName: r.string(LM_MAXSTRLEN).toString('latin1'),
    fh: Buffer.from(r.opaque(MAXNETOBJ_SZ)),
    oh: Buffer.from(r.opaque(MAXNETOBJ_SZ)),
    mode: r.enum(),
    access: r.enum(),
  };
  return { cookie, share, reclaim: r.bool() };
}

export function readNotifyArgs(r: XdrReader): NotifyArgs {
  return { name: r.string(LM_MAXSTRLEN).toString('latin1'), state: r.int32() };
}

export function writeRes(w: XdrWriter, cookie: Buffer, stat: number): XdrWriter {
  return w.opaque(cookie).enum(stat);
}

/** nlm4_testres; the holder is what NLM4_DENIED carries. */
export function writeTestRes(w: XdrWriter, cookie: Buffer, stat: number, holder?: Holder): XdrWriter {
  w.opaque(cookie).enum(stat);
  if (stat !== nlm4_stats.NLM4_DENIED) return w;
  if (holder === undefined) throw new Error('NLM4_DENIED without the holder');
  return writeRange(w.bool(holder.exclusive).int32(holder.svid).opaque(holder.oh), holder.start, holder.end);
}

export function writeShareRes(w: XdrWriter, cookie: Buffer, stat: number): XdrWriter {
  return w.opaque(cookie).enum(stat).int32(0);
}
