/**
 * Merged READDIR: the sorted listing of a directory over its layer stack.
 *
 * Rule: walk the stack top-down; a name is listed once, from its top-most layer; whiteouts
 * (char 0/0, xattr whiteouts, `.wh.<name>` in an OCI-format layer) hide the name in the layers
 * below, and no marker (`.wh.*` of an OCI-format layer) or whiteout is ever listed. Entries
 * are sorted by cookie (names.ts cookieOf), so a page resumes at the first cookie greater than
 * the client's: stable across adds, removes, copy-ups and restarts, with no per-client state. The listing is cached per directory in an
 * LRU bounded by heap bytes (ListingCache) and patched (not rebuilt) by our own mutations.
 * Example: upper {b, .wh.c}, lower {a, c} -> [a, b] in cookie order.
 * A redirected directory's lower layers are read at the path its record names (redirect.ts).
 * The listing also keeps, per entry, a hint of where its name was found (top-most layer and
 * whether it is a directory, from d_type) so that resolving a listed name costs one lstat in
 * that layer instead of a walk of the stack (namei.ts findInLayers), and a name a listing
 * lacks does not exist in the union (a negative lookup without syscalls). A listing is whole
 * or it is not made: a layer that cannot be read (EMFILE, EIO, ...) fails the listing with
 * that error, never leaves it short, so nothing (RMDIR's emptiness check above all) ever
 * acts on names that were missed. A hint is dropped (HINT_UNKNOWN) by every change of ours that puts the
 * name into the upper layer (create, rename over it, link, copy-up: listingAdd/listingTouch).
 * Races: lowers are immutable and upper changes only through us, so a cached listing is exact;
 * a rare 63-bit cookie collision would make the second name unreachable by a paging walk.
 */
import * as fs from 'node:fs';
import { cookieOf, WH_OPAQUE, WH_PREFIX } from './names.js';
import { isWhiteoutDev } from './whiteout.js';
import type { XattrFacts } from './xattr.js';
import { isXattrWhiteout, relIn, type DirRels } from './namei.js';
import type { Layers } from './layers.js';
import { SharedWhileHeld } from './shared.js';

export interface Listing {
  cookies: bigint[];
  names: string[];
  /** Per entry: layer << 1 | (is a directory ? 1 : 0), or HINT_UNKNOWN. Absent: all unknown. */
  hints?: number[];
  /** Held by several unions (LowerListings): never patched in place; ownListing() copies it first. */
  shared?: boolean;
}

export const HINT_UNKNOWN = -1;

export function hintOf(layer: number, isDir: boolean): number {
  return (layer << 1) | (isDir ? 1 : 0);
}

/**
 * The listing of the directory `dir` (its paths, namei.ts DirRels) over `stack`. Throws the
 * error of a layer that cannot be read (a missing directory is no error).
 */
export function buildListing(layers: Layers, facts: XattrFacts[], stack: readonly number[], dir: DirRels): Listing;
/** With `limit`: null as soon as more than `limit` entries were read (the caller gives up). */
export function buildListing(layers: Layers, facts: XattrFacts[], stack: readonly number[], dir: DirRels, limit: number): Listing | null;
export function buildListing(layers: Layers, facts: XattrFacts[], stack: readonly number[], dir: DirRels, limit = Number.POSITIVE_INFINITY): Listing | null {
  const b = new Merge(facts);
  for (const i of stack) {
    const rel = relIn(dir, i);
    const at = openLayerDir(layers, i, rel, false);
    if (at === null) continue;
    const layer = b.layer(i, layers.s(i, rel), at.inside, layers.markers(i));
    try {
      for (let de = at.dh.readSync(); de !== null; de = at.dh.readSync()) {
        if (b.read >= limit) return null;
        layer.add(de);
      }
    } finally {
      at.dh.closeSync();
      at.release();
    }
    layer.end();
  }
  return b.listing();
}

/**
 * buildListing with the directories read on the thread pool, a batch at a time, so that the
 * event loop serves other calls between batches (a directory of 300,000 entries is thousands
 * of batches). The caller must make sure the directory did not change meanwhile.
 */
export async function buildListingAsync(layers: Layers, facts: XattrFacts[], stack: readonly number[], dir: DirRels): Promise<Listing> {
  const b = new Merge(facts);
  for (const i of stack) {
    const rel = relIn(dir, i);
    const at = openLayerDir(layers, i, rel, true);
    if (at === null) continue;
    const layer = b.layer(i, layers.s(i, rel), at.inside, layers.markers(i));
    try {
      for (let de = await at.dh.read(); de !== null; de = await at.dh.read()) layer.add(de);
    } finally {
      await at.dh.close();
      at.release();
    }
    layer.end();
  }
  return b.listingInTurns();
}

const NOTHING_HELD = { release: () => undefined };

/**
 * Layer i's directory rel, or null when that layer has none. `async`: opened for this listing
 * alone (Layers.hold), so that its entries are looked up in it across the awaits of a listing
 * read on the thread pool. The caller closes dh, then releases.
 */
function openLayerDir(layers: Layers, i: number, rel: string, async: boolean): { dh: fs.Dir; inside: string; release(): void } | null {
  let held;
  try {
    held = async ? layers.hold(i, rel) : { inside: layers.dir(i, rel), ...NOTHING_HELD };
    // opendir, not readdirSync: a 100k-entry layer directory is read in batches, so its
    // Dirents never all live at once (readdirSync took the RSS of a 100k listing to 135 MB)
    const dh = fs.opendirSync(held.inside, { encoding: 'buffer' as BufferEncoding, bufferSize: 128 });
    return { dh, inside: held.inside, release: held.release };
  } catch (e) {
    held?.release();
    // a layer without this directory is normal (the stack says it has one, but be lenient)
    if ((e as { code?: string }).code === 'ENOENT') return null;
    throw e;
  }
}

/** The merge of a stack's directories, fed top-down, one layer at a time. */
class Merge {
  read = 0;
  private readonly seen = new Set<string>();
  private readonly hidden = new Set<string>();
  private readonly out: Entry[] = [];

  constructor(private readonly facts: XattrFacts[]) {}

  /**
   * Layer i, whose directory is dirPath (its key) and `inside` (a path prefix, Layers.hold),
   * `.wh.*` names markers there or not (Layers.markers): add its entries, then end it.
   */
  layer(i: number, dirPath: string, inside: string, markers: boolean): { add(de: fs.Dirent): void; end(): void } {
    const whs: string[] = [];
    // only a directory marked for them holds xattr whiteouts: then its files are stat'ed
    const xw = this.facts[i]!.xwhiteouts(dirPath);
    return {
      add: (de) => {
        this.read++;
        const n = (de.name as unknown as Buffer).toString('latin1');
        if (markers && n.startsWith(WH_PREFIX)) {
          if (n !== WH_OPAQUE && !n.startsWith(WH_PREFIX + WH_PREFIX)) whs.push(n.slice(WH_PREFIX.length));
          return;
        }
        if (this.seen.has(n) || this.hidden.has(n)) return;
        let isDir = de.isDirectory();
        let known = isDir || de.isFile() || de.isSymbolicLink() || de.isCharacterDevice() || de.isBlockDevice() || de.isFIFO() || de.isSocket();
        if (!known || de.isCharacterDevice() || (xw && de.isFile())) {
          // d_type unknown, a possible whiteout device or xattr whiteout: decide as namei does
          const st = fs.lstatSync(Buffer.from(inside + '/' + n, 'latin1'), { throwIfNoEntry: false });
          if (st === undefined) return;
          if (isWhiteoutDev(st) || (xw && isXattrWhiteout(this.facts, i, dirPath + '/' + n, st))) { whs.push(n); return; }
          isDir = st.isDirectory();
          known = true;
        }
        this.seen.add(n);
        this.out.push({ c: cookieOf(n), n, h: known ? hintOf(i, isDir) : HINT_UNKNOWN });
      },
      end: () => { for (const w of whs) this.hidden.add(w); },
    };
  }

  listing(): Listing {
    const sorted = this.out.sort(byCookie);
    return { cookies: sorted.map((e) => e.c), names: sorted.map((e) => e.n), hints: sorted.map((e) => e.h) };
  }

  /**
   * listing() with the work cut in pieces and a turn of the event loop between them: runs of
   * TURN entries sorted, then merged two by two (300,000 entries sorted at once held the loop
   * for about 190 ms).
   */
  async listingInTurns(): Promise<Listing> {
    let runs: Entry[][] = [];
    for (let i = 0; i < this.out.length; i += TURN) {
      runs.push(this.out.slice(i, i + TURN).sort(byCookie));
      await nextTurn();
    }
    while (runs.length > 1) {
      const merged: Entry[][] = [];
      for (let j = 0; j < runs.length; j += 2) merged.push(j + 1 < runs.length ? await mergeInTurns(runs[j]!, runs[j + 1]!) : runs[j]!);
      runs = merged;
    }
    const sorted = runs[0] ?? [];
    const l: Listing = { cookies: new Array<bigint>(sorted.length), names: new Array<string>(sorted.length), hints: new Array<number>(sorted.length) };
    for (let k = 0; k < sorted.length;) {
      for (const end = Math.min(sorted.length, k + TURN); k < end; k++) {
        const e = sorted[k]!;
        l.cookies[k] = e.c;
        l.names[k] = e.n;
        l.hints![k] = e.h;
      }
      if (k < sorted.length) await nextTurn();
    }
    return l;
  }
}

interface Entry { c: bigint; n: string; h: number }

/** Entries handled per turn of the event loop by listingInTurns (a few milliseconds). */
const TURN = 8192;

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function byCookie(a: Entry, b: Entry): number {
  return a.c < b.c ? -1 : a.c > b.c ? 1 : a.n < b.n ? -1 : a.n > b.n ? 1 : 0;
}

async function mergeInTurns(a: Entry[], b: Entry[]): Promise<Entry[]> {
  const out: Entry[] = new Array<Entry>(a.length + b.length);
  let i = 0, j = 0, k = 0;
  while (i < a.length || j < b.length) {
    for (const end = Math.min(out.length, k + TURN); k < end; k++) out[k] = j >= b.length || (i < a.length && byCookie(a[i]!, b[j]!) <= 0) ? a[i++]! : b[j++]!;
    if (k < out.length) await nextTurn();
  }
  return out;
}


/** A listing a union may patch: `l` itself, or a copy of it when it is shared. */
export function ownListing(l: Listing): Listing {
  if (l.shared !== true) return l;
  return { cookies: [...l.cookies], names: [...l.names], ...(l.hints !== undefined && { hints: [...l.hints] }) };
}

/**
 * Listings of directories that exist only in lower layers, shared by every union open over the
 * same lowers (the unions of a per-client export): such a listing depends on the lowers alone,
 * which are immutable while served, so fifty clients walking one base build and hold it once.
 * Bounded by heap bytes like ListingCache; a union that changes such a directory copies the
 * listing first (ownListing). The store lives while a union holds it (lowerListings,
 * shared.ts), so a lower rebuilt between runs is never listed from memory.
 */
export class LowerListings {
  private readonly cache: ListingCache<string>;
  constructor(maxBytes = DEFAULT_LISTING_CACHE_BYTES) {
    this.cache = new ListingCache<string>(maxBytes);
  }

  /** The shared listing of `rel` over the lower `stack`, built by `build` when missing (null: not shared). */
  get(stack: readonly number[], rel: string, build: () => Listing | null): Listing | null {
    let l = this.cache.get(keyOf(stack, rel));
    if (l === undefined) {
      const built = build();
      if (built === null) return null;
      l = this.put(stack, rel, built);
    }
    return l;
  }

  has(stack: readonly number[], rel: string): boolean {
    return this.cache.peek(keyOf(stack, rel)) !== undefined;
  }

  /** Holds `l` (built elsewhere) as the shared listing of `rel` over `stack`. */
  put(stack: readonly number[], rel: string, l: Listing): Listing {
    l.shared = true;
    this.cache.set(keyOf(stack, rel), l);
    return l;
  }
}

function keyOf(stack: readonly number[], rel: string): string {
  return `${stack.join(',')}|${rel}`;
}

/** The LowerListings of a set of lowers (key: their roots, top-most first, joined by NUL). */
export const lowerListings = new SharedWhileHeld<LowerListings>(() => new LowerListings());

/** An empty listing (a directory we just made in the upper layer). */
export function emptyListing(): Listing {
  return { cookies: [], names: [], hints: [] };
}

/** Index of the first entry with cookie > c. */
export function firstAfter(l: Listing, c: bigint): number {
  let lo = 0, hi = l.cookies.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (l.cookies[mid]! <= c) lo = mid + 1; else hi = mid;
  }
  return lo;
}

/** Index of `name` in the listing, or -1. */
export function listingFind(l: Listing, name: string): number {
  const c = cookieOf(name);
  for (let i = firstAfter(l, c - 1n); i < l.cookies.length && l.cookies[i] === c; i++) {
    if (l.names[i] === name) return i;
  }
  return -1;
}

/** Add `name` (or, when present, replace its hint). Returns true when an entry was added. */
export function listingAdd(l: Listing, name: string, hint = HINT_UNKNOWN): boolean {
  const c = cookieOf(name);
  let i = firstAfter(l, c - 1n);
  while (i < l.cookies.length && l.cookies[i] === c) {
    if (l.names[i] === name) {
      if (l.hints !== undefined) l.hints[i] = hint;
      return false;
    }
    if (l.names[i]! > name) break;
    i++;
  }
  l.cookies.splice(i, 0, c);
  l.names.splice(i, 0, name);
  l.hints?.splice(i, 0, hint);
  return true;
}

/** Forget where `name` lives (it may have moved to the upper layer). */
export function listingTouch(l: Listing, name: string): void {
  if (l.hints === undefined) return;
  const i = listingFind(l, name);
  if (i >= 0) l.hints[i] = HINT_UNKNOWN;
}

export function listingRemove(l: Listing, name: string): void {
  const i = listingFind(l, name);
  if (i < 0) return;
  l.cookies.splice(i, 1);
  l.names.splice(i, 1);
  l.hints?.splice(i, 1);
}

/**
 * Heap bytes one cached entry costs: its name string (V8 header + one byte per latin1 char,
 * padded) plus its bigint cookie and two array slots. Measured on Node 20 x64 (heapUsed after
 * gc, 200k-entry listings): 64.0 B at 8-char names, 81.8 B at 24, 120.8 B at 64, i.e. about
 * 57 + length; plus 8 B for the hint (a small-integer array slot): 72 + length leaves a margin.
 */
export function entryBytes(name: string): number {
  return 72 + name.length;
}
const LISTING_OVERHEAD = 128;

export function listingBytes(l: Listing): number {
  let b = LISTING_OVERHEAD;
  for (const n of l.names) b += entryBytes(n);
  return b;
}

/** Default bound of the merged-listing cache: 32 MiB of heap (about 400k entries of 20-char names). */
export const DEFAULT_LISTING_CACHE_BYTES = 32 * 1024 * 1024;

/**
 * LRU of listings bounded by the heap bytes they hold (entryBytes), and optionally by their
 * number of entries. The listing just inserted is always kept, so the worst case is the bound
 * plus the largest single directory being listed.
 */
export class ListingCache<K = number> {
  private map = new Map<K, { l: Listing; bytes: number }>();
  private total = 0;
  private entries = 0;
  constructor(private readonly maxBytes = DEFAULT_LISTING_CACHE_BYTES, private readonly maxEntries = Number.POSITIVE_INFINITY) {}

  get(id: K): Listing | undefined {
    const e = this.map.get(id);
    if (e !== undefined) { this.map.delete(id); this.map.set(id, e); }
    return e?.l;
  }

  peek(id: K): Listing | undefined { return this.map.get(id)?.l; }

  set(id: K, l: Listing): void {
    this.delete(id);
    const bytes = listingBytes(l);
    this.map.set(id, { l, bytes });
    this.total += bytes;
    this.entries += l.names.length + 1;
    for (const [k, v] of this.map) {
      if ((this.total <= this.maxBytes && this.entries <= this.maxEntries) || k === id) break;
      this.map.delete(k);
      this.total -= v.bytes;
      this.entries -= v.l.names.length + 1;
    }
  }

  /** Keep the accounting right after an in-place patch adding (+1) or removing (-1) `name`. */
  adjust(id: K, name: string, sign: 1 | -1): void {
    const e = this.map.get(id);
    if (e === undefined) return;
    const d = sign * entryBytes(name);
    e.bytes += d;
    this.total += d;
    this.entries += sign;
  }

  /** Heap bytes and entries held (estimates, see entryBytes). */
  get size(): { bytes: number; entries: number; listings: number } {
    return { bytes: this.total, entries: this.entries, listings: this.map.size };
  }

  delete(id: K): void {
    const e = this.map.get(id);
    if (e === undefined) return;
    this.map.delete(id);
    this.total -= e.bytes;
    this.entries -= e.l.names.length + 1;
  }
}
