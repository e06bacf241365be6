/**
 * An extendible hash table on disk (Fagin, Nievergelt, Pippenger and Strong, 1979): the
 * identity store's indexes (id -> heap offset, name -> id, inode -> id).
 *
 * Rule: entries (tag, value) live in 4 KiB pages of 255 slots. A directory of 2^depth page
 * numbers, held in memory and saved in the store's manifest, picks a tag's page by the tag's
 * low `depth` bits. A full page is split in two by one more bit (its local depth), so the
 * table grows a page at a time and is never rehashed whole: each insert costs at most one
 * page read and, now and then, two page writes.
 * Crashes: the manifest names the pages of the last checkpoint. A split writes two fresh pages
 * and leaves the old one as it was (copy on write); an old page is reused only after a
 * manifest without it is durable (retire/durable). Slots are changed in place; the store's log
 * holds every change since the last manifest and is replayed over the pages after a crash, so
 * a slot write that was lost or half-done is made again.
 * Layout, little-endian: page k at byte k * 4096; u32 magic, u8 local depth, 11 bytes unused,
 * then 255 x (u32 tag lo, u32 tag hi, f64 value). Tag (0, 0) marks a free slot.
 * Example: tag (0, 7) -> value 4096 in page dir[7 & (2^depth - 1)].
 * Races: none; one store uses a table from the event loop only.
 */
import * as fs from 'node:fs';
import { endianness } from 'node:os';
import { FsError } from '../../errors/fs-error.js';

const PAGE = 4096;
const SLOTS = 255;
const MAGIC = 0x554e4254; // 'UNBT'
/** 2^22 directory entries (16 MiB) index about 10^9 entries; deeper only skewed tags need. */
const MAX_DEPTH = 22;

/** What the manifest saves of a table. */
export interface TableState {
  depth: number;
  dir: Uint32Array;
  /** Pages in the file (the next fresh page number). */
  pages: number;
  /** Pages no durable manifest names: reusable. */
  free: number[];
}

/**
 * A page and its typed views (slot i: words 4+4i lo, 5+4i hi, double 3+2i value): scanning
 * 255 slots through them costs a fifth of Buffer.readUInt32LE calls. The views read the file's
 * little-endian words as they are, so the host must be little-endian (x86-64, arm64).
 */
interface Page { buf: Buffer; w: Uint32Array; f: Float64Array; dirty: boolean; used: boolean }

function pageOf(buf: Buffer): Page {
  return { buf, w: new Uint32Array(buf.buffer, buf.byteOffset, PAGE / 4), f: new Float64Array(buf.buffer, buf.byteOffset, PAGE / 8), dirty: false, used: true };
}

/** A page-sized buffer of its own (offset 0 of its ArrayBuffer: the views need alignment). */
function pageBuf(): Buffer {
  return Buffer.alloc(PAGE);
}

export type PutResult = 'inserted' | 'updated' | 'kept' | 'full';

export class BucketTable {
  private depth: number;
  private dir: Uint32Array;
  private pages: number;
  private free: number[];
  /** Pages split away since the last durable manifest (which may still name them). */
  private retired: number[] = [];
  private readonly cache = new Map<number, Page>();

  constructor(private readonly fd: number, state: TableState | undefined, private readonly cachePages: number) {
    if (endianness() !== 'LE') throw new Error('the identity tables need a little-endian host');
    if (state === undefined) {
      this.depth = 0;
      this.dir = new Uint32Array([0]);
      this.pages = 1;
      this.free = [];
      this.cache.set(0, emptyPage(0));
    } else {
      this.depth = state.depth;
      this.dir = state.dir;
      this.pages = state.pages;
      this.free = [...state.free];
    }
  }

  /** The values stored under tag (hi, lo). */
  find(hi: number, lo: number): number[] {
    const { w, f } = this.page(this.dir[lo & this.mask()]!);
    const out: number[] = [];
    lo >>>= 0;
    hi >>>= 0;
    for (let i = 0; i < SLOTS; i++) {
      if (w[4 + 4 * i] === lo && w[5 + 4 * i] === hi) out.push(f[3 + 2 * i]!);
    }
    return out;
  }

  /**
   * Store (tag, value). With `unique`, an entry of the same tag gets the value ('updated');
   * without, a tag may hold several values and only the pair itself is looked for ('kept').
   * 'full' when the page cannot split further (MAX_DEPTH: only possible with skewed tags).
   */
  put(hi: number, lo: number, value: number, unique: boolean): PutResult {
    if (hi === 0 && lo === 0) throw new RangeError('tag (0, 0) marks free slots');
    lo >>>= 0;
    hi >>>= 0;
    for (;;) {
      const no = this.dir[lo & this.mask()]!;
      const p = this.page(no);
      const { w, f } = p;
      let freeAt = -1;
      for (let i = 0; i < SLOTS; i++) {
        const slo = w[4 + 4 * i]!, shi = w[5 + 4 * i]!;
        if (slo === lo && shi === hi) {
          if (f[3 + 2 * i] === value) return 'kept';
          if (unique) {
            f[3 + 2 * i] = value;
            p.dirty = true;
            return 'updated';
          }
        } else if (freeAt < 0 && slo === 0 && shi === 0) {
          freeAt = i;
        }
      }
      if (freeAt >= 0) {
        w[4 + 4 * freeAt] = lo;
        w[5 + 4 * freeAt] = hi;
        f[3 + 2 * freeAt] = value;
        p.dirty = true;
        return 'inserted';
      }
      if (!this.split(no, lo)) return 'full';
    }
  }

  /** Remove tag's entry holding `value` (any value when undefined); whether one was there. */
  remove(hi: number, lo: number, value?: number): boolean {
    const p = this.page(this.dir[lo & this.mask()]!);
    const { w, f } = p;
    lo >>>= 0;
    hi >>>= 0;
    let removed = false;
    for (let i = 0; i < SLOTS; i++) {
      if (w[4 + 4 * i] === lo && w[5 + 4 * i] === hi && (value === undefined || f[3 + 2 * i] === value)) {
        w[4 + 4 * i] = w[5 + 4 * i] = 0;
        f[3 + 2 * i] = 0;
        p.dirty = true;
        removed = true;
      }
    }
    return removed;
  }

  /** Write every changed page (to the page cache of the kernel; the store fsyncs). */
  flush(): void {
    for (const [no, p] of this.cache) if (p.dirty) this.writePage(no, p);
  }

  /**
   * The state for a manifest (call after flush). Its free list includes the pages split away
   * since the last manifest: once this one is durable, nothing names them.
   */
  state(): TableState {
    return { depth: this.depth, dir: this.dir.slice(), pages: this.pages, free: [...this.free, ...this.retired] };
  }

  /** A manifest holding `saved` (a state() of this table) is durable. */
  durable(saved: TableState): void {
    const nowFree = new Set(saved.free);
    this.free.push(...this.retired.filter((no) => nowFree.has(no)));
    this.retired = this.retired.filter((no) => !nowFree.has(no));
  }

  private mask(): number {
    return this.depth === 0 ? 0 : (0xffffffff >>> (32 - this.depth));
  }

  /** Split page `no` (reached through a tag whose low bits are `lo`) in two fresh pages. */
  private split(no: number, lo: number): boolean {
    // a copy: the page cache may hand the old page's buffer to another page below
    const copy = pageBuf();
    this.page(no).buf.copy(copy);
    const old = pageOf(copy);
    const ld = copy[4]!;
    if (ld >= MAX_DEPTH) return false;
    if (ld === this.depth) {
      const grown = new Uint32Array(this.dir.length * 2);
      grown.set(this.dir);
      grown.set(this.dir, this.dir.length);
      this.dir = grown;
      this.depth++;
    }
    const a = this.alloc(ld + 1), b = this.alloc(ld + 1);
    const pa = this.page(a), pb = this.page(b);
    let ia = 0, ib = 0;
    for (let i = 0; i < SLOTS; i++) {
      const slo = old.w[4 + 4 * i]!, shi = old.w[5 + 4 * i]!;
      if (slo === 0 && shi === 0) continue;
      const [to, j] = (slo >>> ld) & 1 ? [pb, ib++] : [pa, ia++];
      to.w[4 + 4 * j] = slo;
      to.w[5 + 4 * j] = shi;
      to.f[3 + 2 * j] = old.f[3 + 2 * i]!;
    }
    const step = 2 ** ld;
    for (let i = ld === 0 ? 0 : (lo & (0xffffffff >>> (32 - ld))) >>> 0; i < this.dir.length; i += step) {
      this.dir[i] = Math.floor(i / step) & 1 ? b : a;
    }
    this.cache.delete(no);
    this.retired.push(no);
    return true;
  }

  private alloc(localDepth: number): number {
    const no = this.free.pop() ?? this.pages++;
    this.cache.set(no, emptyPage(localDepth));
    this.trim();
    return no;
  }

  private page(no: number): Page {
    let p = this.cache.get(no);
    if (p !== undefined) {
      p.used = true;
      return p;
    }
    // the page read reuses the page it evicts (buffer and views): no allocation per read
    p = this.cache.size >= this.cachePages ? this.evictOldest() : pageOf(pageBuf());
    const got = fs.readSync(this.fd, p.buf, 0, PAGE, no * PAGE);
    if (got !== PAGE || p.w[0] !== MAGIC) throw new FsError('EIO', `identity index: page ${no} is damaged`);
    p.dirty = false;
    p.used = true;
    this.cache.set(no, p);
    this.trim();
    return p;
  }

  private trim(): void {
    while (this.cache.size > this.cachePages) this.evictOldest();
  }

  /**
   * Drop a page not used lately (second chance: the oldest page used since it was last passed
   * over goes to the back instead), written first when changed; it, for reuse. A hit only
   * sets `used`, which costs less than moving the page in the Map at every access.
   */
  private evictOldest(): Page {
    for (;;) {
      const [no, p] = this.cache.entries().next().value as [number, Page];
      this.cache.delete(no);
      if (p.used) {
        p.used = false;
        this.cache.set(no, p);
        continue;
      }
      if (p.dirty) this.writePage(no, p);
      return p;
    }
  }


  private writePage(no: number, p: Page): void {
    fs.writeSync(this.fd, p.buf, 0, PAGE, no * PAGE);
    p.dirty = false;
  }
}

function emptyPage(localDepth: number): Page {
  const p = pageOf(pageBuf());
  p.w[0] = MAGIC;
  p.buf[4] = localDepth;
  p.dirty = true;
  return p;
}

/** Bytes of a table's state in the manifest (see encodeState). */
export function stateBytes(s: TableState): number {
  return 12 + 4 * s.dir.length + 4 * s.free.length;
}

/** u32 depth, u32 pages, u32 free count, dir (u32 each), free (u32 each); little-endian. */
export function encodeState(s: TableState, b: Buffer, o: number): number {
  b.writeUInt32LE(s.depth, o);
  b.writeUInt32LE(s.pages, o + 4);
  b.writeUInt32LE(s.free.length, o + 8);
  o += 12;
  for (const v of s.dir) { b.writeUInt32LE(v, o); o += 4; }
  for (const v of s.free) { b.writeUInt32LE(v, o); o += 4; }
  return o;
}

export function decodeState(b: Buffer, o: number): { state: TableState; end: number } {
  const depth = b.readUInt32LE(o), pages = b.readUInt32LE(o + 4), nfree = b.readUInt32LE(o + 8);
  o += 12;
  if (depth > MAX_DEPTH || o + 4 * (2 ** depth + nfree) > b.length) throw new Error('bad table state');
  const dir = new Uint32Array(2 ** depth);
  for (let i = 0; i < dir.length; i++) { dir[i] = b.readUInt32LE(o); o += 4; }
  const free: number[] = [];
  for (let i = 0; i < nfree; i++) { free.push(b.readUInt32LE(o)); o += 4; }
  for (const v of dir) if (v >= pages) throw new Error('bad table state');
  return { state: { depth, dir, pages, free }, end: o };
}
