import { XdrError } from './errors.js';

/**
 * A cursor over one XDR-encoded buffer (RFC 4506). Every read is bounds-checked and
 * variable-length items are checked against a caller-given maximum *before* anything is
 * sliced, so a hostile length can never allocate or read past the input.
 *
 * Opaque data and strings come back as views (`subarray`) of the input: no copies. A reader is
 * meant to be reset and reused (one per connection), which keeps the hot path monomorphic.
 */
export class XdrReader {
  private buf: Buffer;
  private start: number;
  private pos: number;
  private end: number;

  constructor(buf: Buffer = Buffer.alloc(0), start = 0, end = buf.length) {
    this.buf = buf;
    this.start = 0;
    this.pos = 0;
    this.end = 0;
    this.reset(buf, start, end);
  }

  reset(buf: Buffer, start = 0, end = buf.length): this {
    if (start < 0 || end > buf.length || start > end) throw new RangeError(`XdrReader window ${start}..${end} outside 0..${buf.length}`);
    this.buf = buf;
    this.start = start;
    this.pos = start;
    this.end = end;
    return this;
  }

  get offset(): number {
    return this.pos;
  }

  /**
   * Moves the cursor back (or forward) to an offset taken from `offset`, inside the window:
   * for a layer that peeks at the first item and leaves the full decoding to its owner.
   */
  seek(offset: number): this {
    if (!Number.isInteger(offset) || offset < this.start || offset > this.end) {
      throw new RangeError(`XdrReader seek to ${offset} outside ${this.start}..${this.end}`);
    }
    this.pos = offset;
    return this;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number): void {
    if (this.end - this.pos < n) {
      throw new XdrError(`XDR underflow: need ${n} bytes at offset ${this.pos}, have ${this.end - this.pos}`);
    }
  }

  uint32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  int32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** An XDR enum is a signed int on the wire. */
  enum(): number {
    return this.int32();
  }

  bool(): boolean {
    const v = this.uint32();
    if (v > 1) throw new XdrError(`XDR bool out of range: ${v}`);
    return v === 1;
  }

  /** unsigned hyper as a BigInt: use where all 64 bits matter (cookies, verifiers). */
  uint64(): bigint {
    this.need(8);
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  int64(): bigint {
    this.need(8);
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  /**
   * unsigned hyper as a JS number, for offsets and sizes. Values above 2^53 cannot be
   * represented exactly; they saturate at Number.MAX_SAFE_INTEGER, which every file-size
   * check downstream treats as "too big" rather than silently wrapping.
   */
  uint64Number(): number {
    this.need(8);
    const hi = this.buf.readUInt32BE(this.pos);
    const lo = this.buf.readUInt32BE(this.pos + 4);
    this.pos += 8;
    if (hi >= 0x200000) return Number.MAX_SAFE_INTEGER;
    return hi * 0x1_0000_0000 + lo;
  }

  /** Fixed-length opaque[n]: n bytes plus padding to a multiple of 4. */
  opaqueFixed(n: number): Buffer {
    // Arithmetic, not `(n + 3) & ~3`: bitwise ops wrap at 2^31 and would turn a hostile
    // length into a negative one that passes the bounds check.
    const padded = n + ((4 - (n % 4)) % 4);
    if (!Number.isSafeInteger(n) || n < 0) throw new XdrError(`XDR bad opaque length ${n}`);
    this.need(padded);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.checkPadding(this.pos + n, this.pos + padded);
    this.pos += padded;
    return v;
  }

  /** Variable-length opaque<max>: a length, the bytes, padding. */
  opaque(max: number): Buffer {
    const n = this.uint32();
    if (n > max) throw new XdrError(`XDR opaque length ${n} exceeds limit ${max}`);
    return this.opaqueFixed(n);
  }

  /** string<max> comes back as raw bytes: NFS names are bytes, not necessarily UTF-8. */
  string(max: number): Buffer {
    return this.opaque(max);
  }

  /** An array length, checked against max before the caller allocates anything. */
  arrayLength(max: number): number {
    const n = this.uint32();
    if (n > max) throw new XdrError(`XDR array length ${n} exceeds limit ${max}`);
    return n;
  }

  /** Fails unless every byte was consumed: trailing garbage is a malformed message. */
  done(): void {
    if (this.pos !== this.end) throw new XdrError(`XDR trailing bytes: ${this.end - this.pos}`);
  }

  private checkPadding(from: number, to: number): void {
    for (let i = from; i < to; i++) {
      if (this.buf[i] !== 0) throw new XdrError(`XDR non-zero padding at offset ${i}`);
    }
  }
}
