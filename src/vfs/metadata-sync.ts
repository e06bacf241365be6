/**
 * Metadata commits: what a reply to CREATE, MKDIR, SYMLINK, MKNOD, REMOVE, RMDIR, RENAME, LINK
 * or SETATTR says happened is on stable storage before the reply goes (RFC 1813 section 3.3:
 * modifying operations are committed before they return; knfsd's commit_metadata, the
 * `sync` of exports(5)). Without it a power cut brings back files whose REMOVE was answered
 * OK and loses renames and creates that were.
 *
 * Rule: an operation marks what it changed in the upper layer (`mark`): each directory whose
 * entries it changed (including the parents of what it copied up, and the index directory),
 * and each object whose inode it changed (a new object, the target of SETATTR or LINK). Before
 * its reply it awaits `commit`, which fsyncs everything marked so far by any operation (one
 * fsync serves every operation waiting on it), then the identity log, so the handle in the
 * reply names the same object after the cut. A mark is a node id (or the index directory),
 * turned into a path when the commit runs, since renames may move it meanwhile; an object
 * gone by then needs nothing. The fsyncs run on the thread pool (one job for all of them with
 * the syscalls addon), alongside the log's; a failed one is marked again and fails the commit
 * (the reply is an error: NFS3ERR_IO for EIO).
 * On a file system that keeps nothing over a power cut (tmpfs, ramfs) there is nothing to make
 * durable: the upper layer's fsyncs are skipped there, and the log's when the state directory
 * is on one too (`volatileFs`), as fsync is a no-op in the kernel for knfsd on them.
 * Races: commits run one after the other (group commit): one in flight may have taken marks
 * of an operation that asks for its commit later, so that commit starts when the one before
 * has settled and takes everything marked by then, including what a failed one gave back.
 */
import * as fs from 'node:fs';
import { FsError } from '../errors/fs-error.js';
import { sys } from './syscalls.js';

/** The index directory's mark (node ids start at 1). */
export const INDEX_MARK = 0;

export class MetadataSync {
  private marks = new Set<number>();
  /** The last commit asked for (each one starts when the one before has settled). */
  private last: Promise<void> = Promise.resolve();

  /**
   * `pathOf`: the upper path of a mark now (undefined: gone or not in the upper layer);
   * `syncLog`: makes the identity log durable; `fsyncAll`: fsyncs paths (fsyncEach).
   */
  constructor(
    private readonly pathOf: (mark: number) => Buffer | undefined,
    private readonly syncLog: () => Promise<void>,
    private readonly fsyncAll: (paths: Buffer[]) => Promise<(string | null)[]> = fsyncEach,
    /** Skip what has no stable storage under it: the upper layer's fsyncs, the log's. */
    private readonly skip: { files: boolean; log: boolean } = { files: false, log: false },
  ) {}

  mark(id: number): void {
    if (!this.skip.files) this.marks.add(id);
  }

  /** Everything marked so far on stable storage. */
  commit(): Promise<void> {
    if (this.skip.files && this.skip.log) return Promise.resolve();
    const run = this.last.then(() => this.syncMarks());
    this.last = run.catch(() => undefined); // a failure is its own commit's (marks given back)
    return run;
  }

  private async syncMarks(): Promise<void> {
    const taken = [...this.marks];
    this.marks.clear();
    const paths: Buffer[] = [];
    const owners: number[] = [];
    for (const m of taken) {
      const p = this.pathOf(m);
      if (p !== undefined) { paths.push(p); owners.push(m); }
    }
    // the files and the log at once (the reply needs both, in no order); all settle before
    // the next commit starts, even when one fails
    const [files, log] = await Promise.allSettled([this.fsyncAll(paths), this.skip.log ? Promise.resolve() : this.syncLog()]);
    if (files.status === 'rejected') {
      for (const m of owners) this.marks.add(m);
      throw files.reason;
    }
    let failed: string | undefined;
    files.value.forEach((code, i) => {
      if (code === null || NOTHING_TO_SYNC.has(code)) return;
      this.marks.add(owners[i]!);
      failed ??= code;
    });
    if (failed !== undefined) throw new FsError(failed, 'fsync of a changed directory or object');
    if (log.status === 'rejected') throw log.reason;
  }
}

/**
 * Why an object could not be synced that needs nothing more: gone since, or replaced by a
 * symlink or another kind of object with no fsync (its parent's mark covers the name), or not
 * ours to open (a server that is not root: nothing more it can do).
 */
const NOTHING_TO_SYNC = new Set(['ENOENT', 'ELOOP', 'ENOTDIR', 'ENXIO', 'EINVAL', 'EACCES', 'EPERM']);

/**
 * open, fsync and close of each path: per path null, or the errno's name. The paths are opened
 * at once, before anything is awaited (a layer path is good until then: beneath.ts), and
 * never through a symlink or blocking (a FIFO); the fsyncs run as one pool job with the addon.
 */
export async function fsyncEach(paths: Buffer[]): Promise<(string | null)[]> {
  const out: (string | null)[] = [];
  const fds: number[] = [];
  const at: number[] = [];
  for (const p of paths) {
    try {
      fds.push(fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK));
      at.push(out.length);
      out.push(null);
    } catch (e) {
      out.push((e as NodeJS.ErrnoException).code ?? 'EIO');
    }
  }
  if (fds.length === 0) return out;
  const synced = sys !== undefined ? await sys.fsyncFds(fds) : await Promise.all(fds.map(fsyncClose));
  synced.forEach((code, i) => { out[at[i]!] = code; });
  return out;
}

function fsyncClose(fd: number): Promise<string | null> {
  return new Promise((resolve) => fs.fsync(fd, (err) => fs.close(fd, () => resolve(err?.code ?? null))));
}

/** statfs(2) f_type of the file systems that lose everything at power-off. */
const TMPFS_MAGIC = 0x01021994, RAMFS_MAGIC = 0x858458f6;

/** Is the file system holding `path` one that keeps nothing over a power cut? */
export function volatileFs(path: string | Buffer): boolean {
  try {
    const t = fs.statfsSync(path).type;
    return t === TMPFS_MAGIC || t === RAMFS_MAGIC;
  } catch {
    return false;
  }
}
