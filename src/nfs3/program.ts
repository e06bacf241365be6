/**
 * The NFS program, version 3 only (RFC 1813): a table indexed by procedure number. Versions 2
 * and 4 are the dispatcher's business (PROG_MISMATCH(3,3) from what is registered).
 *
 * Every procedure but NULL takes a handle first. Before a procedure runs, that handle is
 * peeked (not consumed) to find its export, and the caller is admitted (src/exports): a
 * refusal is answered here with the procedure's failure body (NFS3ERR_ACCES, NFS3ERR_PERM,
 * NFS3ERR_STALE). The procedure then runs with the context of the union this client sees
 * (src/exports/union-source.ts), read-only when its rule is `ro`, and with the squashed
 * credential in `call.cred`. The table is asked per call, so a reload takes effect at once.
 *
 * nonIdempotent lists what the duplicate request cache must answer from memory on a retransmit
 * (RFC 1813 §4.5): the namespace operations, plus SETATTR, whose replay can undo a later WRITE
 * (size) or fail a guard that held the first time.
 */
import type { XdrWriter } from '@nfs-ts/xdr';
import type { Procedure, ProgramVersion, RpcCall } from '../rpc/types.js';
import type { UnionFs } from '../vfs/types.js';
import type { ClientOptions } from '../exports/client-rules.js';
import { BufferPool } from '../rpc/buffer-pool.js';
import { toNfsstat3 } from '../errors/nfsstat.js';
import type { Export, ExportTable } from '../exports/export-table.js';
import { squash } from '../exports/squash.js';
import { NFS_PROGRAM, NFS_V3, NFS3_MAXIO, NFSPROC3, NFSPROC3_NAMES } from './constants.js';
import { observeReply, type Nfs3Observer } from './observer.js';
import { FAILURE_ATTR_SLOTS, makeContext, type Nfs3Context, type Nfs3Options } from './context.js';
import { readFh } from './structs/fh.js';
import { null3 } from './procedures/null.js';
import { getattr3 } from './procedures/getattr.js';
import { setattr3 } from './procedures/setattr.js';
import { lookup3 } from './procedures/lookup.js';
import { access3 } from './procedures/access.js';
import { readlink3 } from './procedures/readlink.js';
import { read3 } from './procedures/read.js';
import { write3 } from './procedures/write.js';
import { create3 } from './procedures/create.js';
import { mkdir3 } from './procedures/mkdir.js';
import { symlink3 } from './procedures/symlink.js';
import { mknod3 } from './procedures/mknod.js';
import { remove3 } from './procedures/remove.js';
import { rmdir3 } from './procedures/rmdir.js';
import { rename3 } from './procedures/rename.js';
import { link3 } from './procedures/link.js';
import { readdir3 } from './procedures/readdir.js';
import { readdirplus3 } from './procedures/readdirplus.js';
import { fsstat3 } from './procedures/fsstat.js';
import { fsinfo3 } from './procedures/fsinfo.js';
import { pathconf3 } from './procedures/pathconf.js';
import { commit3 } from './procedures/commit.js';

export type { Nfs3Options } from './context.js';

type Handler = (ctx: Nfs3Context, call: RpcCall, reply: XdrWriter) => void | Promise<void>;

/** Handlers by procedure number, exactly RFC 1813's numbering; NULL (0) needs no export. */
const NFS3_HANDLERS: readonly (Handler | undefined)[] = [
  undefined, getattr3, setattr3, lookup3, access3, readlink3, read3, write3,
  create3, mkdir3, symlink3, mknod3, remove3, rmdir3, rename3, link3,
  readdir3, readdirplus3, fsstat3, fsinfo3, pathconf3, commit3,
];

export const NFS3_NON_IDEMPOTENT: ReadonlySet<number> = new Set<number>([
  NFSPROC3.SETATTR, NFSPROC3.CREATE, NFSPROC3.MKDIR, NFSPROC3.SYMLINK, NFSPROC3.MKNOD,
  NFSPROC3.REMOVE, NFSPROC3.RMDIR, NFSPROC3.RENAME, NFSPROC3.LINK,
]);

/**
 * `observer`, when given, is told of every answered call (src/nfs3/observer.ts); without one
 * the procedures run with nothing in between.
 */
export function nfs3Program(exports: ExportTable | (() => ExportTable), opts: Nfs3Options = {}, observer?: Nfs3Observer): ProgramVersion {
  const table = typeof exports === 'function' ? exports : () => exports;
  // One READ buffer pool for every union; two contexts per union, for `rw` and `ro` clients.
  const pool = opts.readBuffers ?? new BufferPool({ maxSize: opts.maxIo ?? NFS3_MAXIO, maxFreeBytes: opts.readBufferBytes ?? 16 * 1024 * 1024 });
  const contexts = new WeakMap<UnionFs, { rw: Nfs3Context; ro: Nfs3Context }>();
  const contextOf = (fs: UnionFs, exp: Export, rw: boolean): Nfs3Context => {
    let c = contexts.get(fs);
    if (c === undefined) contexts.set(fs, c = { rw: makeContext(fs, exp.path, opts, pool, false), ro: makeContext(fs, exp.path, opts, pool, true) });
    return rw ? c.rw : c.ro;
  };
  // One closure per procedure per program, made once here: none per call.
  const procedures: Procedure[] = NFS3_HANDLERS.map((h, proc): Procedure => {
    if (h === undefined) return null3;
    const handle = observer === undefined ? h : observed(h, proc, observer);
    return (call, reply) => {
      const r = call.args;
      const at = r.offset;
      // An undecodable handle throws XdrError here: GARBAGE_ARGS, as from the procedure.
      const fh = readFh(r);
      r.seek(at);
      let exp: Export | undefined;
      let o: ClientOptions;
      try {
        const t = table();
        exp = t.route(fh);
        o = t.admit(exp, call.peer);
      } catch (err) {
        const status = toNfsstat3(err, 'nfs3 admission');
        refuse(reply, proc, status);
        observer?.answered(exp?.path, call.peer.address, proc, status, 0, 0);
        return;
      }
      const cred = squash(o, call.cred);
      const as = cred === call.cred ? call : { ...call, cred };
      const fs = exp.unions.peek(call.peer.address);
      if (fs !== undefined) return handle(contextOf(fs, exp, o.rw), as, reply);
      // A per-client union not open yet (its client's first call since the server started).
      const e = exp;
      return e.unions.open(call.peer.address).then(
        (opened) => handle(contextOf(opened, e, o.rw), as, reply),
        (err: unknown) => {
          const status = toNfsstat3(err, 'nfs3 union open', { exportPath: e.path }, call);
          refuse(reply, proc, status);
          observer?.answered(e.path, call.peer.address, proc, status, 0, 0);
        },
      );
    };
  });
  return {
    prog: NFS_PROGRAM,
    vers: NFS_V3,
    name: 'nfs',
    procedures,
    nonIdempotent: NFS3_NON_IDEMPOTENT,
    procedureNames: NFSPROC3_NAMES,
  };
}

/** A handler that reports its answer to `observer` once the reply is encoded. */
function observed(h: Handler, proc: number, observer: Nfs3Observer): Handler {
  return (ctx, call, reply) => {
    const at = reply.length;
    const done = (): void => observeReply(observer, ctx.exportPath, call.peer.address, proc, reply, at);
    const r = h(ctx, call, reply);
    if (r === undefined) return done();
    return r.then(done);
  };
}

/** A procedure's failure body with no attributes: the status and its empty attribute slots. */
function refuse(reply: XdrWriter, proc: number, status: number): void {
  reply.uint32(status);
  for (let i = 0; i < FAILURE_ATTR_SLOTS[proc]!; i++) reply.uint32(0);
}
