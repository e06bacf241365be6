/**
 * lstat: what the union reads of an object's status, from either source: node's BigIntStats
 * (a path, fs.lstatSync) or the syscalls addon's lstatAt (one name in an open directory, which
 * costs the kernel one component instead of a path walk, and no /proc/self/fd lookup).
 * Example: lstatQuiet(Buffer.from('/srv/x')).ino, and after sys.lstatAt(dirfd, 'x',
 * statFields), new AddonStat().ino: the same inode number.
 */
import * as fs from 'node:fs';

export interface LStat {
  readonly dev: bigint;
  readonly ino: bigint;
  readonly mode: bigint;
  readonly nlink: bigint;
  readonly uid: bigint;
  readonly gid: bigint;
  readonly rdev: bigint;
  readonly size: bigint;
  readonly blocks: bigint;
  readonly atimeNs: bigint;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
  isDirectory(): boolean;
  isFile(): boolean;
  isSymbolicLink(): boolean;
  isCharacterDevice(): boolean;
}

/** lstatAt's output, in the addon's order (syscalls.c ST_*). */
export const statFields = new BigInt64Array(12);

const S_IFMT = 0o170000n;

/** The fields lstatAt just wrote to statFields, kept. */
export class AddonStat implements LStat {
  readonly dev = statFields[0]!;
  readonly ino = statFields[1]!;
  readonly mode = statFields[2]!;
  readonly nlink = statFields[3]!;
  readonly uid = statFields[4]!;
  readonly gid = statFields[5]!;
  readonly rdev = statFields[6]!;
  readonly size = statFields[7]!;
  readonly blocks = statFields[8]!;
  readonly atimeNs = statFields[9]!;
  readonly mtimeNs = statFields[10]!;
  readonly ctimeNs = statFields[11]!;
  isDirectory(): boolean { return (this.mode & S_IFMT) === 0o040000n; }
  isFile(): boolean { return (this.mode & S_IFMT) === 0o100000n; }
  isSymbolicLink(): boolean { return (this.mode & S_IFMT) === 0o120000n; }
  isCharacterDevice(): boolean { return (this.mode & S_IFMT) === 0o020000n; }
}

/** lstat of p; undefined when it, or a directory on its way, is not there (or p is too long). */
export function lstatQuiet(p: Buffer): LStat | undefined {
  try {
    return fs.lstatSync(p, { bigint: true, throwIfNoEntry: false });
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ENOTDIR' || code === 'ENAMETOOLONG' || code === 'ENOENT') return undefined;
    throw e;
  }
}
