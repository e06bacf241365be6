import type { XdrReader, XdrWriter } from '@nfs-ts/xdr';

/** Who is calling, from the call's credential (RFC 5531 §14 AUTH_SYS; AUTH_NONE maps to nobody). */
export interface Credential {
  readonly flavor: number;
  readonly uid: number;
  readonly gid: number;
  /** Supplementary groups, at most 16 on the wire. */
  readonly gids: readonly number[];
  readonly machinename: string;
}

export interface Peer {
  readonly address: string;
  readonly port: number;
  readonly transport: 'tcp' | 'udp';
  /** Our address the call came to (TCP; unknown for UDP): callbacks to the client leave from it. */
  readonly local?: string;
}

/** One decoded call header plus a reader positioned at the procedure's arguments. */
export interface RpcCall {
  readonly xid: number;
  readonly prog: number;
  readonly vers: number;
  readonly proc: number;
  readonly cred: Credential;
  readonly args: XdrReader;
  readonly peer: Peer;
  /**
   * Registers a callback the transport runs once it is done with this call's reply: written to
   * the socket (handed to the kernel), or dropped, replaced by an error, or lost with its
   * connection. Memory spliced into the reply by reference (XdrWriter.opaqueRef) may be reused
   * only from such a callback. Absent when the caller cannot tell (in-process tests, direct
   * dispatch): a procedure must then not lend out memory it would reuse.
   */
  readonly afterReply?: (fn: () => void) => void;
}

/**
 * A procedure decodes its arguments from `call.args` and encodes its results into `reply`
 * (the body after the accepted-reply header). An XdrError thrown while decoding becomes
 * GARBAGE_ARGS; any other exception becomes SYSTEM_ERR and is logged. Both are the RPC layer's
 * business, never the procedure's.
 */
export type Procedure = (call: RpcCall, reply: XdrWriter) => void | Promise<void>;

/** One version of one program: procedures indexed by procedure number (holes = PROC_UNAVAIL). */
export interface ProgramVersion {
  readonly prog: number;
  readonly vers: number;
  readonly name: string;
  readonly procedures: readonly (Procedure | undefined)[];
  /** Procedure numbers whose retransmits must not run twice (RFC 1813 §4.5): answered from the duplicate request cache. */
  readonly nonIdempotent?: ReadonlySet<number>;
  /** Procedure names by number, lower case as the RFCs' procedure names ('getattr'): for logs and metrics. */
  readonly procedureNames?: readonly string[];
}
