/**
 * TCP record marking (RFC 5531 §11): each record is one or more fragments, each preceded by a
 * 4-byte big-endian header whose top bit marks the last fragment and whose low 31 bits are the
 * fragment length. A small state machine so that input may be split anywhere; the size cap is
 * enforced the moment a header arrives, before a byte of its body is buffered, so a 2 GiB
 * header costs nothing.
 */

/** 1 MiB of READ/WRITE data plus room for the RPC and NFS headers around it. */
export const DEFAULT_MAX_RECORD = 1024 * 1024 + 64 * 1024;

const LAST_FRAGMENT = 0x8000_0000;
/** A fresh buffer for a record bigger than this grows as the record's bytes arrive. */
const GROW_FROM = 64 * 1024;

export class RecordMarkError extends Error {
  override name = 'RecordMarkError';
}

/** The 4-byte header for one fragment of `length` bytes. */
export function encodeRecordMark(length: number, last = true): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE((last ? LAST_FRAGMENT : 0) + length, 0);
  return b;
}

/**
 * Decodes a byte stream into records. One decoder per connection, fed every chunk in order.
 * A record that arrives whole inside one chunk is handed out as a view of that chunk; records
 * built from several fragments or chunks are assembled into one buffer.
 * `push` throws RecordMarkError on a protocol violation; the connection is then unusable.
 *
 * Assembled records come with a `release` function. Calling it says nothing refers to the
 * record any more (its call has finished and its reply has been sent): the buffer then goes to
 * a small free list (at most `maxFree`) and a later record is assembled into it, so a stream of
 * 1 MiB WRITEs does not allocate 1 MiB per call. A record that is never released is simply
 * left to the garbage collector; its bytes are never overwritten.
 */
export class RecordDecoder {
  private readonly header = Buffer.alloc(4);
  private headerBytes = 0;
  /** Bytes of the current fragment still to come; -1 while reading a header. */
  private fragmentLeft = -1;
  private lastFragment = false;
  private acc: Buffer | undefined;
  private accBytes = 0;
  private failed = false;
  /** Released record buffers, each owning its memory, ready to be assembled into again. */
  private readonly free: Buffer[] = [];

  constructor(
    private readonly onRecord: (record: Buffer, release?: () => void) => void,
    readonly maxRecordSize = DEFAULT_MAX_RECORD,
    readonly maxFree = 4,
  ) {}

  /** When the record being read began to arrive (Date.now()); undefined between records. */
  partialSince: number | undefined;

  /** Record buffers waiting for reuse (for tests and diagnostics). */
  get freeBuffers(): number {
    return this.free.length;
  }

  /** Bytes of memory the record being assembled holds. */
  get heldBytes(): number {
    return this.acc?.length ?? 0;
  }

  /** True while a record is being assembled in a buffer that fits the rest of its fragment. */
  get fits(): boolean {
    return this.acc !== undefined && this.fragmentLeft >= 0 && this.acc.length >= this.accBytes + this.fragmentLeft;
  }

  push(chunk: Buffer): void {
    if (this.failed) throw new RecordMarkError('decoder already failed');
    let pos = 0;
    while (pos < chunk.length) {
      if (this.fragmentLeft < 0) {
        this.partialSince ??= Date.now();
        if (this.headerBytes === 0 && chunk.length - pos >= 4) {
          this.startFragment(chunk.readUInt32BE(pos));
          pos += 4;
        } else {
          const n = Math.min(4 - this.headerBytes, chunk.length - pos);
          chunk.copy(this.header, this.headerBytes, pos, pos + n);
          this.headerBytes += n;
          pos += n;
          if (this.headerBytes < 4) return;
          this.headerBytes = 0;
          this.startFragment(this.header.readUInt32BE(0));
        }
        if (this.fragmentLeft === 0) this.endFragment();
        continue;
      }
      const n = Math.min(this.fragmentLeft, chunk.length - pos);
      if (this.lastFragment && this.accBytes === 0 && n === this.fragmentLeft) {
        // Fast path: the whole record is in this chunk.
        this.fragmentLeft = -1;
        this.partialSince = undefined;
        this.onRecord(chunk.subarray(pos, pos + n));
        pos += n;
        continue;
      }
      this.append(chunk, pos, n);
      pos += n;
      this.fragmentLeft -= n;
      if (this.fragmentLeft === 0) this.endFragment();
    }
  }

  private startFragment(word: number): void {
    const length = word & 0x7fff_ffff;
    if (this.accBytes + length > this.maxRecordSize) {
      this.failed = true;
      throw new RecordMarkError(`record of at least ${this.accBytes + length} bytes exceeds limit ${this.maxRecordSize}`);
    }
    this.lastFragment = word >= LAST_FRAGMENT;
    this.fragmentLeft = length;
  }

  private endFragment(): void {
    this.fragmentLeft = -1;
    if (!this.lastFragment) return;
    this.partialSince = undefined;
    const owner = this.acc;
    const record = owner ? owner.subarray(0, this.accBytes) : Buffer.alloc(0);
    this.acc = undefined;
    this.accBytes = 0;
    if (!owner) {
      this.onRecord(record);
      return;
    }
    let released = false;
    this.onRecord(record, () => {
      if (released) return;
      released = true;
      if (this.free.length < this.maxFree && !this.failed) this.free.push(owner);
    });
  }

  /**
   * Room for `need` bytes of a record whose fragments so far add up to `total`. A buffer from
   * the free list is taken when it fits the total. A fresh buffer for a big record grows as its
   * bytes arrive (64 KiB, then doubling), so a client that announces 1 MiB and sends ten bytes
   * holds 64 KiB, not 1 MiB; the last step takes a full-size buffer (1 MiB of data plus
   * headers, or the cap if smaller), so once reused it fits every later WRITE.
   */
  private reserve(need: number, total: number): void {
    if (this.acc && this.acc.length >= need) return;
    if (!this.acc) {
      const reused = this.free.pop();
      if (reused && reused.length >= total) {
        this.acc = reused;
        return;
      }
    }
    const had = this.acc?.length ?? 0;
    let want: number;
    if (total <= GROW_FROM) want = Math.min(this.maxRecordSize, Math.max(total, had * 2, 256));
    else {
      const step = Math.max(need, had * 2, GROW_FROM);
      want = step < total ? step : Math.min(this.maxRecordSize, Math.max(total, DEFAULT_MAX_RECORD));
    }
    // allocUnsafeSlow: memory of its own, never a slice of Node's shared pool (it may be kept).
    const grown = Buffer.allocUnsafeSlow(want);
    if (this.acc) this.acc.copy(grown, 0, 0, this.accBytes);
    this.acc = grown;
  }

  private append(chunk: Buffer, pos: number, n: number): void {
    this.reserve(this.accBytes + n, this.accBytes + this.fragmentLeft);
    chunk.copy(this.acc as Buffer, this.accBytes, pos, pos + n);
    this.accBytes += n;
  }
}
