/**
 * What the RPC layer reports as it works, for whoever counts it (src/metrics). The layer
 * calls these hooks only when it was given an observer: without one, nothing is timed and
 * nothing is called.
 */
import type { ProgramVersion } from './types.js';

/** Answers the dispatcher gives without running a procedure (RFC 5531 §9), and the two it gives when a procedure fails. */
export type RpcRejection =
  | 'rpc_mismatch' | 'auth_error' | 'prog_unavail' | 'prog_mismatch' | 'proc_unavail'
  | 'garbage_args' | 'system_err';

/**
 * Why the server closed a connection, dropped a message or paused reading itself (the
 * limits of limits.ts, and records or replies that cannot be handled).
 */
export type RpcDrop = 'record_too_large' | 'malformed_header' | 'udp_reply_too_large'
  | 'connections' | 'connections_per_client' | 'idle' | 'record_timeout' | 'buffer_budget' | 'calls' | 'udp_calls';

export interface RpcObserver {
  /** A call passed the header checks and its procedure is about to run (or be replayed). */
  callStarted(): void;
  /** That call is answered (or dropped as a retransmit in progress), `seconds` after it started. */
  callFinished(pv: ProgramVersion, proc: number, seconds: number): void;
  rejected(reason: RpcRejection): void;
  /** A retransmit of a non-idempotent call: answered from the duplicate request cache, or dropped while the original runs. */
  retransmit(outcome: 'replayed' | 'dropped'): void;
  connectionOpened(): void;
  connectionClosed(): void;
  dropped(reason: RpcDrop): void;
}
