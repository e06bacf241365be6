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

  constructor(
    private readonly onRecord: (record: Buffer) => void,
    readonly maxRecordSize = DEFAULT_MAX_RECORD,
  ) {}

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
    const record = this.acc ? this.acc.subarray(0, this.accBytes) : Buffer.alloc(0);
    this.acc = undefined;
    this.accBytes = 0;
    this.onRecord(record);
  }

  private reserve(size: number): void {
    if (this.acc && this.acc.length >= size) return;
    const grown = Buffer.allocUnsafe(Math.min(this.maxRecordSize, Math.max(size, (this.acc?.length ?? 0) * 2, 256)));
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
