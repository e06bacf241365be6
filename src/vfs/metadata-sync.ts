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
 * gone by then needs nothing. fsync runs on the thread pool; a failed one is marked again and
 * fails the commit (the reply is an error, NFS3ERR_IO).
 * Races: commits run one after the other (group commit): one in flight may have taken marks
 * of an operation that asks for its commit later, so that commit starts when the one before
 * has settled and takes everything marked by then, including what a failed one gave back.
 */
import * as fs from 'node:fs';

/** The index directory's mark (node ids start at 1). */
export const INDEX_MARK = 0;

export class MetadataSync {
  private marks = new Set<number>();
  /** The last commit asked for (each one starts when the one before has settled). */
  private last: Promise<void> = Promise.resolve();

  /**
   * `pathOf`: the upper path of a mark now (undefined: gone or not in the upper layer);
   * `syncLog`: makes the identity log durable.
   */
  constructor(private readonly pathOf: (mark: number) => Buffer | undefined, private readonly syncLog: () => Promise<void>) {}

  mark(id: number): void {
    this.marks.add(id);
  }

  /** Everything marked so far on stable storage. */
  commit(): Promise<void> {
    const run = this.last.then(() => this.syncMarks());
    this.last = run.catch(() => undefined); // a failure is its own commit's (marks given back)
    return run;
  }

  private async syncMarks(): Promise<void> {
    const taken = [...this.marks];
    this.marks.clear();
    // every fsync settles before the next commit starts, even when one fails
    const failed = (await Promise.allSettled(taken.map((m) => this.sync(m)))).find((r) => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    await this.syncLog();
  }

  private async sync(m: number): Promise<void> {
    const p = this.pathOf(m);
    if (p === undefined) return;
    let fh: fs.promises.FileHandle;
    try {
      fh = await fs.promises.open(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    } catch (e) {
      // gone since, or replaced by a symlink or another kind of object: its parent's mark
      // covers the name; a server that is not root may not open it: nothing more it can do
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ELOOP' || code === 'ENOTDIR' || code === 'ENXIO' || code === 'EACCES' || code === 'EPERM') return;
      this.marks.add(m);
      throw e;
    }
    try {
      await fh.sync();
    } catch (e) {
      this.marks.add(m);
      throw e;
    } finally {
      await fh.close();
    }
  }
}
