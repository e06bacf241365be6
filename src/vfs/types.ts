/**
 * The contract between the NFSv3 procedures and the union. It speaks POSIX, not NFS: failures
 * are thrown as FsError with an errno code (src/errors maps them to nfsstat3 in one table), and
 * nothing here knows about XDR, layers on the wire, whiteout names or the work directory.
 */
import type { UnionUsage } from './stats.js';

/** Object identity: the NFS fileid, constant for the object's life (over copy-up, rename and restart). */
export type NodeId = number;

export const FileType = {
  REG: 1, DIR: 2, BLK: 3, CHR: 4, LNK: 5, SOCK: 6, FIFO: 7,
} as const;
export type FileType = (typeof FileType)[keyof typeof FileType];

export interface Time {
  readonly sec: number;
  readonly nsec: number;
}

/** The merged object's attributes (fattr3 without the wire encoding). */
export interface Attr {
  readonly type: FileType;
  /** Permission bits and setuid/setgid/sticky (mode & 0o7777). */
  readonly mode: number;
  readonly nlink: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly used: number;
  readonly rdevMajor: number;
  readonly rdevMinor: number;
  readonly fsid: number;
  readonly fileid: NodeId;
  readonly atime: Time;
  readonly mtime: Time;
  readonly ctime: Time;
}

/** The caller, from AUTH_SYS (after any squashing the export applies). */
export interface Cred {
  readonly uid: number;
  readonly gid: number;
  readonly gids: readonly number[];
}

export type SetTime = { readonly how: 'server' } | { readonly how: 'client'; readonly time: Time };

/** sattr3: only the fields present are changed. */
export interface SetAttr {
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
  readonly size?: number;
  readonly atime?: SetTime;
  readonly mtime?: SetTime;
}

export interface DirEntry {
  readonly fileid: NodeId;
  /** Raw bytes: names are not necessarily UTF-8. */
  readonly name: Buffer;
  readonly cookie: bigint;
  /** Present for readdirplus. */
  readonly attr?: Attr;
}

export interface DirPage {
  readonly entries: readonly DirEntry[];
  readonly eof: boolean;
  /** Echoed as cookieverf3; the union never rejects a verifier (knfsd's leniency). */
  readonly verifier: bigint;
}

export const StableHow = { UNSTABLE: 0, DATA_SYNC: 1, FILE_SYNC: 2 } as const;
export type StableHow = (typeof StableHow)[keyof typeof StableHow];

export type CreateHow =
  | { readonly mode: 'unchecked' | 'guarded'; readonly attr: SetAttr }
  | { readonly mode: 'exclusive'; readonly verifier: Buffer };

export interface FsStat {
  readonly tbytes: number; readonly fbytes: number; readonly abytes: number;
  readonly tfiles: number; readonly ffiles: number; readonly afiles: number;
}

export interface UnionFs {
  readonly readOnly: boolean;
  readonly root: NodeId;
  /** Stable for the life of this server instance, new on every start (WRITE/COMMIT verifier). */
  readonly writeVerifier: Buffer;

  /** At most 64 bytes; the same for one object forever. */
  handleOf(id: NodeId): Buffer;
  /** Throws FsError 'EBADHANDLE' for a malformed or forged handle, 'ESTALE' for a gone object. */
  resolve(handle: Buffer): NodeId;

  getattr(id: NodeId): Attr;
  lookup(dir: NodeId, name: Buffer, cred: Cred): NodeId;
  /** ACCESS3_* bits the caller holds, out of those asked. */
  access(id: NodeId, mask: number, cred: Cred): number;
  readlink(id: NodeId): Buffer;
  /**
   * Up to `count` bytes at `offset`. With `into` (at least `count` bytes long), the data is
   * read into it and `data` is a view of it; an implementation may ignore `into`.
   */
  read(id: NodeId, offset: number, count: number, cred: Cred, into?: Buffer): Promise<{ data: Buffer; eof: boolean }>;
  /** `maxEntries` bounds the page; the procedure trims further to fit the client's byte counts. */
  readdir(dir: NodeId, cookie: bigint, maxEntries: number, plus: boolean, cred: Cred): DirPage;
  /** Has what readdir of these entries will read brought into the kernel's caches when that is slow. */
  prefetch(dir: NodeId, cookie: bigint, maxEntries: number): Promise<void>;
  fsstat(id: NodeId): FsStat;

  setattr(id: NodeId, attr: SetAttr, cred: Cred): Promise<void>;
  write(id: NodeId, offset: number, data: Buffer, stable: StableHow, cred: Cred): Promise<StableHow>;
  commit(id: NodeId, offset: number, count: number): Promise<void>;
  create(dir: NodeId, name: Buffer, how: CreateHow, cred: Cred): Promise<NodeId>;
  mkdir(dir: NodeId, name: Buffer, attr: SetAttr, cred: Cred): Promise<NodeId>;
  symlink(dir: NodeId, name: Buffer, target: Buffer, attr: SetAttr, cred: Cred): Promise<NodeId>;
  mknod(dir: NodeId, name: Buffer, type: FileType, attr: SetAttr, rdev: { major: number; minor: number }, cred: Cred): Promise<NodeId>;
  remove(dir: NodeId, name: Buffer, cred: Cred): Promise<void>;
  rmdir(dir: NodeId, name: Buffer, cred: Cred): Promise<void>;
  rename(fromDir: NodeId, fromName: Buffer, toDir: NodeId, toName: Buffer, cred: Cred): Promise<void>;
  link(id: NodeId, dir: NodeId, name: Buffer, cred: Cred): Promise<void>;

  /** What this union holds in memory and in its identity store (for metrics). */
  usage(): UnionUsage;

  close(): Promise<void>;
}

/**
 * The largest file size and write end this server represents exactly (numbers are doubles):
 * a WRITE or truncate past it is EFBIG. FSINFO's maxfilesize says so to clients.
 */
export const MAX_FILE_SIZE = Number.MAX_SAFE_INTEGER;
