/**
 * Duplicate request cache (RFC 1813 §4.5). A client that times out resends a call with the same
 * xid; for a non-idempotent procedure (CREATE, REMOVE, RENAME, ...) running it again would
 * answer a spurious error (the file is already gone). So the first execution's reply is kept
 * and replayed, and a retransmit that arrives while the original still runs is dropped (the
 * client will retry again and find the finished reply).
 *
 * Keyed on peer address + port + xid + program + version + procedure. Bounded in entries, in
 * bytes (keys and stored replies, ENTRY_OVERHEAD each besides) and in age; the oldest entries
 * go first (a Map iterates in insertion order).
 *
 * Memory: a stored reply is copied into a buffer of its own (Buffer.allocUnsafeSlow). A small
 * Buffer.concat result would be a slice of Node's shared 8 KiB pool, and 4,096 cached slices
 * could pin 32 MiB of slabs; a copy also never aliases memory the caller reuses (pooled READ
 * buffers, record buffers). Keys are built with join(), which yields a flat string (a template
 * literal leaves a cons string of five parts per entry).
 */

export interface DrcOptions {
  maxEntries?: number;
  /** Bytes of keys and replies held at most (default 8 MiB). */
  maxBytes?: number;
  maxAgeMs?: number;
}

/** Heap bytes of an entry besides its key and reply: Map slot, Entry object, Buffer object. */
const ENTRY_OVERHEAD = 160;

export type DrcLookup = { state: 'new' } | { state: 'in-progress' } | { state: 'done'; reply: Buffer };

interface Entry {
  at: number;
  reply: Buffer | undefined;
}

export class DuplicateRequestCache {
  private readonly entries = new Map<string, Entry>();
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private readonly maxAgeMs: number;
  private heldBytes = 0;

  constructor(o: DrcOptions = {}) {
    this.maxEntries = o.maxEntries ?? 4096;
    this.maxBytes = o.maxBytes ?? 8 * 1024 * 1024;
    this.maxAgeMs = o.maxAgeMs ?? 120_000;
  }

  static key(address: string, port: number, xid: number, prog: number, vers: number, proc: number): string {
    return [address, port, xid, prog, vers, proc].join('|');
  }

  get size(): number {
    return this.entries.size;
  }

  /** Bytes held (keys, replies and per-entry overhead). */
  get bytes(): number {
    return this.heldBytes;
  }

  /** Looks a call up; a new one is recorded as in progress. */
  begin(key: string, now = Date.now()): DrcLookup {
    this.expire(now);
    const e = this.entries.get(key);
    if (e) return e.reply ? { state: 'done', reply: e.reply } : { state: 'in-progress' };
    this.entries.set(key, { at: now, reply: undefined });
    this.heldBytes += key.length + ENTRY_OVERHEAD;
    this.trim();
    return { state: 'new' };
  }

  /** Stores a copy of the finished reply (the whole RPC message, without a record mark). */
  complete(key: string, reply: Buffer | readonly Buffer[]): void {
    const e = this.entries.get(key);
    if (e === undefined) return;
    e.reply = ownCopy(reply);
    this.heldBytes += e.reply.length;
    this.trim();
  }

  /** Forgets a call that produced no reply, so a retransmit runs it. */
  abandon(key: string): void {
    this.drop(key);
  }

  private expire(now: number): void {
    for (const [k, e] of this.entries) {
      if (now - e.at <= this.maxAgeMs) break;
      this.drop(k);
    }
  }

  private trim(): void {
    while (this.entries.size > this.maxEntries || (this.heldBytes > this.maxBytes && this.entries.size > 0)) {
      this.drop(this.entries.keys().next().value as string);
    }
  }

  private drop(key: string): void {
    const e = this.entries.get(key);
    if (e === undefined) return;
    this.entries.delete(key);
    this.heldBytes -= key.length + ENTRY_OVERHEAD + (e.reply?.length ?? 0);
  }
}

/** The bytes in one buffer that owns its memory (no pool slab, no alias of the caller's buffers). */
function ownCopy(reply: Buffer | readonly Buffer[]): Buffer {
  const parts = Buffer.isBuffer(reply) ? [reply] : reply;
  let length = 0;
  for (const b of parts) length += b.length;
  const out = Buffer.allocUnsafeSlow(length);
  let at = 0;
  for (const b of parts) at += b.copy(out, at);
  return out;
}
