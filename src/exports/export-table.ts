/**
 * The exports a server serves, and the question every call asks before any union sees it:
 * which export does this handle (or mount path) name, and what may this client do there?
 *
 * Rule: a handle names its export by the fsid in its header (src/vfs/identity.ts); a handle of
 * an fsid nobody serves is NFS3ERR_STALE, never an object of another export. The caller's
 * address must match one of the export's client rules (client-rules.ts), on every call, not
 * only at MNT: handles can be replayed from any host. No rule: EACCES. A `secure` rule and a
 * source port from 1024 up: EPERM (knfsd's answer). The rule then decides read-only and
 * squashing (squash.ts).
 * Example: exports /a (fsid 1, '10.0.0.0/24(rw)') and /b (fsid 2, '*(ro)'); a handle with
 * fsid 2 from 10.0.9.9 acts read-only with root squashed; one with fsid 1 from there is EACCES.
 * Races: none; the table is immutable once built (a reload builds another), and the
 * per-address cache only memoises a pure function of the address.
 */
import type { Credential, Peer } from '../rpc/types.js';
import { FsError } from '../errors/fs-error.js';
import { child } from '../log.js';
import { handleFsid } from '../vfs/identity.js';
import { FileType } from '../vfs/types.js';
import { matchClient, type ClientOptions, type ClientRule } from './client-rules.js';
import { squash } from './squash.js';
import type { UnionSource } from './union-source.js';

const log = child('exports');

/** Addresses whose rule each export remembers before it starts over. */
const ADMISSION_CACHE_MAX = 4096;

export interface Export {
  /** The path clients mount, normalized ('/union'; no trailing slash). */
  readonly path: string;
  readonly fsid: number;
  /** The union each client sees (one for all, or one per client). */
  readonly unions: UnionSource;
  /** In precedence order (client-rules.ts byPrecedence). */
  readonly clients: readonly ClientRule[];
}

export interface MountedExport {
  readonly exp: Export;
  readonly fh: Buffer;
}

export class ExportTable {
  private readonly byFsid = new Map<number, Export>();
  /** Per export: address -> the options of the rule that admits it, or null for none. */
  private readonly admissions = new Map<Export, Map<string, ClientOptions | null>>();
  /** Per export: addresses already logged as calling from an unprivileged port. */
  private readonly insecureSeen = new Map<Export, Set<string>>();

  constructor(readonly exports: readonly Export[]) {
    for (const e of exports) {
      if (this.byFsid.has(e.fsid)) throw new Error(`exports ${this.byFsid.get(e.fsid)?.path} and ${e.path} share fsid ${e.fsid}`);
      this.byFsid.set(e.fsid, e);
      this.admissions.set(e, new Map());
      this.insecureSeen.set(e, new Set());
    }
  }

  /**
   * The export a handle belongs to. With one export every handle goes to it and its union
   * judges the handle (BADHANDLE, STALE); with several, the handle's fsid decides.
   */
  route(fh: Buffer): Export {
    if (this.exports.length === 1) return this.exports[0]!;
    const fsid = handleFsid(fh);
    if (fsid === undefined) throw new FsError('EBADHANDLE');
    const e = this.byFsid.get(fsid);
    if (e === undefined) throw new FsError('ESTALE', 'handle of no export served');
    return e;
  }

  /** The options of the rule that admits `peer` to `exp`; throws EACCES or EPERM. */
  admit(exp: Export, peer: Peer): ClientOptions {
    const cache = this.admissions.get(exp)!;
    let o = cache.get(peer.address);
    if (o === undefined) {
      o = matchClient(exp.clients, peer.address)?.options ?? null;
      if (cache.size >= ADMISSION_CACHE_MAX) cache.clear();
      cache.set(peer.address, o);
      if (o === null) log.warn(`refused ${peer.address}: no client rule of ${exp.path} admits it (logged once per address)`, { client: peer.address, export: exp.path });
    }
    if (o === null) throw new FsError('EACCES', `${peer.address} is not a client of ${exp.path}`);
    if (o.secure && peer.port >= 1024) {
      const seen = this.insecureSeen.get(exp)!;
      if (!seen.has(peer.address)) {
        if (seen.size >= ADMISSION_CACHE_MAX) seen.clear();
        seen.add(peer.address);
        log.warn(`refused ${peer.address}:${peer.port}: ${exp.path} is 'secure' and the port is not below 1024 ` +
          `(give the client's rule 'insecure' to admit it; logged once per address)`, { client: peer.address, export: exp.path });
      }
      throw new FsError('EPERM', 'insecure source port');
    }
    return o;
  }

  /**
   * MOUNT's MNT: the handle of the directory `dir` names, the export itself or a directory
   * below it (the longest export path that is `dir` or its ancestor wins), looked up with the
   * caller's squashed credential. ENOENT when no export holds `dir`.
   */
  async mnt(dir: Buffer, peer: Peer, cred: Credential): Promise<MountedExport> {
    let best: Export | undefined;
    let components: Buffer[] | undefined;
    for (const e of this.exports) {
      const c = below(Buffer.from(e.path), dir);
      if (c !== undefined && (best === undefined || e.path.length > best.path.length)) {
        best = e;
        components = c;
      }
    }
    if (best === undefined || components === undefined) throw new FsError('ENOENT', 'no export holds that path');
    const o = this.admit(best, peer);
    const as = squash(o, cred);
    const fs = await best.unions.open(peer.address);
    let id = fs.root;
    for (const c of components) id = fs.lookup(id, c, as);
    if (fs.getattr(id).type !== FileType.DIR) throw new FsError('ENOTDIR');
    return { exp: best, fh: fs.handleOf(id) };
  }

  /** For MOUNT's EXPORT (showmount -e): every export with the client specifications of its rules. */
  list(): { path: string; groups: string[] }[] {
    return this.exports.map((e) => ({ path: e.path, groups: e.clients.map((r) => r.spec) }));
  }
}

/**
 * The path components of `dir` below the export path, or undefined when `dir` is neither the
 * export nor inside it. '.' and '..' components are refused: a mount path never climbs.
 */
function below(exportPath: Buffer, dir: Buffer): Buffer[] | undefined {
  if (dir.equals(exportPath)) return [];
  const prefix = exportPath.length === 1 ? 0 : exportPath.length;
  if (dir.length <= prefix || dir[prefix] !== 0x2f || !dir.subarray(0, prefix).equals(exportPath.subarray(0, prefix))) return undefined;
  const parts: Buffer[] = [];
  let start = prefix + 1;
  for (let i = start; i <= dir.length; i++) {
    if (i < dir.length && dir[i] !== 0x2f) continue;
    if (i > start) parts.push(dir.subarray(start, i));
    start = i + 1;
  }
  return parts.some((p) => p.equals(DOT) || p.equals(DOTDOT)) ? undefined : parts;
}

const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');
