/**
 * The record heap: every identity record the store has checkpointed, appended as framed
 * payloads (record.ts) to identity.heap; the id table gives each live id its offset.
 *
 * Rule: append-only. A changed record is appended again and the old bytes become garbage
 * (the heap keeps no free space; a rewrite of live records would bound it). A record is read
 * back by offset and checked: frame CRC, kind PUT, the id asked for; anything else reads as
 * missing (a torn tail after a crash holds only records the log still has).
 * Layout: "UNFSHP1\n", then frames at the offsets the id table holds.
 */
import * as fs from 'node:fs';
import { decode, unframe, type Packed } from './record.js';

const MAGIC = Buffer.from('UNFSHP1\n');
/**
 * Reads go through a cache of aligned blocks. A checkpoint appends records in the order they
 * were made, which is mostly the order a client meets them again (a listing, a walk), so one
 * 64 KiB read serves hundreds of records where a pread each cost a syscall each.
 */
const BLOCK = 65_536;
/** Blocks kept: 4 MiB. */
const CACHE_BLOCKS = 64;

export class Heap {
  private end: number;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Block number -> its bytes as read (a block at the end may be short: the heap grows). */
  private readonly blocks = new Map<number, Buffer>();

  constructor(private readonly fd: number) {
    this.end = fs.fstatSync(fd).size;
    if (this.end < MAGIC.length) {
      fs.writeSync(fd, MAGIC, 0, MAGIC.length, 0);
      this.end = MAGIC.length;
    }
  }

  /** Appends a framed PUT record (record.ts frame); its offset. Written at the next flush. */
  append(f: Buffer): number {
    const at = this.end + this.pendingBytes;
    this.pending.push(f);
    this.pendingBytes += f.length;
    return at;
  }

  flush(): void {
    if (this.pending.length === 0) return;
    const b = Buffer.concat(this.pending, this.pendingBytes);
    fs.writeSync(this.fd, b, 0, b.length, this.end);
    this.end += b.length;
    this.pending = [];
    this.pendingBytes = 0;
  }

  /** The record of `id` at `off`, or undefined when the bytes there are not it. */
  read(off: number, id: number): Packed | undefined {
    if (off >= this.end) this.flush();
    if (off < MAGIC.length || off + 8 > this.end) return undefined;
    const head = this.bytes(off, 4);
    if (head === undefined) return undefined;
    const want = 8 + head.readUInt32BE(0);
    if (off + want > this.end) return undefined;
    const whole = this.bytes(off, want);
    const payload = whole === undefined ? undefined : unframe(whole, 0);
    if (payload === undefined) return undefined;
    try {
      const d = decode(payload);
      return d.kind === 1 && d.id === id ? d.rec : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * n bytes at off (below end): a view of a cached block, or a copy across two; undefined
   * when the file holds fewer (a short read).
   */
  private bytes(off: number, n: number): Buffer | undefined {
    const first = Math.floor(off / BLOCK);
    const at = off - first * BLOCK;
    if (at + n <= BLOCK) {
      const b = this.block(first, at + n);
      return b.length >= at + n ? b.subarray(at, at + n) : undefined;
    }
    const b = Buffer.allocUnsafe(n);
    return fs.readSync(this.fd, b, 0, n, off) === n ? b : undefined;
  }

  /** Block k holding at least `need` bytes: the bytes past the old end of a short one are new. */
  private block(k: number, need: number): Buffer {
    let b = this.blocks.get(k);
    if (b !== undefined && b.length >= need) {
      this.blocks.delete(k); // most recently used last
      this.blocks.set(k, b);
      return b;
    }
    const len = Math.min(BLOCK, this.end - k * BLOCK);
    b = Buffer.allocUnsafe(len);
    b = b.subarray(0, fs.readSync(this.fd, b, 0, len, k * BLOCK));
    this.blocks.delete(k);
    this.blocks.set(k, b);
    if (this.blocks.size > CACHE_BLOCKS) this.blocks.delete(this.blocks.keys().next().value!);
    return b;
  }
}
