/**
 * The union: UnionFs over Layers, with identity (store.ts + identity.ts), lookup (namei.ts),
 * merged listings (dir-cache.ts over readdir.ts), permission checks (access.ts) and, for
 * writes, copy-up.ts and dir-ops.ts.
 *
 * Rule: every object a client reaches gets an id from the identity store; a node caches where
 * it lives and its attributes; every mutation made here invalidates what it changes (attrs,
 * listings, fds), so reads are served from memory without re-stat'ing layers.
 * Races: metadata work is synchronous (one event-loop turn per operation); only file data and
 * copy-ups are async, and they recompute paths from the node tree after every await.
 */
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { FsError } from '../errors/fs-error.js';
import { child } from '../log.js';
import { RateLimitedLog } from '../log-limit.js';
import {
  FileType, MAX_FILE_SIZE, StableHow,
  type Attr, type CreateHow, type Cred, type DirEntry, type DirPage, type FsStat, type NodeId,
  type SetAttr, type UnionFs,
} from './types.js';
import { Layers } from './layers.js';
import { vfsCounters, type UnionUsage } from './stats.js';
import { checkName, isMarkerName, pathBuf } from './names.js';
import type { WhiteoutFormat } from './whiteout.js';
import { lowerFacts, NO_FACTS, xattrFacts, type XattrFacts } from './xattr.js';
import { IdentityStore, keyEq, RESIDENT_RECORDS, type IdRecord, type Key } from './store/index.js';
import { handleId, MacCache, parseHandle } from './identity.js';
import { fsyncEach, INDEX_MARK, MetadataSync, volatileFs } from './metadata-sync.js';
import type { LStat } from './lstat.js';
import { findInLayers, isOpaque, isXattrWhiteout, lowerDirAt, lstatIn, lstatQuiet, relIn as relInRels, single, type DirRels, type Found } from './namei.js';
import { isWhiteoutDev } from './whiteout.js';
import { attrFsid, attrOf, typeOfMode } from './attrs.js';
import { firstAfter, HINT_UNKNOWN, listingFind, type Listing } from './readdir.js';
import { DirCache } from './dir-cache.js';
import { accessBits, check, R, X } from './access.js';
import type { Node } from './node.js';
import { FdCache } from './fd-cache.js';
import * as ops from './dir-ops.js';
import * as cu from './copy-up.js';
import { LinkIndex } from './link-index.js';

const log = child('vfs');
export const ROOT: NodeId = 1;
/** Layer walks of lookups in one directory after which its merged listing is built (find). */
const WALKS_BEFORE_LISTING = 8;
/** Layer entries read at most for a listing built for lookups (about 5 MB and 50 ms). */
const LOOKUP_LISTING_MAX = 65536;
/**
 * Live nodes kept in memory, with their attributes (about 420 heap bytes each, 55 MB at most),
 * before the oldest evictable ones are dropped (evictNodes). As many as a directory of 100,000
 * entries needs to be walked again from memory, as nfs-ganesha's metadata cache keeps
 * (Entries_HWMark 100,000): a walk that outgrows it pays a lookup and an lstat per name.
 */
const NODES_MAX = 131072;

/** What a lookup saw of the object it found (lookupNode). */
interface Seen { st?: LStat }

export interface UnionOptions {
  lowers: readonly string[];
  upper?: string;
  workdir?: string;
  /** State directory; default <workdir>/union-nfsd, else $XDG_STATE_HOME/union-nfsd/<hash>. */
  state?: string;
  whiteoutFormat: WhiteoutFormat;
  /** Each lower's format, when not whiteoutFormat (an image's layers: 'oci'). */
  lowerFormats?: readonly WhiteoutFormat[];
  /** Bound of the merged-listing cache in heap bytes (default 32 MiB, readdir.ts). */
  listingCacheBytes?: number;
  /** Optional extra bound of the merged-listing cache, in entries (default none). */
  listingCacheEntries?: number;
  /** Live nodes kept in memory (default NODES_MAX, see evictNodes). */
  nodeCacheMax?: number;
  /** Identity records kept in memory (default RESIDENT_RECORDS, store/index.ts). */
  identityCacheRecords?: number;
  /** The export's id, carried in every handle (identity.ts) and in fattr3's fsid; default 0. */
  fsid?: number;
}

/** The cache bounds of a Union (UnionOptions' names). */
export type CacheBounds = Pick<UnionOptions, 'listingCacheBytes' | 'listingCacheEntries' | 'nodeCacheMax' | 'identityCacheRecords'>;

export class Union implements UnionFs {
  readonly readOnly: boolean;
  readonly root: NodeId = ROOT;
  readonly writeVerifier: Buffer = randomBytes(8);
  readonly nodes = new Map<NodeId, Node>();
  /** Merged listings of the directories (dir-cache.ts). */
  readonly dirs: DirCache;
  readonly fds = new FdCache(256);
  /** Per layer (upper first): overlay xattr marks; the lowers' shared with other unions (xattr.ts lowerFacts). */
  facts: XattrFacts[] = [];
  private releaseLowers: () => void = () => undefined;
  /** <workdir>/union-nfsd/tmp: copy-up temporaries, whiteout staging. */
  tmpDir = '';
  /** Copied-up lower hard links (link-index.ts), in <workdir>/union-nfsd/index. */
  links: LinkIndex;
  private tmpSeq = 0;
  /** Copy-ups in flight, by node id: one copy per object. */
  readonly copyUps = new Map<NodeId, Promise<void>>();
  /** Lookups that walked the layers, per directory without a cached listing (see lookupNode). */
  private walks = new Map<NodeId, number>();
  /** MACs of the handles issued or checked, as many as the store keeps records in memory. */
  private readonly macs: MacCache;
  /** What modifying calls changed in the upper layer, committed before their replies. */
  readonly meta: MetadataSync;
  /** Nodes that mutations in flight hold across awaits (hold/release): never evicted. */
  private readonly held = new Map<NodeId, number>();
  /** The root's lower layers: where an absolute redirect is looked up (namei.ts). */
  private rootLowers: readonly number[] = [];
  /** Has a node with a redirect (Node.below, Node.deeper) been met? Until then every layer has the same paths. */
  private redirected = false;

  private readonly nodesMax: number;
  /** The export id in this union's handles. */
  readonly fsid: number;
  private readonly attrFsid: number;

  constructor(readonly layers: Layers, readonly store: IdentityStore, readonly whiteoutFormat: WhiteoutFormat, readonly workdir: string | undefined, bounds: CacheBounds & Pick<UnionOptions, 'fsid'> = {}) {
    this.readOnly = !layers.hasUpper;
    this.fsid = bounds.fsid ?? 0;
    this.attrFsid = attrFsid(this.fsid);
    this.dirs = new DirCache(this, { bytes: bounds.listingCacheBytes, entries: bounds.listingCacheEntries });
    this.nodesMax = bounds.nodeCacheMax ?? NODES_MAX;
    this.macs = new MacCache(bounds.identityCacheRecords ?? RESIDENT_RECORDS);
    const skip = { files: !layers.upper.present || volatileFs(Buffer.from(layers.upper.root, 'latin1')), log: volatileFs(store.dir) };
    this.meta = new MetadataSync((m) => this.markPath(m), () => this.store.sync(), fsyncEach, skip);
    this.links = this.linkIndex('');
  }

  /** Temporaries and the hard-link index in the workdir (copy-up.ts prepareWorkdir). */
  useWorkdir(w: { tmp: string; index: string }): void {
    this.tmpDir = w.tmp;
    this.links = this.linkIndex(w.index);
  }

  private linkIndex(dir: string): LinkIndex {
    return new LinkIndex(dir, { tmpName: () => this.tmpName(), changed: () => this.meta.mark(INDEX_MARK), gone: (n) => this.fds.drop(n.id) });
  }

  async init(): Promise<void> {
    const roots = this.layers.list.slice(1).map((l) => l.root);
    const facts = roots.map((r) => lowerFacts.acquire(r));
    this.dirs.open(roots);
    this.releaseLowers = () => {
      for (const f of facts) f.release();
      this.dirs.close();
    };
    const upper = this.layers.upper;
    this.facts = await Promise.all([
      upper.present ? xattrFacts(upper.root, false) : Promise.resolve(NO_FACTS),
      ...facts.map((f) => f.value),
    ]);
    const stack: number[] = [];
    for (const l of this.layers.list) {
      if (!l.present) continue;
      stack.push(l.index);
      if (isOpaque(this.layers, this.facts, l.index, '')) break;
    }
    this.rootLowers = stack.filter((i) => i !== 0);
    this.nodes.set(ROOT, { id: ROOT, type: FileType.DIR, parent: ROOT, name: '', layer: stack[0]!, stack, attr: null, children: new Map() });
  }

  // ---- paths and nodes ------------------------------------------------------------------

  /** The live node of id, rebuilt from the identity store if it was evicted (ESTALE: gone). */
  node(id: NodeId): Node {
    const n = this.nodes.get(id);
    if (n !== undefined) {
      vfsCounters.nodeHits++;
      return n;
    }
    vfsCounters.nodeMisses++;
    return this.resolveId(id, 0);
  }

  dirNode(id: NodeId): Node {
    const n = this.node(id);
    if (n.type !== FileType.DIR) throw new FsError('ENOTDIR');
    return n;
  }

  /**
   * Union-relative path ('' for root, '/a/b'). A node's recorded parent need not be live: after
   * a restart, a hard link met first under another name still has its primary name's parent
   * only in the store, so it is resolved from there like a handle.
   */
  rel(n: Node): string {
    let s = '';
    let guard = 0;
    while (n.id !== ROOT) {
      s = '/' + n.name + s;
      n = this.nodes.get(n.parent) ?? this.resolveId(n.parent, 0);
      if (++guard > 4096) throw new FsError('ELOOP');
    }
    return s;
  }

  /**
   * The node's paths in the upper layer and in the lower ones: rel(n), and below a redirected
   * directory the path its lower part has (Node.below: what a redirect written now records),
   * and in each lower layer of its stack (Node.deeper: below a lower layer's redirect), the
   * nearest ancestor's record deciding, as the kernel's lookup carries them down.
   */
  rels(n: Node): DirRels {
    if (!this.redirected) {
      const r = this.rel(n);
      return { upper: r, lower: r };
    }
    const lowers = n.stack.filter((i) => i !== 0);
    let byLayer: Map<number, string> | undefined;
    let s = '';
    let lower: string | undefined;
    let guard = 0;
    for (let a = n; a.id !== ROOT;) {
      if (a.deeper !== undefined && lower === undefined) {
        for (const i of lowers) {
          const p = a.deeper.get(i);
          if (p !== undefined && !byLayer?.has(i)) (byLayer ??= new Map()).set(i, p + s);
        }
      }
      if (lower === undefined && a.below !== undefined) lower = a.below + s;
      s = '/' + a.name + s;
      a = this.nodes.get(a.parent) ?? this.resolveId(a.parent, 0);
      if (++guard > 4096) throw new FsError('ELOOP');
    }
    lower ??= s;
    if (byLayer !== undefined) for (const [i, p] of byLayer) if (p === lower) byLayer.delete(i);
    return byLayer === undefined || byLayer.size === 0 ? { upper: s, lower } : { upper: s, lower, byLayer };
  }

  /** The node's path in layer i. */
  relIn(n: Node, i: number): string {
    return i === 0 ? this.rel(n) : relInRels(this.rels(n), i);
  }

  /**
   * n's upper copy now redirects to `below` (dir-ops.ts rename): its lower part is where a
   * lookup after a restart finds it, at that path from the root's lower layers (namei.ts).
   */
  redirect(n: Node, below: string): void {
    n.below = below;
    this.redirected = true;
    const found = lowerDirAt(this.layers, this.facts, this.rootLowers, below);
    if (found.at.byLayer !== undefined) n.deeper = found.at.byLayer;
    else delete n.deeper;
    const stack = [0, ...found.stack];
    if (stack.join() !== n.stack.join()) {
      n.stack = stack;
      this.dirs.forget(n.id);
    }
  }

  /** Buffer path of the node's current copy. */
  path(n: Node): Buffer {
    return n.index ?? this.layers.p(n.layer, this.relIn(n, n.layer));
  }

  upperPath(rel: string): Buffer {
    return this.layers.p(0, rel);
  }

  tmpName(): string {
    return `${this.tmpDir}/#${process.pid.toString(36)}.${(this.tmpSeq++).toString(36)}`;
  }

  invalidate(n: Node): void {
    n.attr = null;
  }

  // ---- identity -------------------------------------------------------------------------

  handleOf(id: NodeId): Buffer {
    return this.macs.handle(this.store.hmacKey, id, this.fsid);
  }

  resolve(handle: Buffer): NodeId {
    const id = handleId(handle, this.fsid);
    // A handle as we issued it this run: no HMAC (anything else is checked in full).
    const issued = this.macs.issued(id, handle);
    if (!issued) parseHandle(this.store.hmacKey, handle, this.fsid);
    if (!this.nodes.has(id)) {
      try {
        this.resolveId(id, 0);
      } finally {
        this.store.flush();
      }
    }
    if (!issued) this.macs.remember(id, handle);
    return id;
  }

  private resolveId(id: NodeId, depth: number): Node {
    const live = this.nodes.get(id);
    if (live !== undefined) return live;
    const rec = this.store.get(id);
    if (rec === undefined || depth > 4096) throw new FsError('ESTALE');
    for (const ref of [...rec.names]) {
      let parent: Node;
      try {
        parent = this.resolveId(ref.parent, depth + 1);
      } catch {
        continue;
      }
      if (parent.type !== FileType.DIR) continue;
      const n = this.lookupNode(parent, ref.name);
      if (n !== null && n.id === id) return n;
    }
    throw new FsError('ESTALE');
  }

  /**
   * The live child `name` of `dir`, giving it an id (or recognising the one it had) on first
   * sight. null when the name does not exist in the union. `seen.st` gets the lstat the lookup
   * made of the node's current copy, if it made one: callers build attributes from it instead
   * of stat-ing again.
   */
  lookupNode(dir: Node, name: string, seen?: Seen): Node | null {
    if (seen !== undefined) seen.st = undefined;
    const cid = dir.children?.get(name);
    if (cid !== undefined) {
      const n = this.nodes.get(cid);
      if (n !== undefined) return n;
    }
    if (isMarkerName(name) && dir.stack.every((i) => this.layers.markers(i))) return null;
    let found = this.find(dir, name);
    if (found === null) {
      const stale = this.store.idByName(dir.id, name);
      if (stale !== undefined) this.forgetName(stale, dir.id, name);
      return null;
    }
    let origin: Key = { layer: found.layer, dev: found.st.dev, ino: found.st.ino };
    // only an inode with several links can have a name we have not met (idByKey below)
    const linked = found.st.nlink > 1n;
    const indexed = this.links.find(found);
    if (indexed !== null) found = indexed;
    const key: Key = indexed === null ? origin : { layer: found.layer, dev: found.st.dev, ino: found.st.ino };
    if (indexed === null) origin = key;
    let id: NodeId | undefined;
    const byName = this.store.idByName(dir.id, name);
    if (byName !== undefined) {
      const rec = this.store.get(byName)!;
      if (rec.type === found.type && (keyEq(rec.key, key) || keyEq(rec.origin, key))) {
        id = byName;
        if (!keyEq(rec.key, key) && !this.nodes.has(id)) {
          const primary = rec.names[0]!;
          const other = primary.parent !== dir.id || primary.name !== name ? this.viaPrimary(id, primary.parent, primary.name) : null;
          if (other !== null) {
            // A lower hard link of an object copied up under its primary name: same object.
            (dir.children ??= new Map()).set(name, id);
            return other;
          }
          // A copy-up recorded before its rename landed (crash): the origin is still current.
          this.store.put({ ...this.store.get(id)!, key });
        }
      } else {
        this.forgetName(byName, dir.id, name);
      }
    }
    if (id === undefined && found.type !== FileType.DIR && linked) {
      const alias = this.store.idByKey(key);
      const rec = alias === undefined ? undefined : this.store.get(alias);
      if (rec !== undefined && rec.type === found.type) {
        // Another name of the same inode (a hard link): one object, one id.
        id = rec.id;
        this.store.put({ ...rec, names: [...rec.names, { parent: dir.id, name }] });
      }
    }
    if (id === undefined) {
      id = this.store.alloc();
      this.store.put({ id, type: found.type, key, origin, names: [{ parent: dir.id, name }] });
    }
    (dir.children ??= new Map()).set(name, id);
    let n = this.nodes.get(id);
    if (n === undefined) {
      n = this.makeNode(id, dir.id, name, found);
      this.nodes.set(id, n);
      if (this.nodes.size > this.nodesMax) this.evictNodes();
    }
    // found.st is the node's current copy unless the node lives elsewhere (index, other layer)
    if (seen !== undefined && n.index === undefined && n.layer === found.layer) seen.st = found.st;
    return n;
  }

  /**
   * Where `name` is in the union (namei.ts findInLayers), answered from the directory's cached
   * listing when there is one: a name it lacks does not exist (no syscall), a listed
   * non-directory is one lstat in the layer it was listed from. A directory that needs layer
   * walks again and again gets its listing built after WALKS_BEFORE_LISTING of them.
   */
  private find(dir: Node, name: string): Found | null {
    const l = this.dirs.peek(dir.id);
    if (l !== undefined) {
      const i = listingFind(l, name);
      if (i < 0) return null;
      const h = l.hints?.[i] ?? HINT_UNKNOWN;
      if (h !== HINT_UNKNOWN && (h & 1) === 0) {
        const layer = h >> 1;
        const rel = this.relIn(dir, layer) + '/' + name;
        const st = lstatIn(this.layers, layer, rel);
        if (st !== undefined && !st.isDirectory() && !isWhiteoutDev(st) && !isXattrWhiteout(this.facts, layer, this.layers.s(layer, rel), st)) {
          return { type: typeOfMode(Number(st.mode)), layer, st, stack: single(layer) };
        }
      }
      return findInLayers(this.layers, this.facts, dir.stack, this.rels(dir), name, this.rootLowers);
    }
    const w = (this.walks.get(dir.id) ?? 0) + 1;
    let next = w;
    if (w === WALKS_BEFORE_LISTING) {
      // bounded: lookups alone never make us read (and pin) a huge directory
      let built: Listing | null = null;
      try {
        built = this.dirs.getBounded(dir, LOOKUP_LISTING_MAX);
      } catch {
        // the listing only saves syscalls: a layer that cannot be listed now (EMFILE) leaves
        // this lookup to the layer walk, and the listing to be tried again later
        next = 0;
      }
      if (built !== null) {
        this.walks.delete(dir.id);
        return this.find(dir, name);
      }
    }
    if (this.walks.size >= 4096) this.walks.clear();
    this.walks.set(dir.id, next);
    return findInLayers(this.layers, this.facts, dir.stack, this.rels(dir), name, this.rootLowers);
  }

  private viaPrimary(id: NodeId, parent: NodeId, name: string): Node | null {
    try {
      const p = this.resolveId(parent, 0);
      if (p.type !== FileType.DIR) return null;
      const n = this.lookupNode(p, name);
      return n !== null && n.id === id ? n : null;
    } catch {
      return null;
    }
  }

  makeNode(id: NodeId, parent: NodeId, name: string, found: Found): Node {
    const rec = this.store.get(id);
    const primary = rec?.names[0];
    const n: Node = {
      id, type: found.type,
      parent: primary?.parent ?? parent, name: primary?.name ?? name,
      layer: found.layer, stack: found.stack,
      attr: null, children: found.type === FileType.DIR ? new Map() : null,
    };
    if (found.below !== undefined) n.below = found.below;
    if (found.paths !== undefined) n.deeper = found.paths;
    if (n.below !== undefined || n.deeper !== undefined) this.redirected = true;
    // A copied-up lower hard link (found by any of its names): it lives at its index entry.
    if (found.type !== FileType.DIR && found.layer === 0 && rec !== undefined) {
      const e = this.links.entryOf(rec.origin, found.st);
      if (e !== undefined) {
        n.index = e.index;
        n.nlinkOff = e.nlinkOff;
      }
    }
    return n;
  }

  /** Drop one name of an id; the id dies with its last name. */
  forgetName(id: NodeId, parent: NodeId, name: string): void {
    const rec = this.store.get(id);
    const p = this.nodes.get(parent);
    if (p?.children?.get(name) === id) p.children.delete(name);
    if (rec === undefined) return;
    const names = rec.names.filter((r) => !(r.parent === parent && r.name === name));
    if (names.length === 0) {
      this.store.del(id);
      this.dropNode(id);
    } else {
      this.store.put({ ...rec, names });
      const n = this.nodes.get(id);
      if (n !== undefined && n.parent === parent && n.name === name) {
        n.parent = names[0]!.parent;
        n.name = names[0]!.name;
      }
    }
  }

  dropNode(id: NodeId): void {
    const n = this.nodes.get(id);
    if (n === undefined) return;
    this.nodes.delete(id);
    this.fds.drop(id);
    this.dirs.forget(id);
    if (n.children) for (const c of n.children.values()) if (this.nodes.get(c)?.parent === id) this.dropNode(c);
  }

  /**
   * Keep at most nodesMax nodes: drop the oldest plain non-directories (nodes are a cache of
   * the identity store and the layers; node() and resolve() rebuild an evicted one on demand).
   * Directories stay (children name their parents by id, and there are few of them); so do
   * indexed hard links (their link-count offset), objects being copied up and nodes that
   * mutations in flight hold (hold).
   */
  private evictNodes(): void {
    if (this.nodes.size <= this.nodesMax) return;
    let excess = this.nodes.size - this.nodesMax + (this.nodesMax >> 3);
    for (const n of this.nodes.values()) {
      if (excess <= 0) break;
      if (n.type === FileType.DIR || n.index !== undefined || this.copyUps.has(n.id) || this.held.has(n.id)) continue;
      this.nodes.delete(n.id);
      const p = this.nodes.get(n.parent);
      if (p?.children?.get(n.name) === n.id) p.children.delete(n.name);
      excess--;
    }
  }

  record(id: NodeId): IdRecord | undefined {
    return this.store.get(id);
  }

  // ---- read side ------------------------------------------------------------------------

  getattr(id: NodeId): Attr {
    const n = this.node(id);
    return n.attr ?? this.statNode(n);
  }

  statNode(n: Node): Attr {
    n.attr = this.statUncached(n);
    return n.attr;
  }

  statUncached(n: Node): Attr {
    const st = n.index !== undefined ? lstatQuiet(n.index) : lstatIn(this.layers, n.layer, this.relIn(n, n.layer));
    if (st === undefined) throw new FsError('ESTALE', 'backing object vanished');
    return this.attrFrom(n, st);
  }

  /** Attributes of node n from an lstat of its current copy. */
  attrFrom(n: Node, st: LStat): Attr {
    const a = attrOf(st, n.id, n.type === FileType.DIR && n.stack.length > 1, this.attrFsid);
    return n.index === undefined ? a : { ...a, nlink: Math.max(0, a.nlink + (n.nlinkOff ?? 0)) };
  }

  getattrFresh(n: Node): Attr {
    n.attr = null;
    return this.statNode(n);
  }

  lookup(dir: NodeId, name: Buffer, cred: Cred): NodeId {
    const d = this.dirNode(dir);
    check(this.getattr(dir), cred, X);
    const s = checkName(name);
    try {
      const n = this.childWithAttr(d, s);
      if (n === null) throw new FsError('ENOENT');
      return n.id;
    } finally {
      this.store.flush();
    }
  }

  /** lookup without a permission check (internal). */
  child(dir: Node, name: string): Node | null {
    return this.lookupNode(dir, name);
  }

  /**
   * child, with the node's attributes kept from the stat its lookup made (LOOKUP and the
   * calls that make an object answer with its attributes).
   */
  childWithAttr(dir: Node, name: string): Node | null {
    const seen: Seen = {};
    const n = this.lookupNode(dir, name, seen);
    if (n !== null && n.attr === null && seen.st !== undefined) n.attr = this.attrFrom(n, seen.st);
    return n;
  }

  access(id: NodeId, mask: number, cred: Cred): number {
    return accessBits(this.getattr(id), cred, mask, this.readOnly);
  }

  readlink(id: NodeId): Buffer {
    const n = this.node(id);
    if (n.type !== FileType.LNK) throw new FsError('EINVAL');
    return fs.readlinkSync(this.path(n), { encoding: 'buffer' });
  }

  async read(id: NodeId, offset: number, count: number, cred: Cred, into?: Buffer): Promise<{ data: Buffer; eof: boolean }> {
    const n = this.node(id);
    if (n.type === FileType.DIR) throw new FsError('EISDIR');
    if (n.type !== FileType.REG) throw new FsError('EINVAL');
    const a = this.getattr(id);
    if (cred.uid !== a.uid) check(a, cred, R);
    if (offset >= a.size || count === 0) return { data: Buffer.alloc(0), eof: offset >= a.size };
    const len = Math.min(count, a.size - offset);
    const buf = into && into.length >= len ? into.subarray(0, len) : Buffer.allocUnsafe(len);
    const got = await this.fds.read(n.id, () => this.openFd(n), buf, offset);
    return { data: got === len ? buf : buf.subarray(0, got), eof: offset + got >= a.size };
  }

  /** fd for the node's current copy: read-write in upper, read-only below. */
  openFd(n: Node): { fd: number; writable: boolean } {
    const writable = n.layer === 0;
    return { fd: fs.openSync(this.path(n), writable ? fs.constants.O_RDWR | fs.constants.O_NOFOLLOW : fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW), writable };
  }

  /**
   * Read dir's listing ahead of a READDIR (dir-cache.ts prefetch): on the thread pool, so that
   * the READDIR finds it in memory.
   */
  async prefetch(dir: NodeId, cookie: bigint, maxEntries: number): Promise<void> {
    const d = this.nodes.get(dir);
    if (d !== undefined && d.type === FileType.DIR) await this.dirs.prefetch(d, cookie, maxEntries);
  }

  readdir(dir: NodeId, cookie: bigint, maxEntries: number, plus: boolean, cred: Cred): DirPage {
    const d = this.dirNode(dir);
    check(this.getattr(dir), cred, R);
    const entries: DirEntry[] = [];
    try {
      const l = this.dirs.get(d);
      if (cookie < 1n && entries.length < maxEntries) entries.push(this.entry(d, Buffer.from('.'), 1n, plus));
      if (cookie < 2n && entries.length < maxEntries) entries.push(this.entry(this.node(d.parent), Buffer.from('..'), 2n, plus));
      const seen: Seen = {};
      let i = firstAfter(l, cookie);
      for (; i < l.names.length && entries.length < maxEntries; i++) {
        const name = l.names[i]!;
        const c = this.lookupNode(d, name, seen);
        if (c === null) continue;
        entries.push(this.entry(c, Buffer.from(name, 'latin1'), l.cookies[i]!, plus, seen.st));
      }
      return { entries, eof: i >= l.names.length, verifier: 0n };
    } finally {
      this.store.flush();
    }
  }

  private entry(n: Node, name: Buffer, cookie: bigint, plus: boolean, st?: LStat): DirEntry {
    if (!plus) return { fileid: n.id, name, cookie };
    // Kept on the node, as LOOKUP keeps them (bounded with the nodes, NODES_MAX): the next
    // walk is served from memory. A node met for the first time comes with the stat its lookup
    // made (no second lstat).
    let attr: Attr | undefined;
    try { attr = n.attr ??= st !== undefined ? this.attrFrom(n, st) : this.statUncached(n); } catch { attr = undefined; }
    return attr === undefined ? { fileid: n.id, name, cookie } : { fileid: n.id, name, cookie, attr };
  }

  fsstat(id: NodeId): FsStat {
    const n = this.node(id);
    const s = fs.statfsSync(this.layers.p(this.layers.hasUpper ? 0 : n.layer, ''));
    const bs = s.bsize;
    return {
      tbytes: s.blocks * bs, fbytes: s.bfree * bs, abytes: this.readOnly ? 0 : s.bavail * bs,
      tfiles: s.files, ffiles: s.ffree, afiles: this.readOnly ? 0 : s.ffree,
    };
  }

  // ---- write side (copy-up.ts, dir-ops.ts) -----------------------------------------------

  ensureWritable(): void {
    if (this.readOnly) throw new FsError('EROFS');
  }

  async setattr(id: NodeId, attr: SetAttr, cred: Cred): Promise<void> {
    this.ensureWritable();
    const n = this.node(id);
    await this.committed(() => ops.setattr(this, n, attr, cred), [id], n);
  }

  async write(id: NodeId, offset: number, data: Buffer, stable: StableHow, cred: Cred): Promise<StableHow> {
    this.ensureWritable();
    if (offset + data.length > MAX_FILE_SIZE) throw new FsError('EFBIG');
    const n = this.node(id);
    return this.done(() => ops.write(this, n, offset, data, stable, cred), n);
  }

  async commit(id: NodeId, _offset: number, _count: number): Promise<void> {
    const n = this.node(id);
    if (n.layer !== 0 || n.type !== FileType.REG) return;
    // fsync through the cached fd, or a fresh one if it was evicted (any fd of the inode will do)
    if (!(await this.fds.sync(n.id, false))) {
      const fd = fs.openSync(this.path(n), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
    }
    await this.syncEntries(n);
  }

  /**
   * Makes durable what a stable write or COMMIT promises besides the data: the directory
   * entries the file is reached by (its upper directory and every one above it, which CREATE
   * or copy-up may have made since the last sync; a clean directory's fsync costs little) and
   * the identity records its handle depends on, with whatever else is marked for the next
   * metadata commit. fsync runs on the thread pool.
   */
  async syncEntries(n: Node): Promise<void> {
    const dirs: Buffer[] = [];
    for (let d = this.node(n.parent); ; d = this.node(d.parent)) {
      dirs.push(this.upperPath(this.rel(d)));
      if (d.id === ROOT) break;
    }
    const failed = (await fsyncEach(dirs)).find((code) => code !== null);
    if (failed != null) throw new FsError(failed, 'fsync of a directory above a synced file');
    await this.meta.commit();
  }

  async create(dir: NodeId, name: Buffer, how: CreateHow, cred: Cred): Promise<NodeId> {
    this.ensureWritable();
    return this.committed(() => ops.create(this, this.dirNode(dir), checkNewName(name, this.whiteoutFormat), how, cred), [dir]);
  }

  async mkdir(dir: NodeId, name: Buffer, attr: SetAttr, cred: Cred): Promise<NodeId> {
    this.ensureWritable();
    return this.committed(() => ops.mknodAny(this, this.dirNode(dir), checkNewName(name, this.whiteoutFormat), FileType.DIR, attr, cred, { target: undefined, rdev: undefined }), [dir]);
  }

  async symlink(dir: NodeId, name: Buffer, target: Buffer, attr: SetAttr, cred: Cred): Promise<NodeId> {
    this.ensureWritable();
    return this.committed(() => ops.mknodAny(this, this.dirNode(dir), checkNewName(name, this.whiteoutFormat), FileType.LNK, attr, cred, { target, rdev: undefined }), [dir]);
  }

  async mknod(dir: NodeId, name: Buffer, type: FileType, attr: SetAttr, rdev: { major: number; minor: number }, cred: Cred): Promise<NodeId> {
    this.ensureWritable();
    return this.committed(() => ops.mknodAny(this, this.dirNode(dir), checkNewName(name, this.whiteoutFormat), type, attr, cred, { target: undefined, rdev }), [dir]);
  }

  async remove(dir: NodeId, name: Buffer, cred: Cred): Promise<void> {
    this.ensureWritable();
    await this.committed(() => ops.remove(this, this.dirNode(dir), checkName(name), false, cred), [dir]);
  }

  async rmdir(dir: NodeId, name: Buffer, cred: Cred): Promise<void> {
    this.ensureWritable();
    await this.committed(() => ops.remove(this, this.dirNode(dir), checkName(name), true, cred), [dir]);
  }

  async rename(fromDir: NodeId, fromName: Buffer, toDir: NodeId, toName: Buffer, cred: Cred): Promise<void> {
    this.ensureWritable();
    await this.committed(() => ops.rename(this, this.dirNode(fromDir), checkName(fromName), this.dirNode(toDir), checkNewName(toName, this.whiteoutFormat), cred), [fromDir, toDir]);
  }

  async link(id: NodeId, dir: NodeId, name: Buffer, cred: Cred): Promise<void> {
    this.ensureWritable();
    const n = this.node(id);
    await this.committed(() => ops.link(this, n, this.dirNode(dir), checkNewName(name, this.whiteoutFormat), cred), [dir, id], n);
  }

  copyUp(n: Node, opts?: { noData?: boolean }): Promise<void> {
    return cu.copyUp(this, n, opts);
  }

  /**
   * Run a change of names or attributes (done), then commit what it changed before the reply
   * (metadata-sync.ts): the directories and objects in `marks`, the object it returns (a new
   * one), and whatever its copy-ups marked.
   */
  private async committed<T extends NodeId | void>(op: () => Promise<T>, marks: NodeId[], n?: Node): Promise<T> {
    const r = await this.done(op, n);
    for (const m of marks) this.meta.mark(m);
    if (typeof r === 'number') this.meta.mark(r);
    await this.meta.commit();
    return r;
  }

  /**
   * The upper path a metadata mark stands for now; undefined when there is none, or when it
   * is not a file or directory: opening a FIFO blocks, a device may act on open, and their
   * entries are committed with their parent's.
   */
  private markPath(m: number): Buffer | undefined {
    if (m === INDEX_MARK) return this.links.enabled ? pathBuf(this.links.dir) : undefined;
    try {
      const n = this.nodes.get(m) ?? this.resolveId(m, 0);
      return n.layer === 0 && (n.type === FileType.REG || n.type === FileType.DIR) ? this.path(n) : undefined;
    } catch {
      return undefined; // gone: its parent's mark covers the name it had
    }
  }

  /** Run a mutation holding `n` (see hold), then write its identity records. */
  private async done<T>(op: () => Promise<T>, n?: Node): Promise<T> {
    if (n !== undefined) this.hold(n);
    try {
      return await op();
    } finally {
      if (n !== undefined) this.release(n);
      this.store.flush();
      this.evictNodes();
    }
  }

  /**
   * Keep `n` live until release: a mutation that uses a node after an await (its layer after
   * copy-up, its attributes after a write) must find it still the one in `nodes`, not an
   * evicted copy while another was rebuilt for the same id.
   */
  hold(n: Node): void {
    this.held.set(n.id, (this.held.get(n.id) ?? 0) + 1);
  }

  release(n: Node): void {
    const c = this.held.get(n.id) ?? 0;
    if (c <= 1) this.held.delete(n.id);
    else this.held.set(n.id, c - 1);
  }

  usage(): UnionUsage {
    return { nodes: this.nodes.size, listingBytes: this.dirs.bytes, identityRecords: this.store.size };
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.copyUps.values()]);
    this.releaseLowers();
    await this.fds.closeAll();
    await this.store.close();
    this.layers.release();
  }
}

/** A name a client wants to create: also refuse marker names where they are markers (an OCI-format upper). */
const markerRefusals = new RateLimitedLog(log, 60_000);

export function checkNewName(name: Buffer, format: WhiteoutFormat): string {
  const s = checkName(name);
  if (isMarkerName(s) && format === 'oci') {
    // A client can ask for such names as fast as it likes: one line a minute.
    markerRefusals.warn('marker name', 'refused to create a name reserved for union whiteout markers', { name: s });
    throw new FsError('EPERM', 'names starting with .wh. are whiteout markers in an OCI-format upper layer (--whiteout oci)');
  }
  return s;
}
