/**
 * The lock manager's decisions: what TEST, LOCK, CANCEL, UNLOCK, SHARE, UNSHARE and the
 * freeing of a client's state answer, over the granted state in lock-table.ts plus the
 * blocked requests, the grace period after a restart and the bounds on what a client holds.
 *
 * Rule: a LOCK that conflicts and may block is queued (NLM4_BLOCKED); after every change that
 * can free a range (unlock, cancel, a client's state freed, a refused grant) the queue of that
 * file is rescanned in arrival order and every request that no longer conflicts is granted
 * and told to its client with a GRANTED callback (`grant`). A client that answers the
 * callback with anything but NLM4_GRANTED no longer wants the lock: it is released again.
 * A client's first lock makes it monitored (`monitor`, durable before the reply), so that
 * after a restart it is told to reclaim. During the grace period only reclaims are granted,
 * and TEST, new LOCKs and SHAREs answer NLM4_DENIED_GRACE_PERIOD (the Linux client retries
 * those every 5 s); after it, a reclaim is refused the same way (knfsd's rule: a lock held
 * before the restart may have been taken by someone else since). UNLOCK and CANCEL only
 * ever give something up and are served in grace too.
 * Example: A holds write [0, EOF); B's blocking LOCK of [0, 10) answers BLOCKED; A's UNLOCK
 * grants B's lock at once and sends B's lockd GRANTED; B answers NLM4_GRANTED and keeps it.
 * Races: all state changes run on the event loop; a grant's callback is in flight for a
 * while, and a CANCEL arriving then (the client gave up waiting) releases the granted lock,
 * as the client will never use it.
 */
import { child } from '../log.js';
import { nlm4_stats, type Nlm4Stat } from './constants.js';
import { LockTable, type Lock, type Owner } from './lock-table.js';
import type { Nlm4Lock } from './xdr.js';

const log = child('nlm');

/** What a request is about: one owner's lock of one kind on one range of one file. */
export interface LockIntent {
  readonly file: string;
  readonly owner: Owner;
  readonly exclusive: boolean;
  readonly start: bigint;
  readonly end: bigint;
}

/** A LOCK waiting for a conflicting lock to go, with what its GRANTED callback needs. */
export interface Waiter extends LockIntent {
  /** The request as the client sent it (GRANTED echoes it). */
  readonly lock: Nlm4Lock;
  cookie: Buffer;
  /** The server address the client sent the LOCK to: callbacks come from there. */
  readonly local: string | undefined;
}

export interface LockManagerOptions {
  /** Makes `client` known to the status monitor (durably) before its first lock is granted. */
  monitor(client: string, caller: string, local: string | undefined): void;
  /** Sends the GRANTED callback; resolves to whether the client took the lock. */
  grant(w: Waiter): Promise<boolean>;
  /** Locks, reservations and blocked requests one client address may hold; default 16,384. */
  maxPerClient?: number;
  /** Locks, reservations and blocked requests over all clients; default 1,048,576. */
  maxTotal?: number;
}

export class LockManager {
  readonly table = new LockTable();
  /** Blocked requests per file, oldest first. */
  private readonly waiters = new Map<string, Waiter[]>();
  private readonly waitersPerClient = new Map<string, number>();
  private waiterCount = 0;
  /** Grants whose callback is in flight, by waiterKey. */
  private readonly granting = new Set<string>();
  /** The NSM state each client sent with its last LOCK: an SM_NOTIFY repeating it is stale. */
  private readonly clientStates = new Map<string, number>();
  private graceUntil = 0;
  /** Clients already warned about in the log (warnOnce). */
  private readonly warned = new Set<string>();
  private readonly maxPerClient: number;
  private readonly maxTotal: number;

  constructor(private readonly o: LockManagerOptions) {
    this.maxPerClient = o.maxPerClient ?? 16384;
    this.maxTotal = o.maxTotal ?? 1 << 20;
  }

  /** Starts a grace period of `ms` from now. */
  startGrace(ms: number): void {
    this.graceUntil = Date.now() + ms;
  }

  inGrace(): boolean {
    return Date.now() < this.graceUntil;
  }

  test(i: LockIntent): { stat: Nlm4Stat; holder?: Lock } {
    if (this.inGrace()) return { stat: nlm4_stats.NLM4_DENIED_GRACE_PERIOD };
    const holder = this.table.conflict(i.file, i.owner, i.exclusive, i.start, i.end);
    return holder === undefined ? { stat: nlm4_stats.NLM4_GRANTED } : { stat: nlm4_stats.NLM4_DENIED, holder };
  }

  /**
   * LOCK (and NM_LOCK, with `monitored` false). `lock`, `cookie` and `local` are kept for the
   * GRANTED callback of a request that blocks.
   */
  lock(i: LockIntent, req: { block: boolean; reclaim: boolean; state: number; monitored: boolean; lock: Nlm4Lock; cookie: Buffer; local: string | undefined }): Nlm4Stat {
    if (this.inGrace() !== req.reclaim) return nlm4_stats.NLM4_DENIED_GRACE_PERIOD;
    const queued = this.findWaiter(i);
    const client = i.owner.client;
    if (this.table.holds(i.file, i.owner, i.exclusive, i.start, i.end)) {
      // A repeat: the client re-sends a blocked LOCK every 30 s, also after its GRANTED was lost.
      if (queued !== undefined) this.dropWaiter(queued);
      return nlm4_stats.NLM4_GRANTED;
    }
    if (this.table.conflict(i.file, i.owner, i.exclusive, i.start, i.end) === undefined) {
      if (this.table.growth(i.file, i.owner, i.exclusive, i.start, i.end) > 0 && !this.room(client)) return nlm4_stats.NLM4_DENIED_NOLOCKS;
      if (req.monitored) this.monitored(client, req.state, i.owner.caller, req.local);
      if (queued !== undefined) this.dropWaiter(queued);
      this.acquire(i);
      return nlm4_stats.NLM4_GRANTED;
    }
    if (!req.block) return nlm4_stats.NLM4_DENIED;
    if (queued !== undefined) {
      queued.cookie = req.cookie;
      return nlm4_stats.NLM4_BLOCKED;
    }
    if (!this.room(client)) return nlm4_stats.NLM4_DENIED_NOLOCKS;
    if (req.monitored) this.monitored(client, req.state, i.owner.caller, req.local);
    const w: Waiter = { ...i, lock: req.lock, cookie: req.cookie, local: req.local };
    let q = this.waiters.get(i.file);
    if (q === undefined) this.waiters.set(i.file, q = []);
    q.push(w);
    this.countWaiter(client, 1);
    return nlm4_stats.NLM4_BLOCKED;
  }

  /** A client about to hold or wait for a lock: known to the status monitor, its NSM state noted. */
  private monitored(client: string, state: number, caller: string, local: string | undefined): void {
    this.o.monitor(client, caller, local);
    this.clientStates.set(client, state);
  }

  /** CANCEL: NLM4_GRANTED when a blocked request (or a grant not yet taken) was withdrawn. */
  cancel(i: LockIntent): Nlm4Stat {
    const w = this.findWaiter(i);
    if (w !== undefined) {
      this.dropWaiter(w);
      this.forgetIfIdle(i.owner.client);
      return nlm4_stats.NLM4_GRANTED;
    }
    const k = waiterKey(i);
    if (this.granting.delete(k)) {
      this.release(i.file, i.owner, i.start, i.end);
      return nlm4_stats.NLM4_GRANTED;
    }
    return nlm4_stats.NLM4_DENIED;
  }

  /** UNLOCK: always NLM4_GRANTED, also for a range that was not locked (XNFS). */
  unlock(file: string, owner: Owner, start: bigint, end: bigint): Nlm4Stat {
    this.release(file, owner, start, end);
    return nlm4_stats.NLM4_GRANTED;
  }

  share(file: string, owner: Owner, mode: number, access: number, reclaim: boolean, local: string | undefined): Nlm4Stat {
    if (this.inGrace() !== reclaim) return nlm4_stats.NLM4_DENIED_GRACE_PERIOD;
    if (this.table.shareConflict(file, owner, mode, access) !== undefined) return nlm4_stats.NLM4_DENIED;
    if (!this.room(owner.client)) return nlm4_stats.NLM4_DENIED_NOLOCKS;
    this.o.monitor(owner.client, owner.caller, local);
    this.table.share(file, owner, mode, access);
    return nlm4_stats.NLM4_GRANTED;
  }

  unshare(file: string, owner: Owner): Nlm4Stat {
    this.table.unshare(file, owner);
    this.forgetIfIdle(owner.client);
    return nlm4_stats.NLM4_GRANTED;
  }

  /**
   * SM_NOTIFY from a rebooted client (with its new NSM state) or FREE_ALL: every lock,
   * reservation and blocked request of the client at `address` (and, when given, `caller`)
   * goes. A notification repeating the state of the client's last LOCK is stale and ignored.
   * Returns how many locks and reservations were freed.
   */
  freeClient(address: string, o: { caller?: string; state?: number } = {}): number {
    if (o.state !== undefined && this.clientStates.get(address) === o.state) return 0;
    this.clientStates.delete(address);
    const match = (w: Owner): boolean => w.client === address && (o.caller === undefined || w.caller === o.caller);
    for (const q of [...this.waiters.values()]) {
      for (const w of q.filter((x) => match(x.owner))) this.dropWaiter(w);
    }
    const before = this.table.heldBy(address);
    const changed = this.table.releaseAll(match);
    const freed = before - this.table.heldBy(address);
    for (const f of changed) this.wake(f);
    return freed;
  }

  /** Blocked requests now (tests, metrics). */
  get blocked(): number {
    return this.waiterCount;
  }

  private room(client: string): boolean {
    const held = this.table.heldBy(client) + (this.waitersPerClient.get(client) ?? 0);
    const all = this.table.total + this.waiterCount;
    if (held < this.maxPerClient && all < this.maxTotal) return true;
    this.warnOnce('bound', client, `client ${client} holds ${held} locks and blocked requests (bound ${this.maxPerClient}; ${all} of ${this.maxTotal} in all): ` +
      'NLM4_DENIED_NOLOCKS (logged once per client)');
    return false;
  }

  /** A warning a client's doing can cause: once per kind and client (of the last 1,024), never a flood. */
  private warnOnce(kind: string, client: string, message: string): void {
    const key = `${kind} ${client}`;
    if (this.warned.has(key)) return;
    if (this.warned.size >= 1024) this.warned.clear();
    this.warned.add(key);
    log.warn(message, { client });
  }

  private acquire(i: LockIntent): void {
    this.table.acquire(i.file, i.owner, i.exclusive, i.start, i.end);
  }

  private release(file: string, owner: Owner, start: bigint, end: bigint): void {
    if (this.table.release(file, owner, start, end)) this.wake(file);
    this.forgetIfIdle(owner.client);
  }

  /** A client that holds and waits for nothing needs no remembered NSM state. */
  private forgetIfIdle(client: string): void {
    if (this.table.heldBy(client) === 0 && !this.waitersPerClient.has(client)) this.clientStates.delete(client);
  }

  /** Grants, in arrival order, every blocked request on `file` that no longer conflicts. */
  private wake(file: string): void {
    const q = this.waiters.get(file);
    if (q === undefined) return;
    for (const w of [...q]) {
      if (this.table.conflict(file, w.owner, w.exclusive, w.start, w.end) !== undefined) continue;
      this.dropWaiter(w);
      this.acquire(w);
      const k = waiterKey(w);
      this.granting.add(k);
      this.o.grant(w).then((taken) => {
        // CANCEL may have released it meanwhile (then `granting` no longer holds k).
        if (!this.granting.delete(k) || taken) return;
        if (log.isDebugEnabled()) log.debug(`client ${w.owner.client} did not take a granted lock: released`, { client: w.owner.client });
        this.release(w.file, w.owner, w.start, w.end);
      }, (err: unknown) => {
        // Unreachable client: it keeps the lock, as with knfsd; it re-sends its LOCK within
        // 30 s and is told NLM4_GRANTED, and if it is gone for good its reboot notification
        // frees it.
        this.granting.delete(k);
        this.warnOnce('callback', w.owner.client, `GRANTED callback to ${w.owner.client} failed: ${(err as Error).message} ` +
          '(the server must reach the client\'s port 111 and its lockd; logged once per client)');
      });
    }
  }

  private findWaiter(i: LockIntent): Waiter | undefined {
    return this.waiters.get(i.file)?.find((w) => w.owner.key === i.owner.key && w.exclusive === i.exclusive && w.start === i.start && w.end === i.end);
  }

  private dropWaiter(w: Waiter): void {
    const q = this.waiters.get(w.file);
    const at = q?.indexOf(w) ?? -1;
    if (q === undefined || at < 0) return;
    q.splice(at, 1);
    if (q.length === 0) this.waiters.delete(w.file);
    this.countWaiter(w.owner.client, -1);
  }

  private countWaiter(client: string, d: number): void {
    this.waiterCount += d;
    const n = (this.waitersPerClient.get(client) ?? 0) + d;
    if (n <= 0) this.waitersPerClient.delete(client);
    else this.waitersPerClient.set(client, n);
  }
}

function waiterKey(i: LockIntent): string {
  return `${i.file}\0${i.owner.key}\0${i.exclusive ? 'w' : 'r'}\0${i.start}\0${i.end}`;
}
