/**
 * Merged READDIR: the sorted listing of a directory over its layer stack.
 *
 * Rule: walk the stack top-down; a name is listed once, from its top-most layer; whiteouts
 * (char 0/0, xattr whiteouts, `.wh.<name>`) hide the name in the layers below, and no marker
 * (`.wh.*`) or whiteout is ever listed. Entries are sorted by cookie (names.ts cookieOf), so a
 * page resumes at the first cookie greater than the client's: stable across adds, removes,
 * copy-ups and restarts, with no per-client state. The listing is cached per directory in an
 * LRU bounded by total entries and patched (not rebuilt) by our own mutations.
 * Example: upper {b, .wh.c}, lower {a, c} -> [a, b] in cookie order.
 * Races: lowers are immutable and upper changes only through us, so a cached listing is exact;
 * a rare 63-bit cookie collision would make the second name unreachable by a paging walk.
 */
import * as fs from 'node:fs';
import { cookieOf, WH_OPAQUE, WH_PREFIX } from './names.js';
import { isWhiteoutDev, type XattrFacts } from './whiteout.js';
import type { Layers } from './layers.js';

export interface Listing {
  cookies: bigint[];
  names: string[];
}

export function buildListing(layers: Layers, facts: XattrFacts[], stack: readonly number[], rel: string): Listing {
  const seen = new Set<string>();
  const hidden = new Set<string>();
  const out: { c: bigint; n: string }[] = [];
  for (const i of stack) {
    const dirPath = layers.s(i, rel);
    let ents: fs.Dirent[];
    try {
      ents = fs.readdirSync(layers.p(i, rel), { withFileTypes: true, encoding: 'buffer' }) as unknown as fs.Dirent[];
    } catch {
      continue;
    }
    const whs: string[] = [];
    const f = facts[i]!;
    for (const de of ents) {
      const n = (de.name as unknown as Buffer).toString('latin1');
      if (n.startsWith(WH_PREFIX)) {
        if (n !== WH_OPAQUE && !n.startsWith(WH_PREFIX + WH_PREFIX)) whs.push(n.slice(WH_PREFIX.length));
        continue;
      }
      if (de.isCharacterDevice()) {
        const st = fs.lstatSync(Buffer.from(dirPath + '/' + n, 'latin1'), { throwIfNoEntry: false });
        if (st && isWhiteoutDev(st)) { whs.push(n); continue; }
      } else if (f.whiteout.size > 0 && de.isFile() && f.whiteout.has(dirPath + '/' + n)) {
        whs.push(n);
        continue;
      }
      if (seen.has(n) || hidden.has(n)) continue;
      seen.add(n);
      out.push({ c: cookieOf(n), n });
    }
    for (const w of whs) hidden.add(w);
  }
  out.sort((a, b) => (a.c < b.c ? -1 : a.c > b.c ? 1 : a.n < b.n ? -1 : a.n > b.n ? 1 : 0));
  return { cookies: out.map((e) => e.c), names: out.map((e) => e.n) };
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

export function listingAdd(l: Listing, name: string): void {
  const c = cookieOf(name);
  let i = firstAfter(l, c - 1n);
  while (i < l.cookies.length && l.cookies[i] === c) {
    if (l.names[i] === name) return;
    if (l.names[i]! > name) break;
    i++;
  }
  l.cookies.splice(i, 0, c);
  l.names.splice(i, 0, name);
}

export function listingRemove(l: Listing, name: string): void {
  const c = cookieOf(name);
  for (let i = firstAfter(l, c - 1n); i < l.cookies.length && l.cookies[i] === c; i++) {
    if (l.names[i] === name) {
      l.cookies.splice(i, 1);
      l.names.splice(i, 1);
      return;
    }
  }
}

/** LRU of listings bounded by the total number of entries held. */
export class ListingCache {
  private map = new Map<number, Listing>();
  private total = 0;
  constructor(private readonly maxEntries = 2_000_000) {}

  get(id: number): Listing | undefined {
    const l = this.map.get(id);
    if (l !== undefined) { this.map.delete(id); this.map.set(id, l); }
    return l;
  }

  peek(id: number): Listing | undefined { return this.map.get(id); }

  set(id: number, l: Listing): void {
    this.delete(id);
    this.map.set(id, l);
    this.total += l.names.length + 1;
    for (const [k, v] of this.map) {
      if (this.total <= this.maxEntries || k === id) break;
      this.map.delete(k);
      this.total -= v.names.length + 1;
    }
  }

  /** Keep the size accounting right after in-place patches. */
  adjust(delta: number): void { this.total += delta; }

  delete(id: number): void {
    const l = this.map.get(id);
    if (l === undefined) return;
    this.map.delete(id);
    this.total -= l.names.length + 1;
  }
}
