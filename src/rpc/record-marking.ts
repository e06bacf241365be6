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

  /** Record buffers waiting for reuse (for tests and diagnostics). */
  get freeBuffers(): number {
    return this.free.length;
  }

  push(chunk: Buffer): void {
    if (this.failed) throw new RecordMarkError('decoder already failed');
    let pos = 0;
    while (pos < chunk.length) {
      if (this.fragmentLeft < 0) {
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

  private reserve(size: number): void {
    if (this.acc && this.acc.length >= size) return;
    if (!this.acc) {
      const reused = this.free.pop();
      if (reused && reused.length >= size) {
        this.acc = reused;
        return;
      }
    }
    // A big record takes a full-size buffer at once (1 MiB of data plus headers, or the cap if
    // smaller), so a reused big buffer fits every later WRITE.
    const want = size > 64 * 1024 ? Math.min(this.maxRecordSize, Math.max(size, DEFAULT_MAX_RECORD)) : Math.min(this.maxRecordSize, Math.max(size, (this.acc?.length ?? 0) * 2, 256));
    // allocUnsafeSlow: memory of its own, never a slice of Node's shared pool (it may be kept).
    const grown = Buffer.allocUnsafeSlow(want);
    if (this.acc) this.acc.copy(grown, 0, 0, this.accBytes);
    this.acc = grown;
  }

  /** Space for the rest of the fragment is taken when its first byte arrives, not on the header alone. */
  private append(chunk: Buffer, pos: number, n: number): void {
    this.reserve(this.accBytes + this.fragmentLeft);
    chunk.copy(this.acc as Buffer, this.accBytes, pos, pos + n);
    this.accBytes += n;
  }
}
