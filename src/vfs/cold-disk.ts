/**
 * Is the disk under the layers being read right now? The union's metadata calls run on the
 * event loop: from the kernel's caches an lstat takes microseconds, but one that must read an
 * inode from the disk takes a millisecond or more, and every client waits for it. While this
 * process has made the disk read (the kernel's count, read_bytes of /proc/self/io, grew within
 * the last COLD_FOR_MS), the calls that stat many objects at once (a READDIR page) first have
 * the kernel read them on the thread pool (Union.prefetch), where waiting for the disk stalls
 * only the client that asked; while everything comes from the caches (or tmpfs), nothing of
 * the kind is paid. The count is read at most every SAMPLE_MS. Timing the calls themselves
 * was tried and misleads: a garbage collection inside an lstat looks like a disk read.
 * Example: a client walks a tree on a disk whose cache was dropped: its first READDIRPLUS
 * page stalls the loop for the inodes it reads, then the walk's pages are read ahead on the pool.
 */
import * as fs from 'node:fs';
import { performance } from 'node:perf_hooks';

const SAMPLE_MS = 100;
const COLD_FOR_MS = 10_000;

/** read_bytes of /proc/self/io; undefined where there is none. */
function procReadBytes(): number | undefined {
  try {
    const m = /^read_bytes: (\d+)$/m.exec(fs.readFileSync('/proc/self/io', 'latin1'));
    return m === null ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}

export class ColdDisk {
  private sampledAt = -Infinity;
  private lastBytes: number | undefined;
  private coldUntil = 0;

  /** `readBytes`: bytes this process has had read from storage so far. */
  constructor(private readonly readBytes: () => number | undefined = procReadBytes, private readonly clock = () => performance.now()) {}

  isCold(): boolean {
    const now = this.clock();
    if (now - this.sampledAt >= SAMPLE_MS) {
      this.sampledAt = now;
      const bytes = this.readBytes();
      if (bytes !== undefined && this.lastBytes !== undefined && bytes > this.lastBytes) this.coldUntil = now + COLD_FOR_MS;
      this.lastBytes = bytes;
    }
    return now < this.coldUntil;
  }
}

/** The process's disk (the kernel counts reads per process, not per file system). */
export const coldDisk = new ColdDisk();
