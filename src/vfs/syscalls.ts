/**
 * The Linux calls of the syscalls addon (src/native/syscalls.c), or undefined when it was not
 * built: each user keeps a portable way (a getfattr walk at start, the mknod, mkfifo and
 * setfattr tools, a listening socket, fs.lutimes to the microsecond, fs.promises.lstat per
 * path, paths resolved by name, fs.copyFile), slower, with a child process per call, and
 * without the containment of beneath.ts.
 * Errors carry the errno's name as `code`, like node:fs errors.
 */
import { loadAddon } from '../native/addon.js';

export interface Syscalls {
  /** lgetxattr(2): the value, or null when the file has no such attribute. */
  lget(path: Buffer, name: string): Buffer | null;
  /** llistxattr(2): the attribute names, each ended by a NUL byte (empty when none). */
  llist(path: Buffer): Buffer;
  /** lsetxattr(2). */
  lset(path: Buffer, name: string, value: Buffer): void;
  /** mknod(2): mode holds the type (S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK) and permissions. */
  mknod(path: Buffer, mode: number, major: number, minor: number): void;
  /** renameat2(2): RENAME_EXCHANGE swaps the two names, RENAME_WHITEOUT leaves a whiteout at `from`. */
  rename2(from: Buffer, to: Buffer, flags: number): void;
  /** utimensat(2), not following a symlink; nsec -1 leaves that time, -2 sets it to now. */
  lutimens(path: Buffer, aSec: number, aNsec: number, mSec: number, mNsec: number): void;
  /** lstat(2) of each path on the thread pool, results dropped: warms the kernel's caches. */
  lstatAhead(paths: Buffer[]): Promise<void>;
  /** fsync(2) then close(2) of each fd, one pool job: per fd null or the errno's name. */
  fsyncFds(fds: number[]): Promise<(string | null)[]>;
  /** syncfs(2) then close(2) of each fd, one pool job: per fd null or the errno's name. */
  syncfsFds(fds: number[]): Promise<(string | null)[]>;
  /** open(O_PATH|O_DIRECTORY) of a layer's root. */
  openRoot(path: Buffer): number;
  /** openat2(2) O_PATH of the directory rel below dirfd, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS. */
  openBeneath(dirfd: number, rel: Buffer): number;
  /** fstatat(2) of name ('' = dirfd itself) not following a symlink, into out (lstat.ts); false when absent. */
  lstatAt(dirfd: number, name: string, out: BigInt64Array): boolean;
  /** fchmodat(2) with AT_SYMLINK_NOFOLLOW. */
  lchmod(path: Buffer, mode: number): void;
  /** in's data into the empty file out (FICLONE, else copy_file_range), then fsync(out), on the pool: the bytes copied. */
  copyData(inFd: number, outFd: number): Promise<number>;
}

export const sys = loadAddon<Syscalls>('syscalls');

/** renameat2's flags (linux/fs.h). */
export const RENAME_EXCHANGE = 2, RENAME_WHITEOUT = 4;
