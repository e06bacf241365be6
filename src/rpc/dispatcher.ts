/**
 * Routes one decoded RPC record to a registered program version and produces every RPC-level
 * outcome (RFC 5531 §9): RPC_MISMATCH, AUTH_ERROR, PROG_UNAVAIL, PROG_MISMATCH, PROC_UNAVAIL,
 * GARBAGE_ARGS, SYSTEM_ERR. Procedures only ever see well-formed calls and only write results.
 * Transport-neutral: TCP and UDP hand in records and get back the reply as buffers.
 */
import { XdrError, XdrReader, XdrWriter } from '@nfs-ts/xdr';
import { child } from '../log.js';
import { authenticate } from './auth.js';
import type { CallCompletion } from './completion.js';
import { DuplicateRequestCache } from './drc.js';
import type { RpcObserver, RpcRejection } from './observer.js';
import {
  accept_stat,
  decodeCallBody,
  decodeRpcVersion,
  decodeXid,
  encodeAcceptedReply,
  encodeAuthError,
  encodeRpcMismatch,
  RPC_VERSION,
  type AcceptStat,
} from './message.js';
import type { Peer, ProgramVersion, RpcCall } from './types.js';

const log = child('rpc');

/**
 * dispatch's answer to a message too short or malformed to carry a call header: on TCP the
 * stream can no longer be trusted and is closed (as Linux nfsd does); on UDP it is dropped.
 */
export const DISCONNECT: unique symbol = Symbol('disconnect');
export type DispatchResult = Buffer[] | null | typeof DISCONNECT;

export interface DispatcherOptions {
  /** Duplicate request cache for ProgramVersion.nonIdempotent procedures; one is made if omitted. */
  drc?: DuplicateRequestCache;
  /** Told of every call, rejection and retransmit (src/metrics); none by default. */
  observer?: RpcObserver;
}

export class Dispatcher {
  /** prog -> vers -> ProgramVersion */
  private readonly programs = new Map<number, Map<number, ProgramVersion>>();
  readonly drc: DuplicateRequestCache;
  readonly observer: RpcObserver | undefined;

  constructor(o: DispatcherOptions = {}) {
    this.drc = o.drc ?? new DuplicateRequestCache();
    this.observer = o.observer;
  }

  register(pv: ProgramVersion): this {
    let versions = this.programs.get(pv.prog);
    if (!versions) this.programs.set(pv.prog, (versions = new Map()));
    if (versions.has(pv.vers)) throw new Error(`program ${pv.prog} version ${pv.vers} registered twice`);
    versions.set(pv.vers, pv);
    return this;
  }

  /** Every registered program version (for portmapper registration). */
  registered(): ProgramVersion[] {
    return [...this.programs.values()].flatMap((v) => [...v.values()]);
  }

  /**
   * Answers one RPC message: the reply message as buffers (no record mark), null when nothing
   * must be sent (a REPLY sent to us, a retransmit still in progress), or DISCONNECT for a call
   * header that does not decode. A call whose procedure answers synchronously (GETATTR, LOOKUP,
   * ACCESS from memory) is answered synchronously, with no promise in between; otherwise the
   * answer is a promise, which never rejects.
   *
   * `completion`, when given, is what the transport runs once it is done with the reply (sent,
   * dropped or lost with the connection): procedures see it as `call.afterReply` and may lend
   * memory to the reply until then. Without it, `call.afterReply` is absent. The dispatcher
   * itself never runs it: whatever the outcome, that is the transport's job.
   */
  dispatch(record: Buffer, peer: Peer, completion?: CallCompletion): DispatchResult | Promise<DispatchResult> {
    if (record.length < 8) return DISCONNECT;
    const r = new XdrReader(record);
    const xid = decodeXid(r);
    if (xid === undefined) return null;
    let header;
    try {
      const rpcvers = decodeRpcVersion(r);
      if (rpcvers !== RPC_VERSION) {
        this.observer?.rejected('rpc_mismatch');
        return encodeRpcMismatch(new XdrWriter(24), xid).toBuffers();
      }
      header = decodeCallBody(r, xid, rpcvers);
    } catch (e) {
      if (e instanceof XdrError) {
        if (log.isDebugEnabled()) log.debug(`undecodable call header from ${peer.address}:${peer.port}: ${e.message}`);
        this.observer?.dropped('malformed_header');
        return DISCONNECT;
      }
      throw e;
    }
    const cred = authenticate(header.cred);
    if (typeof cred === 'number') {
      this.observer?.rejected('auth_error');
      return encodeAuthError(new XdrWriter(24), xid, cred).toBuffers();
    }

    const versions = this.programs.get(header.prog);
    if (!versions) return this.reject(xid, accept_stat.PROG_UNAVAIL);
    const pv = versions.get(header.vers);
    if (!pv) {
      let low = Infinity;
      let high = 0;
      for (const v of versions.keys()) {
        low = Math.min(low, v);
        high = Math.max(high, v);
      }
      this.observer?.rejected('prog_mismatch');
      return encodeAcceptedReply(new XdrWriter(32), xid, accept_stat.PROG_MISMATCH, { low, high }).toBuffers();
    }
    const procedure = pv.procedures[header.proc];
    if (!procedure) return this.reject(xid, accept_stat.PROC_UNAVAIL);

    if (log.isDebugEnabled()) log.debug(`${pv.name} v${pv.vers} proc ${header.proc} xid ${xid >>> 0} from ${peer.address}:${peer.port} uid ${cred.uid}`);
    const call: RpcCall = completion
      ? { xid, prog: header.prog, vers: header.vers, proc: header.proc, cred, args: r, peer, afterReply: (fn) => completion.add(fn) }
      : { xid, prog: header.prog, vers: header.vers, proc: header.proc, cred, args: r, peer };
    const obs = this.observer;
    if (obs === undefined) return this.answer(pv, call);
    obs.callStarted();
    const t0 = performance.now();
    const result = this.answer(pv, call);
    if (!(result instanceof Promise)) {
      obs.callFinished(pv, call.proc, (performance.now() - t0) / 1000);
      return result;
    }
    return result.then((r) => {
      obs.callFinished(pv, call.proc, (performance.now() - t0) / 1000);
      return r;
    });
  }

  /** Runs the call, or answers a retransmit of a non-idempotent one from the duplicate request cache. */
  private answer(pv: ProgramVersion, call: RpcCall): DispatchResult | Promise<DispatchResult> {
    if (!pv.nonIdempotent?.has(call.proc)) return this.run(pv, call);
    const key = DuplicateRequestCache.key(call.peer.address, call.peer.port, call.xid, call.prog, call.vers, call.proc);
    const seen = this.drc.begin(key);
    if (seen.state === 'done') {
      this.observer?.retransmit('replayed');
      return [seen.reply];
    }
    if (seen.state === 'in-progress') {
      this.observer?.retransmit('dropped');
      return null;
    }
    // Copied into memory of its own: never a pool slab, never a buffer lent by the procedure.
    const complete = (reply: Buffer[]): Buffer[] => {
      this.drc.complete(key, reply);
      return reply;
    };
    const reply = this.run(pv, call);
    return reply instanceof Promise ? reply.then(complete) : complete(reply);
  }

  /** The procedure's reply, synchronously when the procedure returned no promise. */
  private run(pv: ProgramVersion, call: RpcCall): Buffer[] | Promise<Buffer[]> {
    const w = new XdrWriter();
    encodeAcceptedReply(w, call.xid, accept_stat.SUCCESS);
    let pending: void | Promise<void>;
    try {
      pending = (pv.procedures[call.proc] as NonNullable<ProgramVersion['procedures'][number]>)(call, w);
    } catch (e) {
      return this.failed(pv, call, e);
    }
    if (pending === undefined) return w.toBuffers();
    return pending.then(() => w.toBuffers(), (e: unknown) => this.failed(pv, call, e));
  }

  /** A procedure threw: GARBAGE_ARGS for arguments that did not decode, SYSTEM_ERR (logged) for anything else. */
  private failed(pv: ProgramVersion, call: RpcCall, e: unknown): Buffer[] {
    if (e instanceof XdrError) {
      if (log.isDebugEnabled()) log.debug(`${pv.name} proc ${call.proc}: garbage args from ${call.peer.address}: ${e.message}`);
      return this.reject(call.xid, accept_stat.GARBAGE_ARGS);
    }
    log.error(`${pv.name} v${pv.vers} ${procedureName(pv, call.proc)} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`,
      { procedure: procedureName(pv, call.proc), client: call.peer.address });
    return this.reject(call.xid, accept_stat.SYSTEM_ERR);
  }

  private reject(xid: number, stat: AcceptStat): Buffer[] {
    this.observer?.rejected(REJECTIONS[stat] as RpcRejection);
    return encodeAcceptedReply(new XdrWriter(24), xid, stat).toBuffers();
  }
}

const REJECTIONS: Partial<Record<AcceptStat, RpcRejection>> = {
  [accept_stat.PROG_UNAVAIL]: 'prog_unavail',
  [accept_stat.PROC_UNAVAIL]: 'proc_unavail',
  [accept_stat.GARBAGE_ARGS]: 'garbage_args',
  [accept_stat.SYSTEM_ERR]: 'system_err',
};

/** A procedure's name for logs and metrics ('getattr'), or its number when the program names none. */
export function procedureName(pv: ProgramVersion, proc: number): string {
  return pv.procedureNames?.[proc] ?? String(proc);
}
