/**
 * Reusable I/O buffers for data a reply carries by reference (READ): taking one instead of a
 * fresh Buffer per call spares a malloc/mmap, page faults and munmap per megabyte, and keeps
 * V8's external-memory counter from forcing full garbage collections under sequential load.
 *
 * Buffers come in power-of-two size classes from `minSize` to `maxSize`, each owning its memory
 * (allocUnsafeSlow, never a slice of Node's shared pool). The free lists together hold at most
 * `maxFreeBytes`; beyond that a returned buffer is left to the garbage collector. Nothing
 * bounds the buffers out on loan: when the free list of a class is empty a new one is made.
 *
 * The pool knows nothing of who holds a buffer: the taker must give it back only when nothing
 * refers to it any more (for a reply, from call.afterReply), and at most once.
 */
export interface BufferPoolOptions {
  minSize?: number;
  maxSize?: number;
  maxFreeBytes?: number;
}

export class BufferPool {
  readonly minSize: number;
  readonly maxSize: number;
  readonly maxFreeBytes: number;
  /** Free buffers by size class (log2 of the size). */
  private readonly free = new Map<number, Buffer[]>();
  private freeBytesNow = 0;

  constructor(o: BufferPoolOptions = {}) {
    this.minSize = pow2AtLeast(o.minSize ?? 4096);
    this.maxSize = pow2AtLeast(Math.max(o.maxSize ?? 1024 * 1024, this.minSize));
    this.maxFreeBytes = o.maxFreeBytes ?? 16 * 1024 * 1024;
  }

  /** Bytes held in the free lists. */
  get freeBytes(): number {
    return this.freeBytesNow;
  }

  /** A buffer of at least `size` bytes (its length is the size class; contents are stale). */
  take(size: number): Buffer {
    if (size > this.maxSize) return Buffer.allocUnsafeSlow(size);
    const cls = size <= this.minSize ? this.minSize : pow2AtLeast(size);
    const list = this.free.get(cls);
    const b = list?.pop();
    if (b) {
      this.freeBytesNow -= b.length;
      return b;
    }
    return Buffer.allocUnsafeSlow(cls);
  }

  /** Returns a buffer obtained from take. */
  give(b: Buffer): void {
    const cls = b.length;
    if (cls < this.minSize || cls > this.maxSize || (cls & (cls - 1)) !== 0 || b.byteOffset !== 0) return;
    if (this.freeBytesNow + cls > this.maxFreeBytes) return;
    let list = this.free.get(cls);
    if (!list) this.free.set(cls, (list = []));
    list.push(b);
    this.freeBytesNow += cls;
  }
}

function pow2AtLeast(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}
