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
/** Bytes read for a record at first: a record with one name of up to 255 bytes fits. */
const FIRST_READ = 320;

export class Heap {
  private end: number;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Reads land here (decode copies what it keeps). */
  private readonly scratch = Buffer.alloc(FIRST_READ);

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
    if (off < MAGIC.length || off >= this.end) return undefined;
    let b = this.scratch.subarray(0, Math.min(FIRST_READ, this.end - off));
    fs.readSync(this.fd, b, 0, b.length, off);
    if (b.length >= 8) {
      const want = 8 + b.readUInt32BE(0);
      if (want > b.length && off + want <= this.end) {
        b = Buffer.allocUnsafe(want);
        fs.readSync(this.fd, b, 0, want, off);
      }
    }
    const payload = unframe(b, 0);
    if (payload === undefined) return undefined;
    try {
      const d = decode(payload);
      return d.kind === 1 && d.id === id ? d.rec : undefined;
    } catch {
      return undefined;
    }
  }
}
