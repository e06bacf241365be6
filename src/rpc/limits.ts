/**
 * What clients can make the RPC layer hold, bounded: TCP connections (in all and per client
 * address), connections left idle, records left unfinished, bytes held in unfinished records
 * and unsent replies, calls in flight, UDP calls in flight. One Load per server, shared by its
 * listeners.
 *
 * Rule: a connection over a count limit is closed as soon as it is accepted. A connection
 * with nothing read or written for idleTimeoutMs and no call running is closed (an idle one;
 * knfsd closes those after 6 minutes; or one whose client stopped reading its replies). A
 * record not complete recordTimeoutMs after its first byte closes its connection (a
 * slow-loris client holds nothing for long). Bytes and calls are limited by backpressure, not
 * drops: at the calls-in-flight limit no connection has another call run; past the byte
 * budget, a connection holding more than ALLOWANCE reads no more (unless the record it is
 * reading already has its memory) and has its calls run one at a time, and only while its
 * replies are being taken. Each goes on when the load falls back; the timeouts end a standoff
 * of clients that hold half a record or never read their replies. UDP calls over their limit
 * are dropped (the client retransmits).
 * Each limit, when hit, is counted (RpcObserver.dropped) and logged once per client and limit
 * per minute.
 * Memory: a connection's unfinished record holds what arrived of it (record-marking.ts grows
 * a fresh buffer as bytes arrive), so 300 connections that announce 1 MiB and send 10 bytes
 * hold about 300 x 64 KiB.
 */
import { child } from '../log.js';
import { RateLimitedLog } from '../log-limit.js';
import type { RpcDrop, RpcObserver } from './observer.js';

const log = child('rpc');

export interface RpcLimits {
  /** TCP connections open at once, in all. */
  readonly maxConnections: number;
  /** TCP connections open at once from one client address. */
  readonly maxConnectionsPerClient: number;
  /** A connection with nothing in flight and no traffic for this long is closed. */
  readonly idleTimeoutMs: number;
  /** A record must arrive whole within this long of its first byte. */
  readonly recordTimeoutMs: number;
  /** Bytes held in unfinished records and unsent replies, all connections together. */
  readonly bufferBudget: number;
  /** Calls running at once, all connections together (each connection: maxInFlight, tcp.ts). */
  readonly maxCalls: number;
  /** UDP calls running at once. */
  readonly maxUdpCalls: number;
}

export const DEFAULT_LIMITS: RpcLimits = {
  maxConnections: 4096,
  maxConnectionsPerClient: 64,
  idleTimeoutMs: 6 * 60_000,
  recordTimeoutMs: 60_000,
  bufferBudget: 128 * 1024 * 1024,
  // With 1 MiB READs, what the replies of running calls can hold beyond the budget.
  maxCalls: 128,
  maxUdpCalls: 256,
};

/** One connection as the Load sees it. */
export interface Held {
  /** Bytes this connection holds now (unfinished record, unsent replies). */
  bytes: number;
  /** Called when the load has fallen back and a paused connection may go on. */
  resume(): void;
}

/** What a connection may hold and still go on while the byte budget is spent: a few calls. */
export const ALLOWANCE = 64 * 1024;

export class Load {
  private connections = 0;
  private readonly perClient = new Map<string, number>();
  private buffered = 0;
  private calls = 0;
  private udpCalls = 0;
  private readonly waiting = new Set<Held>();
  private readonly said = new RateLimitedLog(log, 60_000);

  constructor(readonly limits: RpcLimits, private readonly observer?: RpcObserver) {}

  /** Buffered bytes and calls now, for tests and diagnostics. */
  get usage(): { connections: number; buffered: number; calls: number; udpCalls: number } {
    return { connections: this.connections, buffered: this.buffered, calls: this.calls, udpCalls: this.udpCalls };
  }

  hit(limit: RpcDrop, client: string, message: string): void {
    this.observer?.dropped(limit);
    this.said.warn(`${limit} ${client}`, `${client}: ${message}`, { client, limit });
  }

  /** A new connection from `address`: false (and counted) when a limit says no. */
  admit(address: string): boolean {
    const mine = this.perClient.get(address) ?? 0;
    if (this.connections >= this.limits.maxConnections) {
      this.hit('connections', address, `connection refused: ${this.connections} connections are open (limit ${this.limits.maxConnections})`);
      return false;
    }
    if (mine >= this.limits.maxConnectionsPerClient) {
      this.hit('connections_per_client', address, `connection refused: the client has ${mine} connections open (limit ${this.limits.maxConnectionsPerClient})`);
      return false;
    }
    this.connections++;
    this.perClient.set(address, mine + 1);
    return true;
  }

  closed(address: string, held: Held): void {
    this.connections--;
    const mine = (this.perClient.get(address) ?? 1) - 1;
    if (mine > 0) this.perClient.set(address, mine);
    else this.perClient.delete(address);
    this.waiting.delete(held);
    this.update(held, 0);
  }

  /** A connection's held bytes changed. */
  update(held: Held, bytes: number): void {
    const freed = bytes < held.bytes;
    this.buffered += bytes - held.bytes;
    held.bytes = bytes;
    if (freed) this.wake();
  }

  /** True while the budget of held bytes or the calls in flight are at their limit. */
  spent(): boolean {
    return this.buffered > this.limits.bufferBudget || this.calls >= this.limits.maxCalls;
  }

  /**
   * Whether `held`'s connection may read more. Past the byte budget, a connection still may
   * when it holds no more than ALLOWANCE (the budget can be spent by clients that never read
   * their replies, and that must not stop a client that does from being served), or when the
   * record it is reading already has all the memory it needs (`fits`: reading the rest costs
   * nothing, and leaving it half-read would hold that memory for nothing).
   */
  mayRead(held: Held, fits: boolean): boolean {
    return this.buffered <= this.limits.bufferBudget || held.bytes <= ALLOWANCE || fits;
  }

  /**
   * Whether a connection with `unsent` bytes of replies not yet taken by its client and
   * `running` calls of its own may have another call dispatched: within the calls in flight,
   * and past the byte budget one call at a time and only while its replies are being read (a
   * client that pipelines READs and reads nothing is held back; one whose own record filled the
   * budget is not, or it could never let go of it).
   */
  mayDispatch(unsent: number, running: number): boolean {
    return this.calls < this.limits.maxCalls && (this.buffered <= this.limits.bufferBudget || (unsent <= ALLOWANCE && running === 0));
  }

  /** `held` stopped because the load is spent; resume() when it falls back. */
  wait(held: Held, client: string): void {
    if (this.waiting.has(held)) return;
    this.waiting.add(held);
    if (this.calls >= this.limits.maxCalls) this.hit('calls', client, `calls held back: ${this.calls} calls in flight (limit ${this.limits.maxCalls})`);
    else this.hit('buffer_budget', client, `paused: ${this.buffered} bytes held by all connections (budget ${this.limits.bufferBudget})`);
  }

  callStarted(): void {
    this.calls++;
  }

  callFinished(): void {
    this.calls--;
    this.wake();
  }

  /** A UDP call may run: false (counted) when too many are. */
  udpStarted(client: string): boolean {
    if (this.udpCalls >= this.limits.maxUdpCalls) {
      this.hit('udp_calls', client, `UDP call dropped: ${this.udpCalls} UDP calls in flight (limit ${this.limits.maxUdpCalls})`);
      return false;
    }
    this.udpCalls++;
    return true;
  }

  udpFinished(): void {
    this.udpCalls--;
  }

  /** Every waiting connection looks again (and waits again if it still may not go on). */
  private wake(): void {
    if (this.waiting.size === 0) return;
    const all = [...this.waiting];
    this.waiting.clear();
    for (const h of all) h.resume();
  }
}
