/**
 * NFSv3 wire constants (RFC 1813), spelled as in the RFC so they grep against it.
 * `const` objects and literal unions, no `enum`.
 */

export const NFS_PROGRAM = 100003;
export const NFS_V3 = 3;

/** Procedure numbers (RFC 1813 §3.3). */
export const NFSPROC3 = {
  NULL: 0, GETATTR: 1, SETATTR: 2, LOOKUP: 3, ACCESS: 4, READLINK: 5, READ: 6, WRITE: 7,
  CREATE: 8, MKDIR: 9, SYMLINK: 10, MKNOD: 11, REMOVE: 12, RMDIR: 13, RENAME: 14, LINK: 15,
  READDIR: 16, READDIRPLUS: 17, FSSTAT: 18, FSINFO: 19, PATHCONF: 20, COMMIT: 21,
} as const;
export type NfsProc3 = (typeof NFSPROC3)[keyof typeof NFSPROC3];

/** nfsstat3 (RFC 1813 §2.6). */
export const NFS3_OK = 0;
export const NFS3ERR_PERM = 1;
export const NFS3ERR_NOENT = 2;
export const NFS3ERR_IO = 5;
export const NFS3ERR_NXIO = 6;
export const NFS3ERR_ACCES = 13;
export const NFS3ERR_EXIST = 17;
export const NFS3ERR_XDEV = 18;
export const NFS3ERR_NODEV = 19;
export const NFS3ERR_NOTDIR = 20;
export const NFS3ERR_ISDIR = 21;
export const NFS3ERR_INVAL = 22;
export const NFS3ERR_FBIG = 27;
export const NFS3ERR_NOSPC = 28;
export const NFS3ERR_ROFS = 30;
export const NFS3ERR_MLINK = 31;
export const NFS3ERR_NAMETOOLONG = 63;
export const NFS3ERR_NOTEMPTY = 66;
export const NFS3ERR_DQUOT = 69;
export const NFS3ERR_STALE = 70;
export const NFS3ERR_REMOTE = 71;
export const NFS3ERR_BADHANDLE = 10001;
export const NFS3ERR_NOT_SYNC = 10002;
export const NFS3ERR_BAD_COOKIE = 10003;
export const NFS3ERR_NOTSUPP = 10004;
export const NFS3ERR_TOOSMALL = 10005;
export const NFS3ERR_SERVERFAULT = 10006;
export const NFS3ERR_BADTYPE = 10007;
export const NFS3ERR_JUKEBOX = 10008;

/** ftype3: the same numbers as FileType in src/vfs/types.ts. */
export const NF3REG = 1;
export const NF3DIR = 2;
export const NF3BLK = 3;
export const NF3CHR = 4;
export const NF3LNK = 5;
export const NF3SOCK = 6;
export const NF3FIFO = 7;

/** ACCESS3 bits (RFC 1813 §3.3.4). */
export const ACCESS3_READ = 0x0001;
export const ACCESS3_LOOKUP = 0x0002;
export const ACCESS3_MODIFY = 0x0004;
export const ACCESS3_EXTEND = 0x0008;
export const ACCESS3_DELETE = 0x0010;
export const ACCESS3_EXECUTE = 0x0020;

/** FSINFO properties (RFC 1813 §3.3.19). */
export const FSF3_LINK = 0x0001;
export const FSF3_SYMLINK = 0x0002;
export const FSF3_HOMOGENEOUS = 0x0008;
export const FSF3_CANSETTIME = 0x0010;

/** stable_how (RFC 1813 §3.3.7); the same numbers as StableHow in src/vfs/types.ts. */
export const UNSTABLE = 0;
export const DATA_SYNC = 1;
export const FILE_SYNC = 2;

/** createmode3 (RFC 1813 §3.3.8). */
export const UNCHECKED = 0;
export const GUARDED = 1;
export const EXCLUSIVE = 2;

/** time_how (RFC 1813 §2.6, sattr3). */
export const DONT_CHANGE = 0;
export const SET_TO_SERVER_TIME = 1;
export const SET_TO_CLIENT_TIME = 2;

/** Sizes (RFC 1813 §2.4). */
export const NFS3_FHSIZE = 64;
export const NFS3_COOKIEVERFSIZE = 8;
export const NFS3_CREATEVERFSIZE = 8;
export const NFS3_WRITEVERFSIZE = 8;

/** Server limits: what FSINFO/PATHCONF advertise and what the procedures enforce. */
export const NFS3_MAXIO = 1024 * 1024;
export const NFS3_NAME_MAX = 255;
/** Longest symlink target accepted (Linux PATH_MAX less the NUL). */
export const NFS3_PATH_MAX = 4095;

/** Procedure names by number, lower case ('getattr'), for logs and metrics. */
export const NFSPROC3_NAMES: readonly string[] = Object.entries(NFSPROC3)
  .sort((a, b) => a[1] - b[1]).map(([name]) => name.toLowerCase());
