/**
 * The granted byte-range locks and share reservations of every file, in memory: POSIX record
 * locking semantics (fcntl(2)), as knfsd's lockd gets them from the kernel and nfs-ganesha
 * implements in SAL/state_lock.c.
 *
 * Rule: a file is named by a key (program.ts: its union and handle, which carries the union's
 * stable file id, so a lock survives copy-up); a lock belongs to an owner = client address + caller_name + svid + oh, so two clients that
 * share a host name (cloned VMs) never share locks. Ranges are half-open bigints [start, end),
 * end at most 2^64. One owner's locks on a file never overlap: a new lock replaces what the
 * owner held in its range (so an upgrade or downgrade is one step, and a refused upgrade
 * leaves the read lock as it was, since nothing changes unless there is no conflict), and
 * touching or overlapping locks of the same kind merge. Unlocking part of a lock splits it.
 * Example: owner A holds read [0, 100); A locks write [40, 60) -> read [0,40), write [40,60),
 * read [60,100); A unlocks [0, 2^64) -> nothing.
 * Races: none; every method runs to completion on the event loop.
 */
import type { Nlm4Lock } from './xdr.js';

export interface Owner {
  /** The client's address (IPv4-mapped addresses written as IPv4). */
  readonly client: string;
  readonly caller: string;
  readonly svid: number;
  readonly oh: Buffer;
  /** client, caller, svid and oh in one string: owners are equal when their keys are. */
  readonly key: string;
}

export function ownerOf(client: string, l: Pick<Nlm4Lock, 'callerName' | 'svid' | 'oh'>): Owner {
  return { client, caller: l.callerName, svid: l.svid, oh: l.oh, key: `${client}\0${l.callerName}\0${l.svid}\0${l.oh.toString('hex')}` };
}

export interface Lock {
  readonly owner: Owner;
  readonly exclusive: boolean;
  readonly start: bigint;
  readonly end: bigint;
}

export interface ShareReservation {
  readonly owner: Owner;
  /** fsh4_mode: what others are denied (bit 1 read, bit 2 write). */
  readonly mode: number;
  /** fsh4_access: what the owner does (bit 1 read, bit 2 write). */
  readonly access: number;
}

interface FileState {
  locks: readonly Lock[];
  shares: ShareReservation[];
}

export class LockTable {
  private readonly files = new Map<string, FileState>();
  /** Locks and share reservations held per client address, for the per-client bound. */
  private readonly perClient = new Map<string, number>();
  private held = 0;

  /** Locks and reservations held over all clients. */
  get total(): number {
    return this.held;
  }

  /** Locks and reservations `client` holds now. */
  heldBy(client: string): number {
    return this.perClient.get(client) ?? 0;
  }

  /** Files with any lock or reservation. */
  get fileCount(): number {
    return this.files.size;
  }

  locksOf(file: string): readonly Lock[] {
    return this.files.get(file)?.locks ?? [];
  }

  /** The first lock of another owner that a lock of this kind on [start, end) would conflict with. */
  conflict(file: string, owner: Owner, exclusive: boolean, start: bigint, end: bigint): Lock | undefined {
    for (const l of this.locksOf(file)) {
      if (l.owner.key !== owner.key && (exclusive || l.exclusive) && l.start < end && start < l.end) return l;
    }
    return undefined;
  }

  /** Whether `owner` already holds all of [start, end) with locks of this kind (a repeated LOCK). */
  holds(file: string, owner: Owner, exclusive: boolean, start: bigint, end: bigint): boolean {
    let at = start;
    const mine = this.locksOf(file).filter((l) => l.owner.key === owner.key && l.exclusive === exclusive).sort((a, b) => (a.start < b.start ? -1 : 1));
    for (const l of mine) {
      if (l.start > at) return false;
      if (l.end > at) at = l.end;
      if (at >= end) return true;
    }
    return at >= end;
  }

  /** Grants the lock; the caller has checked that nothing conflicts. */
  acquire(file: string, owner: Owner, exclusive: boolean, start: bigint, end: bigint): void {
    const f = this.state(file);
    this.replace(f, owner, withLock(f.locks, owner, exclusive, start, end));
  }

  /** How many more locks `owner` would hold after acquire (merging can make it fewer). */
  growth(file: string, owner: Owner, exclusive: boolean, start: bigint, end: bigint): number {
    const locks = this.locksOf(file);
    return withLock(locks, owner, exclusive, start, end).length - locks.length;
  }

  /** Unlocks [start, end) of owner's locks on file; whether anything was held there. */
  release(file: string, owner: Owner, start: bigint, end: bigint): boolean {
    const f = this.files.get(file);
    if (f === undefined) return false;
    const locks = without(f.locks, owner, start, end);
    const changed = locks !== f.locks;
    this.replace(f, owner, locks);
    this.dropIfEmpty(file, f);
    return changed;
  }

  /** Drops every lock and reservation whose owner matches; the files that changed. */
  releaseAll(match: (o: Owner) => boolean): string[] {
    const changed: string[] = [];
    for (const [file, f] of this.files) {
      const locks = f.locks.filter((l) => !match(l.owner));
      const shares = f.shares.filter((s) => !match(s.owner));
      if (locks.length === f.locks.length && shares.length === f.shares.length) continue;
      for (const l of f.locks) if (match(l.owner)) this.count(l.owner.client, -1);
      for (const s of f.shares) if (match(s.owner)) this.count(s.owner.client, -1);
      f.locks = locks;
      f.shares = shares;
      changed.push(file);
      this.dropIfEmpty(file, f);
    }
    return changed;
  }

  /** The reservation of another owner that this one conflicts with (XNFS: access vs deny mode). */
  shareConflict(file: string, owner: Owner, mode: number, access: number): ShareReservation | undefined {
    return this.files.get(file)?.shares.find((s) => s.owner.key !== owner.key && ((s.mode & access) !== 0 || (mode & s.access) !== 0));
  }

  /** Records a reservation (replacing the owner's previous one on the file). */
  share(file: string, owner: Owner, mode: number, access: number): void {
    this.unshare(file, owner);
    this.state(file).shares.push({ owner, mode, access });
    this.count(owner.client, 1);
  }

  unshare(file: string, owner: Owner): void {
    const f = this.files.get(file);
    if (f === undefined) return;
    const before = f.shares.length;
    f.shares = f.shares.filter((s) => s.owner.key !== owner.key);
    this.count(owner.client, f.shares.length - before);
    this.dropIfEmpty(file, f);
  }

  private state(file: string): FileState {
    let f = this.files.get(file);
    if (f === undefined) this.files.set(file, f = { locks: [], shares: [] });
    return f;
  }

  /** Installs a file's new lock list, in which only `owner`'s locks changed. */
  private replace(f: FileState, owner: Owner, locks: readonly Lock[]): void {
    this.count(owner.client, locks.length - f.locks.length);
    f.locks = locks;
  }

  private dropIfEmpty(file: string, f: FileState): void {
    if (f.locks.length === 0 && f.shares.length === 0) this.files.delete(file);
  }

  private count(client: string, d: number): void {
    this.held += d;
    const n = (this.perClient.get(client) ?? 0) + d;
    if (n <= 0) this.perClient.delete(client);
    else this.perClient.set(client, n);
  }
}

/** `locks` with [start, end) removed from owner's locks (split where they stick out); the same array when nothing changed. */
function without(locks: readonly Lock[], owner: Owner, start: bigint, end: bigint): readonly Lock[] {
  if (!locks.some((l) => l.owner.key === owner.key && l.start < end && start < l.end)) return locks;
  const out: Lock[] = [];
  for (const l of locks) {
    if (l.owner.key !== owner.key || l.end <= start || end <= l.start) {
      out.push(l);
      continue;
    }
    if (l.start < start) out.push({ ...l, end: start });
    if (end < l.end) out.push({ ...l, start: end });
  }
  return out;
}

/** `locks` with owner's new lock: what it held in the range replaced, touching locks of the same kind merged. */
function withLock(locks: readonly Lock[], owner: Owner, exclusive: boolean, start: bigint, end: bigint): Lock[] {
  let s = start, e = end;
  const out = without(locks, owner, start, end).filter((l) => {
    if (l.owner.key !== owner.key || l.exclusive !== exclusive || l.end < s || e < l.start) return true;
    if (l.start < s) s = l.start;
    if (l.end > e) e = l.end;
    return false;
  });
  out.push({ owner, exclusive, start: s, end: e });
  return out;
}
