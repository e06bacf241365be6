/**
 * ONC RPC v2 message headers (RFC 5531 §9): decoding a call header and encoding every kind of
 * reply header. Constants keep the RFC's spelling so they grep against the .x text in
 * protocol/spec/rpc.x.
 */
import { XdrError, XdrReader, XdrWriter } from '@nfs-ts/xdr';

export const RPC_VERSION = 2;

export const msg_type = { CALL: 0, REPLY: 1 } as const;
export const reply_stat = { MSG_ACCEPTED: 0, MSG_DENIED: 1 } as const;
export const accept_stat = {
  SUCCESS: 0,
  PROG_UNAVAIL: 1,
  PROG_MISMATCH: 2,
  PROC_UNAVAIL: 3,
  GARBAGE_ARGS: 4,
  SYSTEM_ERR: 5,
} as const;
export const reject_stat = { RPC_MISMATCH: 0, AUTH_ERROR: 1 } as const;
export const auth_stat = {
  AUTH_OK: 0,
  AUTH_BADCRED: 1,
  AUTH_REJECTEDCRED: 2,
  AUTH_BADVERF: 3,
  AUTH_REJECTEDVERF: 4,
  AUTH_TOOWEAK: 5,
  AUTH_INVALIDRESP: 6,
  AUTH_FAILED: 7,
} as const;
export const auth_flavor = { AUTH_NONE: 0, AUTH_SYS: 1, AUTH_SHORT: 2, AUTH_DH: 3, RPCSEC_GSS: 6 } as const;

export type AcceptStat = (typeof accept_stat)[keyof typeof accept_stat];
export type AuthStat = (typeof auth_stat)[keyof typeof auth_stat];

/** opaque_auth body<400>. */
export const MAX_AUTH_BYTES = 400;

export interface OpaqueAuth {
  readonly flavor: number;
  readonly body: Buffer;
}

export interface CallHeader {
  readonly xid: number;
  readonly rpcvers: number;
  readonly prog: number;
  readonly vers: number;
  readonly proc: number;
  readonly cred: OpaqueAuth;
  readonly verf: OpaqueAuth;
}

/**
 * Reads xid and msg_type. Returns undefined for anything that is not a CALL (a REPLY sent to a
 * server): such a message gets no answer. Throws XdrError on fewer than 8 bytes.
 */
export function decodeXid(r: XdrReader): number | undefined {
  const xid = r.uint32();
  return r.uint32() === msg_type.CALL ? xid : undefined;
}

/** Reads rpcvers. A call with rpcvers != 2 must be answered RPC_MISMATCH before anything else is read. */
export function decodeRpcVersion(r: XdrReader): number {
  return r.uint32();
}

/** Reads the rest of call_body after rpcvers, leaving `r` at the procedure's arguments. Throws XdrError. */
export function decodeCallBody(r: XdrReader, xid: number, rpcvers: number): CallHeader {
  const prog = r.uint32();
  const vers = r.uint32();
  const proc = r.uint32();
  const cred = { flavor: r.enum(), body: r.opaque(MAX_AUTH_BYTES) };
  const verf = { flavor: r.enum(), body: r.opaque(MAX_AUTH_BYTES) };
  return { xid, rpcvers, prog, vers, proc, cred, verf };
}

/** Whole call header in one go (tests, the UDP path's simple callers). Throws XdrError. */
export function decodeCallHeader(r: XdrReader): CallHeader | undefined {
  const xid = decodeXid(r);
  if (xid === undefined) return undefined;
  return decodeCallBody(r, xid, decodeRpcVersion(r));
}

/** Caller side: a complete call header with the given credential and an AUTH_NONE verifier. */
export function encodeCallHeader(w: XdrWriter, xid: number, prog: number, vers: number, proc: number, cred: OpaqueAuth): XdrWriter {
  w.uint32(xid).uint32(msg_type.CALL).uint32(RPC_VERSION).uint32(prog).uint32(vers).uint32(proc);
  w.enum(cred.flavor).opaque(cred.body);
  return w.enum(auth_flavor.AUTH_NONE).opaque(Buffer.alloc(0));
}

/**
 * MSG_ACCEPTED with an AUTH_NONE verifier and the given accept_stat. For SUCCESS the procedure's
 * results follow; for PROG_MISMATCH pass the supported range.
 */
export function encodeAcceptedReply(w: XdrWriter, xid: number, stat: AcceptStat, mismatch?: { low: number; high: number }): XdrWriter {
  w.uint32(xid).uint32(msg_type.REPLY).uint32(reply_stat.MSG_ACCEPTED);
  w.enum(auth_flavor.AUTH_NONE).uint32(0);
  w.enum(stat);
  if (stat === accept_stat.PROG_MISMATCH) {
    if (!mismatch) throw new Error('PROG_MISMATCH needs a version range');
    w.uint32(mismatch.low).uint32(mismatch.high);
  }
  return w;
}

/** MSG_DENIED RPC_MISMATCH: this server speaks RPC version 2 only. */
export function encodeRpcMismatch(w: XdrWriter, xid: number): XdrWriter {
  return w.uint32(xid).uint32(msg_type.REPLY).uint32(reply_stat.MSG_DENIED).enum(reject_stat.RPC_MISMATCH).uint32(RPC_VERSION).uint32(RPC_VERSION);
}

/** MSG_DENIED AUTH_ERROR with the reason. */
export function encodeAuthError(w: XdrWriter, xid: number, why: AuthStat): XdrWriter {
  return w.uint32(xid).uint32(msg_type.REPLY).uint32(reply_stat.MSG_DENIED).enum(reject_stat.AUTH_ERROR).enum(why);
}

/** A decoded reply header, for clients (the test client, registration with rpcbind). */
export type ReplyHeader =
  | { xid: number; kind: 'accepted'; stat: number; mismatch?: { low: number; high: number } }
  | { xid: number; kind: 'rpc_mismatch'; low: number; high: number }
  | { xid: number; kind: 'auth_error'; why: number };

/** Reads a reply header, leaving `r` at the results when accepted with SUCCESS. Throws XdrError. */
export function decodeReplyHeader(r: XdrReader): ReplyHeader {
  const xid = r.uint32();
  if (r.uint32() !== msg_type.REPLY) throw new XdrError('not an RPC reply');
  if (r.uint32() === reply_stat.MSG_ACCEPTED) {
    r.enum();
    r.opaque(MAX_AUTH_BYTES);
    const stat = r.enum();
    if (stat === accept_stat.PROG_MISMATCH) return { xid, kind: 'accepted', stat, mismatch: { low: r.uint32(), high: r.uint32() } };
    return { xid, kind: 'accepted', stat };
  }
  if (r.enum() === reject_stat.RPC_MISMATCH) return { xid, kind: 'rpc_mismatch', low: r.uint32(), high: r.uint32() };
  return { xid, kind: 'auth_error', why: r.enum() };
}
