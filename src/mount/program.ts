/**
 * MOUNT v3 (RFC 1813 Appendix I): hands out the file handle of the export or of a directory
 * below it (knfsd and ganesha allow that, and libnfs relies on it: `nfs-cat nfs://h/union/d/f`
 * mounts /union/d), and keeps the advisory mount list that DUMP reports (bounded: clients that never UMNT must not grow it
 * forever; the oldest entry goes first).
 *
 *   const MNTPATHLEN = 1024;  const MNTNAMLEN = 255;  const FHSIZE3 = 64;
 *   enum mountstat3 { MNT3_OK = 0, MNT3ERR_PERM = 1, MNT3ERR_NOENT = 2, ... };
 *   program MOUNT_PROGRAM { version MOUNT_V3 {
 *     void      MOUNTPROC3_NULL(void)    = 0;
 *     mountres3 MOUNTPROC3_MNT(dirpath)  = 1;   mountres3_ok { fhandle3 fhandle; int auth_flavors<>; }
 *     mountlist MOUNTPROC3_DUMP(void)    = 2;   mountbody { name ml_hostname; dirpath ml_directory; mountlist ml_next; }
 *     void      MOUNTPROC3_UMNT(dirpath) = 3;
 *     void      MOUNTPROC3_UMNTALL(void) = 4;
 *     exports   MOUNTPROC3_EXPORT(void)  = 5;   exportnode { dirpath ex_dir; groups ex_groups; exports ex_next; }
 *   } = 3; } = 100005;
 */
import type { XdrWriter } from '@nfs-ts/xdr';
import { child } from '../log.js';
import { auth_flavor } from '../rpc/message.js';
import type { ProgramVersion, RpcCall } from '../rpc/types.js';
import { toNfsstat3 } from '../errors/nfsstat.js';

const log = child('mount');

export const MOUNT_PROGRAM = 100005;
export const MOUNT_V3 = 3;
export const MNTPATHLEN = 1024;
export const MNTNAMLEN = 255;
export const FHSIZE3 = 64;

export const mountstat3 = {
  MNT3_OK: 0,
  MNT3ERR_PERM: 1,
  MNT3ERR_NOENT: 2,
  MNT3ERR_IO: 5,
  MNT3ERR_ACCES: 13,
  MNT3ERR_NOTDIR: 20,
  MNT3ERR_INVAL: 22,
  MNT3ERR_NAMETOOLONG: 63,
  MNT3ERR_NOTSUPP: 10004,
  MNT3ERR_SERVERFAULT: 10006,
} as const;

export const MOUNTPROC3 = { NULL: 0, MNT: 1, DUMP: 2, UMNT: 3, UMNTALL: 4, EXPORT: 5 } as const;

/** What MOUNT asks of the exports (src/exports/export-table.ts). */
export interface MountExports {
  /**
   * The handle (at most 64 bytes) of the directory `dir` (normalized: no trailing slash) for
   * this caller: an export or a directory below one. Throws errno errors: ENOENT (no export
   * holds it), EACCES (no client rule admits the caller), EPERM (unprivileged source port),
   * ENOTDIR, ...
   */
  mnt(dir: Buffer, call: RpcCall): Buffer | Promise<Buffer>;
  /** EXPORT's list: each export path with the client specifications that may mount it. */
  list(): readonly { readonly path: string; readonly groups: readonly string[] }[];
}

export interface MountOptions {
  readonly exports: MountExports;
  /** Flavors advertised in the MNT reply; default [AUTH_SYS, AUTH_NONE]. */
  authFlavors?: readonly number[];
  /** Entries kept for DUMP; default 1024. */
  maxMounts?: number;
}

export function createMountProgram(o: MountOptions): ProgramVersion {
  const authFlavors = o.authFlavors ?? [auth_flavor.AUTH_SYS, auth_flavor.AUTH_NONE];
  const maxMounts = o.maxMounts ?? 1024;
  /** key host + '\0' + dir -> entry, oldest first. */
  const mounts = new Map<string, { host: string; dir: Buffer }>();

  const mnt = async (call: RpcCall, reply: XdrWriter): Promise<void> => {
    const dir = normalize(call.args.string(MNTPATHLEN));
    call.args.done();
    let fh: Buffer;
    try {
      fh = await o.exports.mnt(dir, call);
    } catch (err) {
      if (log.isDebugEnabled()) log.debug(`MNT ${dir.toString()} by ${call.peer.address}: ${String(err)}`);
      reply.enum(toMountstat3(err));
      return;
    }
    if (fh.length > FHSIZE3) throw new Error(`handle of ${fh.length} bytes exceeds FHSIZE3`);
    const host = call.peer.address;
    const key = `${host}\0${dir.toString('latin1')}`;
    mounts.delete(key);
    mounts.set(key, { host, dir: Buffer.from(dir) });
    while (mounts.size > maxMounts) mounts.delete(mounts.keys().next().value as string);
    log.info(`MNT ${dir.toString()} by ${host}:${call.peer.port}`, { client: host, export: dir.toString() });
    reply.enum(mountstat3.MNT3_OK).opaque(fh).uint32(authFlavors.length);
    for (const f of authFlavors) reply.int32(f);
  };

  const dump = (call: RpcCall, reply: XdrWriter): void => {
    call.args.done();
    for (const m of mounts.values()) reply.bool(true).string(m.host.slice(0, MNTNAMLEN)).opaque(m.dir);
    reply.bool(false);
  };

  const umnt = (call: RpcCall): void => {
    const dir = normalize(call.args.string(MNTPATHLEN));
    call.args.done();
    // Logged only for a mount DUMP knew of: a client cannot fill the log with unmounts.
    if (mounts.delete(`${call.peer.address}\0${dir.toString('latin1')}`)) {
      log.info(`UMNT ${dir.toString()} by ${call.peer.address}:${call.peer.port}`, { client: call.peer.address, export: dir.toString() });
    }
  };

  const umntall = (call: RpcCall): void => {
    call.args.done();
    for (const [k, m] of mounts) {
      if (m.host !== call.peer.address) continue;
      mounts.delete(k);
      log.info(`UMNTALL: ${m.dir.toString()} unmounted by ${m.host}:${call.peer.port}`, { client: m.host, export: m.dir.toString() });
    }
  };

  const exports = (call: RpcCall, reply: XdrWriter): void => {
    call.args.done();
    // ex_groups names the clients of each export's rules; an empty list means every host.
    for (const e of o.exports.list()) {
      reply.bool(true).string(Buffer.from(e.path));
      for (const g of e.groups) reply.bool(true).string(Buffer.from(g.slice(0, MNTNAMLEN)));
      reply.bool(false);
    }
    reply.bool(false);
  };

  return {
    prog: MOUNT_PROGRAM,
    vers: MOUNT_V3,
    name: 'mount',
    procedures: [(call) => call.args.done(), mnt, dump, umnt, umntall, exports],
    procedureNames: ['null', 'mnt', 'dump', 'umnt', 'umntall', 'export'],
  };
}

/** '/union/' and '/union' name the same export; an empty path is '/'. */
function normalize(path: Buffer): Buffer {
  let end = path.length;
  while (end > 1 && path[end - 1] === 0x2f) end--;
  return end === 0 ? Buffer.from('/') : path.subarray(0, end);
}

const MOUNTSTATS: ReadonlySet<number> = new Set(Object.values(mountstat3));

/** mountstat3 reuses the nfsstat3 numbers (RFC 1813 Appendix I), so the one errno table serves. */
function toMountstat3(err: unknown): number {
  const stat = toNfsstat3(err, 'mount');
  return MOUNTSTATS.has(stat) ? stat : mountstat3.MNT3ERR_SERVERFAULT;
}
