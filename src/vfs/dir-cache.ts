/**
 * dir-cache: one union's merged directory listings (overlayfs readdir.c's ovl_dir_cache).
 *
 * Rule: a directory's listing (readdir.ts) is read from its layers when first needed, ahead of
 * a READDIR on the thread pool (prefetch), and kept in an LRU bounded by heap bytes
 * (ListingCache). A directory that exists only in lower layers is listed once for all the
 * unions over these lowers (LowerListings). The union's own changes patch a cached listing
 * (add, touch, remove, made) instead of dropping it; a shared one is copied first.
 * Example: CREATE d/x -> add(d, 'x'): the next READDIR of d lists x with no syscall.
 * Races: a listing built on the pool is dropped when its directory changed (any patch), was
 * copied up or moved while it was read; the synchronous build (get) then reads again.
 */
import * as fs from 'node:fs';
import type { Node } from './node.js';
import type { NodeId } from './types.js';
import type { Layers } from './layers.js';
import type { XattrFacts } from './xattr.js';
import { lowerKey, relIn, type DirRels } from './namei.js';
import {
  buildListing, buildListingAsync, emptyListing, firstAfter, HINT_UNKNOWN, listingAdd, listingRemove, listingTouch, ListingCache,
  lowerListings, ownListing, type Listing, type LowerListings,
} from './readdir.js';
import { vfsCounters } from './stats.js';
import { coldDisk } from './cold-disk.js';
import { sys } from './syscalls.js';

/** What the cache reads directories through: the union's layers, marks and paths. */
export interface DirSource {
  readonly layers: Layers;
  readonly facts: XattrFacts[];
  rels(d: Node): DirRels;
}

export class DirCache {
  private readonly listings: ListingCache;
  /** Listings of lower-only directories, shared with the other unions over these lowers. */
  private shared: LowerListings | undefined;
  private releaseShared: () => void = () => undefined;
  /** Listings being built on the thread pool (ahead), and whether their directory changed since. */
  private readonly building = new Map<NodeId, { stale: boolean; done: Promise<void> }>();

  constructor(private readonly src: DirSource, bounds: { bytes?: number; entries?: number }) {
    this.listings = new ListingCache(bounds.bytes, bounds.entries);
  }

  /** Share lower-only listings with the unions over the same lowers (their roots, top-most first). */
  open(lowerRoots: readonly string[]): void {
    const held = lowerListings.acquire(lowerRoots.join('\0'));
    this.shared = held.value;
    this.releaseShared = () => held.release();
  }

  close(): void {
    this.releaseShared();
  }

  /** d's merged listing, read from the layers when not cached (throws what a layer's read throws). */
  get(d: Node): Listing {
    let l = this.listings.get(d.id);
    if (l === undefined) {
      vfsCounters.listingMisses++;
      l = this.build(d);
      this.listings.set(d.id, l);
    } else {
      vfsCounters.listingHits++;
    }
    return l;
  }

  /** d's cached listing, if any, without touching the LRU order. */
  peek(dir: NodeId): Listing | undefined {
    return this.listings.peek(dir);
  }

  /** d's listing read and cached unless more than `limit` entries would be read (null). */
  getBounded(d: Node, limit: number): Listing | null {
    const l = this.build(d, limit);
    if (l !== null) this.listings.set(d.id, l);
    return l;
  }

  /**
   * The merged listing of d, read from the layers; a directory with no upper copy is listed
   * once for all the unions over these lowers. Throws when a layer cannot be read: nothing is
   * cached then, and the next call reads again.
   */
  private build(d: Node): Listing;
  private build(d: Node, limit: number): Listing | null;
  private build(d: Node, limit = Number.POSITIVE_INFINITY): Listing | null {
    const at = this.src.rels(d);
    const read = () => buildListing(this.src.layers, this.src.facts, d.stack, at, limit);
    if (this.shared === undefined || d.stack.includes(0)) return read();
    return this.shared.get(d.stack, lowerKey(at), read);
  }

  /** The cached listing of dir, to patch: a shared one is copied first (readdir.ts ownListing). */
  private patchable(dir: NodeId): Listing | undefined {
    this.changed(dir);
    const l = this.listings.peek(dir);
    if (l === undefined || l.shared !== true) return l;
    const own = ownListing(l);
    this.listings.set(dir, own);
    return own;
  }

  /** `name` was made (or replaced) in the upper layer of dir. */
  add(dir: NodeId, name: string): void {
    const l = this.patchable(dir);
    if (l === undefined) return;
    if (listingAdd(l, name, HINT_UNKNOWN)) this.listings.adjust(dir, name, 1);
  }

  /** `name` in dir may now live in another layer (copy-up): forget where it was listed from. */
  touch(dir: NodeId, name: string): void {
    const l = this.patchable(dir);
    if (l !== undefined) listingTouch(l, name);
  }

  /** A directory we just made in the upper layer and nowhere else: its listing is known. */
  made(d: Node): void {
    this.changed(d.id);
    if (d.stack.length === 1 && d.stack[0] === 0 && this.listings.peek(d.id) === undefined) this.listings.set(d.id, emptyListing());
  }

  remove(dir: NodeId, name: string): void {
    const l = this.patchable(dir);
    if (l === undefined) return;
    const before = l.names.length;
    listingRemove(l, name);
    if (l.names.length !== before) this.listings.adjust(dir, name, -1);
  }

  /** Drop dir's cached listing (its next one is read from the layers). */
  forget(dir: NodeId): void {
    this.changed(dir);
    this.listings.delete(dir);
  }

  /** Heap bytes the cached listings hold (an estimate, readdir.ts entryBytes). */
  get bytes(): number {
    return this.listings.size.bytes;
  }

  /**
   * What a READDIR of the next `maxEntries` entries of d after `cookie` needs from the disk,
   * read on the thread pool first: the merged listing when none is cached (ahead), and, while
   * the disk is cold (cold-disk.ts), each name's lstat where the READDIR will look for it (the
   * layer it was listed from, else every layer of d). The READDIR, on the event loop, then finds
   * the listing in memory and the inodes in the kernel's caches. Errors are left for it to meet
   * and answer.
   */
  async prefetch(d: Node, cookie: bigint, maxEntries: number): Promise<void> {
    await this.ahead(d);
    if (!coldDisk.isCold()) return;
    let l: Listing;
    try {
      l = this.get(d);
    } catch {
      return;
    }
    const at = this.src.rels(d);
    const paths: Buffer[] = [];
    const start = firstAfter(l, cookie);
    for (let i = start; i < l.names.length && i < start + maxEntries; i++) {
      const h = l.hints?.[i] ?? HINT_UNKNOWN;
      const where = h !== HINT_UNKNOWN && (h & 1) === 0 ? [h >> 1] : d.stack;
      for (const layer of where) paths.push(this.src.layers.p(layer, relIn(at, layer) + '/' + l.names[i]!));
    }
    // one pool job for the page; without the addon, one per path
    if (sys !== undefined) await sys.lstatAhead(paths);
    else await Promise.all(paths.map((p) => fs.promises.lstat(p).catch(() => undefined)));
  }

  /**
   * d's merged listing built on the thread pool (readdir.ts buildListingAsync) when none is
   * cached, so that the first READDIR of a directory of 300,000 entries does not hold the event
   * loop for all of them. Dropped when d changed meanwhile (changed), was copied up or moved;
   * errors are left for the synchronous build to meet. Concurrent callers share one build.
   */
  private ahead(d: Node): Promise<void> {
    const inFlight = this.building.get(d.id);
    if (inFlight !== undefined) return inFlight.done;
    if (this.listings.peek(d.id) !== undefined) return Promise.resolve();
    const stack = d.stack;
    const at = this.src.rels(d);
    const shared = this.shared !== undefined && !stack.includes(0) ? this.shared : undefined;
    if (shared?.has(stack, lowerKey(at)) === true) return Promise.resolve();
    const b = { stale: false, done: Promise.resolve() };
    b.done = buildListingAsync(this.src.layers, this.src.facts, stack, at).then((l) => {
      const now = this.src.rels(d);
      if (b.stale || d.stack !== stack || now.upper !== at.upper || lowerKey(now) !== lowerKey(at) || this.listings.peek(d.id) !== undefined) return;
      if (shared !== undefined) shared.put(stack, lowerKey(at), l);
      else this.listings.set(d.id, l);
    }, () => undefined).finally(() => this.building.delete(d.id));
    this.building.set(d.id, b);
    return b.done;
  }

  /** dir's entries changed: a listing being built of it (ahead) is stale. */
  private changed(dir: NodeId): void {
    const b = this.building.get(dir);
    if (b !== undefined) b.stale = true;
  }
}
