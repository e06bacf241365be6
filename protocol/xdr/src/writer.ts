/**
 * A growable XDR encoder (RFC 4506). It writes into one buffer that doubles when full, and can
 * splice in caller-owned buffers without copying them (`opaqueRef`), so a READ reply goes out as
 * [header, file data, padding] in one writev. `reserve` + `patchUint32` let a caller write a
 * length or count first and fill it in last (the shape of a record mark or a READDIR count).
 */
export class XdrWriter {
  private buf: Buffer;
  private pos = 0;
  /** Completed segments: slices of earlier buffers and caller-owned buffers, in order. */
  private chunks: Buffer[] = [];
  private chunkBytes = 0;
  /** Absolute offset of buf[0] in the encoded output. */
  private bufStart = 0;

  constructor(initialSize = 512) {
    this.buf = Buffer.allocUnsafe(initialSize);
  }

  /** Bytes written so far, including spliced buffers. */
  get length(): number {
    return this.chunkBytes + this.pos;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    // max(64, ...): a writer created with initialSize 0 would otherwise double 0 forever.
    let size = Math.max(64, this.buf.length * 2);
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  uint32(v: number): this {
    this.ensure(4);
    this.buf.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
    return this;
  }

  int32(v: number): this {
    this.ensure(4);
    this.buf.writeInt32BE(v | 0, this.pos);
    this.pos += 4;
    return this;
  }

  enum(v: number): this {
    return this.int32(v);
  }

  bool(v: boolean): this {
    return this.uint32(v ? 1 : 0);
  }

  uint64(v: bigint): this {
    this.ensure(8);
    this.buf.writeBigUInt64BE(BigInt.asUintN(64, v), this.pos);
    this.pos += 8;
    return this;
  }

  int64(v: bigint): this {
    this.ensure(8);
    this.buf.writeBigInt64BE(BigInt.asIntN(64, v), this.pos);
    this.pos += 8;
    return this;
  }

  /** unsigned hyper from a non-negative safe integer (sizes, offsets, fileids), no BigInt. */
  uint64Number(v: number): this {
    this.ensure(8);
    const hi = Math.floor(v / 0x1_0000_0000);
    this.buf.writeUInt32BE(hi >>> 0, this.pos);
    this.buf.writeUInt32BE((v - hi * 0x1_0000_0000) >>> 0, this.pos + 4);
    this.pos += 8;
    return this;
  }

  /** Fixed-length opaque: the bytes and zero padding, no length. */
  opaqueFixed(data: Uint8Array): this {
    const padded = data.length + ((4 - (data.length % 4)) % 4);
    this.ensure(padded);
    this.buf.set(data, this.pos);
    this.buf.fill(0, this.pos + data.length, this.pos + padded);
    this.pos += padded;
    return this;
  }

  opaque(data: Uint8Array): this {
    this.uint32(data.length);
    return this.opaqueFixed(data);
  }

  string(s: Uint8Array | string): this {
    return this.opaque(typeof s === 'string' ? Buffer.from(s, 'utf8') : s);
  }

  /**
   * Variable-length opaque whose bytes are not copied: `data` is kept by reference and must
   * not change until the writer's chunks have been sent.
   */
  opaqueRef(data: Buffer): this {
    this.uint32(data.length);
    if (data.length === 0) return this;
    this.flushChunk();
    this.chunks.push(data);
    this.chunkBytes += data.length;
    this.bufStart = this.chunkBytes;
    const pad = (4 - (data.length & 3)) & 3;
    if (pad) {
      this.ensure(pad);
      this.buf.fill(0, this.pos, this.pos + pad);
      this.pos += pad;
    }
    return this;
  }

  /** Reserves 4 bytes to be filled by patchUint32; returns their absolute position. */
  reserve(): number {
    this.ensure(4);
    const at = this.bufStart + this.pos;
    // Zeroed: the buffer is allocUnsafe, and an unpatched slot must not leak old heap bytes.
    this.buf.writeUInt32BE(0, this.pos);
    this.pos += 4;
    return at;
  }

  /** Fills a reserved slot. Only valid until the next opaqueRef, which seals earlier bytes. */
  patchUint32(at: number, v: number): this {
    if (at < this.bufStart) throw new Error('XdrWriter.patchUint32 across an opaqueRef');
    this.buf.writeUInt32BE(v >>> 0, at - this.bufStart);
    return this;
  }

  /**
   * The 4-byte word already written at absolute position `at` (numbered as `length` and
   * `reserve` number them), wherever it now lies: a reader of its own reply, e.g. a status
   * counted after the reply was encoded.
   */
  uint32At(at: number): number {
    if (at < 0 || at + 4 > this.length) throw new RangeError(`XdrWriter.uint32At(${at}) outside the ${this.length} bytes written`);
    if (at >= this.bufStart) return this.buf.readUInt32BE(at - this.bufStart);
    let start = 0;
    for (const c of this.chunks) {
      if (at + 4 <= start + c.length) return c.readUInt32BE(at - start);
      start += c.length;
    }
    throw new RangeError(`XdrWriter.uint32At(${at}) spans two segments`);
  }

  /** The encoded bytes as a list of buffers (zero-copy for spliced data). */
  toBuffers(): Buffer[] {
    this.flushChunk();
    return this.chunks;
  }

  /** The encoded bytes as one buffer (copies if data was spliced in). */
  toBuffer(): Buffer {
    if (!this.chunks.length) return this.buf.subarray(0, this.pos);
    return Buffer.concat(this.toBuffers());
  }

  private flushChunk(): void {
    if (this.pos === 0) return;
    this.chunks.push(this.buf.subarray(0, this.pos));
    this.chunkBytes += this.pos;
    this.bufStart = this.chunkBytes;
    // The flushed slice is still referenced by chunks: continue in a fresh buffer.
    this.buf = Buffer.allocUnsafe(Math.max(64, this.buf.length - this.pos));
    this.pos = 0;
  }
}
