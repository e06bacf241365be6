/**
 * A bounded LRU of open file descriptors for READ/WRITE, keyed by node id.
 *
 * Rule: an entry is dropped (and closed once no I/O is in flight on it) whenever its node is
 * copied up, removed or replaced, so I/O never reaches a stale copy. A read-only fd (lower
 * copy) is never used for writing. Example: 300 files read in turn keep the 256 most recent
 * open. Races: close is deferred while reads/writes on the fd are pending.
 *
 * Reads up to SYNC_READ_MAX and writes up to SYNC_WRITE_MAX run synchronously on the event
 * loop: a page-cache hit costs a few microseconds per 4 KiB (about 0.1 ms per MiB), while a
 * trip through libuv's thread pool costs two thread wake-ups (tens of microseconds on a small
 * VM), the largest part of a 4 KiB READ's latency and ~10 % of a 1 MiB one's. Large writes stay
 * on the pool: they allocate page-cache pages, and where the host backs guest memory lazily
 * that costs milliseconds per MiB. Storage that is not in memory would block every client, so
 * a synchronous call slower than SLOW_SYNC_MS sends all I/O to the thread pool for
 * ASYNC_AFTER_SLOW_MS before trying again: on a cold disk, at most one blocking call per period.
 */
import * as fs from 'node:fs';
import { vfsCounters } from './stats.js';

const SYNC_READ_MAX = 1024 * 1024;
const SYNC_WRITE_MAX = 64 * 1024;
const SLOW_SYNC_MS = 2;
const ASYNC_AFTER_SLOW_MS = 10_000;

interface Entry { fd: number; writable: boolean; busy: number; dead: boolean }

/**
 * The descriptors all FdCaches of the process may keep open together: one union keeps up to
 * its own bound, but a per-client export has a union per client, and fifty of them at 256
 * each would pass a 1024 or 20,000 RLIMIT_NOFILE and turn every open into EMFILE. Over the
 * budget, a cache gives back its own oldest descriptor before keeping a new one.
 */
export class FdBudget {
  open = 0;
  constructor(readonly max: number) {}
  get over(): boolean { return this.open > this.max; }
}

/** The process's budget: room for a few hundred client connections under a soft limit of 1024. */
export const PROCESS_FDS = new FdBudget(512);

export class FdCache {
  private map = new Map<number, Entry>();
  /** performance.now() before which no I/O runs synchronously (see the header). */
  private asyncUntil = 0;
  constructor(private readonly max: number, private readonly slowSyncMs = SLOW_SYNC_MS, private readonly budget = PROCESS_FDS) {}

  /** Would small I/O run synchronously now? */
  get syncIo(): boolean {
    return this.asyncUntil === 0 || performance.now() >= this.asyncUntil;
  }

  private trySync(len: number, max: number): boolean {
    return len <= max && this.syncIo;
  }

  /** Time a synchronous call; a slow one turns synchronous I/O off for a while. */
  private timed<T>(f: () => T): T {
    const t0 = performance.now();
    try {
      return f();
    } finally {
      const t1 = performance.now();
      this.asyncUntil = t1 - t0 > this.slowSyncMs ? t1 + ASYNC_AFTER_SLOW_MS : 0;
    }
  }

  private acquire(id: number, open: () => { fd: number; writable: boolean }, needWrite: boolean): Entry {
    let e = this.map.get(id);
    if (e !== undefined && needWrite && !e.writable) { this.drop(id); e = undefined; }
    if (e === undefined) {
      vfsCounters.fdMisses++;
      const o = open();
      this.budget.open++;
      e = { fd: o.fd, writable: o.writable, busy: 0, dead: false };
      this.map.set(id, e);
      if (this.map.size > this.max || this.budget.over) {
        for (const k of this.map.keys()) { if (k !== id) { this.drop(k); break; } }
      }
    } else {
      vfsCounters.fdHits++;
      this.map.delete(id);
      this.map.set(id, e);
    }
    e.busy++;
    return e;
  }

  private release(e: Entry): void {
    if (--e.busy === 0 && e.dead) this.close(e.fd);
  }

  private close(fd: number): void {
    this.budget.open--;
    closeQuietly(fd);
  }

  async read(id: number, open: () => { fd: number; writable: boolean }, buf: Buffer, pos: number): Promise<number> {
    const e = this.acquire(id, open, false);
    try {
      if (this.trySync(buf.length, SYNC_READ_MAX)) return this.timed(() => readFully(e.fd, buf, pos));
      let off = 0;
      while (off < buf.length) {
        const n = await new Promise<number>((res, rej) => fs.read(e.fd, buf, off, buf.length - off, pos + off, (err, b) => (err ? rej(err) : res(b))));
        if (n === 0) break;
        off += n;
      }
      return off;
    } finally {
      this.release(e);
    }
  }

  async write(id: number, open: () => { fd: number; writable: boolean }, data: Buffer, pos: number, sync: 'none' | 'data' | 'file'): Promise<void> {
    const e = this.acquire(id, open, true);
    try {
      if (this.trySync(data.length, SYNC_WRITE_MAX)) {
        this.timed(() => {
          for (let off = 0; off < data.length;) off += fs.writeSync(e.fd, data, off, data.length - off, pos + off);
        });
        if (sync !== 'none') await syncFd(e.fd, sync === 'data');
        return;
      }
      let off = 0;
      while (off < data.length) {
        off += await new Promise<number>((res, rej) => fs.write(e.fd, data, off, data.length - off, pos + off, (err, b) => (err ? rej(err) : res(b))));
      }
      if (sync !== 'none') await syncFd(e.fd, sync === 'data');
    } finally {
      this.release(e);
    }
  }

  /** fsync the cached fd of `id`; false when none is cached. */
  async sync(id: number, dataOnly: boolean): Promise<boolean> {
    const e = this.map.get(id);
    if (e === undefined) return false;
    e.busy++;
    try { await syncFd(e.fd, dataOnly); } finally { this.release(e); }
    return true;
  }

  drop(id: number): void {
    const e = this.map.get(id);
    if (e === undefined) return;
    this.map.delete(id);
    e.dead = true;
    if (e.busy === 0) this.close(e.fd);
  }

  async closeAll(): Promise<void> {
    for (const id of [...this.map.keys()]) this.drop(id);
  }
}

/**
 * close(2) on the event loop: a few microseconds for a local file, where the thread pool's
 * round trip cost 8.6 us idle and ~85 us under the fleet bench's load (bench/README.md), and a
 * client reading files once evicts an fd per READ.
 */
function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch { /* EBADF/EIO on close: the fd is gone either way */ }
}

function readFully(fd: number, buf: Buffer, pos: number): number {
  let off = 0;
  while (off < buf.length) {
    const n = fs.readSync(fd, buf, off, buf.length - off, pos + off);
    if (n === 0) break;
    off += n;
  }
  return off;
}

function syncFd(fd: number, dataOnly: boolean): Promise<void> {
  return new Promise((res, rej) => (dataOnly ? fs.fdatasync : fs.fsync)(fd, (err) => (err ? rej(err) : res())));
}
