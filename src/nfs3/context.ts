/**
 * What every NFSv3 procedure shares: the export's union, whether this caller may write to it,
 * the limits, and the few helpers that keep the procedures short (post-op attributes that
 * never throw, the verifier, failure bodies).
 *
 * Order inside a procedure: decode all arguments first (an XdrError escapes to the RPC layer
 * and becomes GARBAGE_ARGS), then do the work inside try/catch, then encode. Nothing is
 * written to `reply` until the outcome is known, so a failure never follows half a result.
 *
 * Argument views (handles, names, WRITE data) are subarrays of the call's record buffer, passed
 * to the VFS without copying: the RPC layer keeps that buffer untouched until the procedure's
 * promise settles.
 */
import type { RpcCall } from '../rpc/types.js';
import { BufferPool } from '../rpc/buffer-pool.js';
import type { XdrWriter } from '@nfs-ts/xdr';
import type { Attr, NodeId, UnionFs } from '../vfs/types.js';
import { hasErrnoCode } from '../errors/fs-error.js';
import { toNfsstat3 } from '../errors/nfsstat.js';
import { child } from '../log.js';
import { NFS3_MAXIO, NFS3_WRITEVERFSIZE, NFSPROC3 } from './constants.js';

export const log = child('nfs3');

export interface Nfs3Options {
  /** rtmax/wtmax/rtpref/wtpref advertised by FSINFO and the cap on READ/WRITE; default 1 MiB. */
  readonly maxIo?: number;
  /** dtpref advertised by FSINFO; default 64 KiB. */
  readonly dtpref?: number;
  /** Cap on the byte counts a client may ask of READDIR/READDIRPLUS; default 1 MiB. */
  readonly maxDirBytes?: number;
  /** Cap on entries asked of the VFS per READDIR/READDIRPLUS reply; default 4096. */
  readonly maxDirEntries?: number;
  /** PATHCONF linkmax; default 65000 (ext4's EXT4_LINK_MAX, the usual upper layer). */
  readonly linkMax?: number;
  /** Bytes of idle READ buffers kept for reuse; default 16 MiB. */
  readonly readBufferBytes?: number;
  /** The READ buffer pool itself (tests, or a pool shared between programs); overrides readBufferBytes. */
  readonly readBuffers?: BufferPool;
}

export interface Nfs3Context {
  readonly fs: UnionFs;
  /** The path clients mount this union by, for log lines. */
  readonly exportPath: string;
  /** The union has no upper layer, or the caller's client rule is `ro`: changes are NFS3ERR_ROFS. */
  readonly readOnly: boolean;
  readonly maxIo: number;
  readonly dtpref: number;
  readonly maxDirBytes: number;
  readonly maxDirEntries: number;
  readonly linkMax: number;
  /** READ data buffers, lent to replies and given back once the reply is sent (read.ts). */
  readonly readBuffers: BufferPool;
}

/**
 * A reply must fit one datagram over UDP, so READ, READDIR(PLUS) and what FSINFO advertises
 * shrink to 32 KiB there (knfsd's UDP limit); TCP gets the full sizes.
 */
export const UDP_MAX_DATA = 32 * 1024;

export function maxIoFor(ctx: Nfs3Context, call: RpcCall): number {
  return call.peer.transport === 'udp' && ctx.maxIo > UDP_MAX_DATA ? UDP_MAX_DATA : ctx.maxIo;
}

export function maxDirBytesFor(ctx: Nfs3Context, call: RpcCall): number {
  return call.peer.transport === 'udp' && ctx.maxDirBytes > UDP_MAX_DATA ? UDP_MAX_DATA : ctx.maxDirBytes;
}

/** The context of one export, as a client whose rule is `ro` (readOnly) or `rw` sees it. */
export function makeContext(fs: UnionFs, exportPath: string, o: Nfs3Options, readBuffers: BufferPool, readOnly: boolean): Nfs3Context {
  return {
    fs,
    exportPath,
    readOnly: readOnly || fs.readOnly,
    maxIo: o.maxIo ?? NFS3_MAXIO,
    dtpref: o.dtpref ?? 64 * 1024,
    maxDirBytes: o.maxDirBytes ?? 1024 * 1024,
    maxDirEntries: o.maxDirEntries ?? 4096,
    linkMax: o.linkMax ?? 65000,
    readBuffers,
  };
}

/**
 * Attributes for a post_op_attr / pre_op_attr, or undefined when they cannot be had: those are
 * optional on the wire, so failing to get them must never fail the call. Bugs are still logged.
 */
export function tryGetattr(fs: UnionFs, id: NodeId | undefined): Attr | undefined {
  if (id === undefined) return undefined;
  try {
    return fs.getattr(id);
  } catch (err) {
    if (!hasErrnoCode(err)) toNfsstat3(err, 'getattr (post-op)');
    return undefined;
  }
}

/** The handle of a new object for post_op_fh3, or undefined (the client then LOOKUPs). */
export function tryHandleOf(fs: UnionFs, id: NodeId): Buffer | undefined {
  try {
    return fs.handleOf(id);
  } catch (err) {
    if (!hasErrnoCode(err)) toNfsstat3(err, 'handleOf');
    return undefined;
  }
}

/** writeverf3: exactly 8 bytes whatever the VFS hands over. */
export function writeVerf(w: XdrWriter, verf: Buffer): void {
  if (verf.length === NFS3_WRITEVERFSIZE) {
    w.opaqueFixed(verf);
  } else {
    const v = Buffer.alloc(NFS3_WRITEVERFSIZE);
    verf.copy(v, 0, 0, NFS3_WRITEVERFSIZE);
    w.opaqueFixed(v);
  }
}

/**
 * How many attribute slots (post_op_attr or pre_op_attr, each "not present" = one FALSE word)
 * each procedure's resfail holds. Every NFSv3 resfail consists only of these, so a failure
 * with no attributes known is the status plus that many zero words. Indexed by procedure; the
 * procedures themselves return real attributes wherever they have them.
 */
export const FAILURE_ATTR_SLOTS: readonly number[] = (() => {
  const s: number[] = new Array<number>(22).fill(0);
  s[NFSPROC3.GETATTR] = 0;
  for (const p of [NFSPROC3.LOOKUP, NFSPROC3.ACCESS, NFSPROC3.READLINK, NFSPROC3.READ,
    NFSPROC3.READDIR, NFSPROC3.READDIRPLUS, NFSPROC3.FSSTAT, NFSPROC3.FSINFO, NFSPROC3.PATHCONF]) s[p] = 1;
  for (const p of [NFSPROC3.SETATTR, NFSPROC3.WRITE, NFSPROC3.CREATE, NFSPROC3.MKDIR,
    NFSPROC3.SYMLINK, NFSPROC3.MKNOD, NFSPROC3.REMOVE, NFSPROC3.RMDIR, NFSPROC3.COMMIT]) s[p] = 2;
  s[NFSPROC3.LINK] = 3;
  s[NFSPROC3.RENAME] = 4;
  return s;
})();

