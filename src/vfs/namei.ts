/**
 * namei: looking a name up across the layers.
 *
 * Rule (overlayfs): search the parent's stack top-down. The first layer holding the name
 * decides: a whiteout there (char 0/0, xattr whiteout, or in an OCI-format layer a `.wh.<name>`
 * where the name itself is absent) means ENOENT; a non-directory is the object and hides everything
 * below; a directory merges with directories of the same name further down its parent's
 * stack, until an opaque one, a whiteout or a non-directory. A directory that redirects
 * (redirect.ts), in any layer, merges with the directories at the path it names in the layers
 * below it instead. A `.wh.*` name is a marker, never an object, in an OCI-format layer, and a
 * name like any other in an overlayfs-format one (as kernel overlayfs reads its layers). Only
 * lstat is used, on paths resolved inside the layer (beneath.ts): no symlink is ever followed,
 * whatever the layers, a client or a local process put there.
 * Example: lowers A{d/}, B{d/ (opaque), d/x}, C{d/y} -> d stacks [A, B]; d/y is ENOENT.
 * Races: lowers are immutable; upper changes only through the union, synchronously with
 * respect to the path computed here.
 */
import { isMarkerName, WH_OPAQUE, WH_PREFIX } from './names.js';
import { isWhiteoutDev } from './whiteout.js';
import type { DirMarks, XattrFacts } from './xattr.js';
import { typeOfMode } from './attrs.js';
import type { Layers } from './layers.js';
import { FileType } from './types.js';
import { lstatQuiet, type LStat } from './lstat.js';
import { readRedirect } from './redirect.js';

export { lstatQuiet };

export interface Found {
  type: FileType;
  layer: number;
  st: LStat;
  stack: readonly number[];
  /** A directory whose upper copy redirects: the union path of its lower part (redirect.ts). */
  below?: string;
  /** A directory below a redirect (its own or its parent's): its path in each lower layer of its stack. */
  paths?: ReadonlyMap<number, string>;
}

const singles: (readonly number[])[] = [];
/** The stack [i] of a non-directory: one shared frozen array per layer (a node per file). */
export function single(i: number): readonly number[] {
  return singles[i] ??= Object.freeze([i]);
}

/** lstat of rel in layer i; undefined when it, or a directory above it, is not there. */
export function lstatIn(layers: Layers, i: number, rel: string): LStat | undefined {
  return layers.lstat(i, rel);
}

export function isOpaque(layers: Layers, facts: XattrFacts[], i: number, rel: string): boolean {
  return facts[i]!.opaque(layers.s(i, rel)) || hasOpaqueMarker(layers, i, rel);
}

/** The directory rel of layer i: opaque (by xattr or OCI marker), and its overlay.redirect. */
function dirMarksIn(layers: Layers, facts: XattrFacts[], i: number, rel: string): DirMarks {
  const m = facts[i]!.dirMarks(layers.s(i, rel));
  return m.opaque || !hasOpaqueMarker(layers, i, rel) ? m : { opaque: true, redirect: m.redirect };
}

/** Does the directory rel of layer i (an OCI-format one) hold `.wh..wh..opq`? */
function hasOpaqueMarker(layers: Layers, i: number, rel: string): boolean {
  return layers.markers(i) && lstatIn(layers, i, rel + '/' + WH_OPAQUE) !== undefined;
}

/** Is the object at abs (lstat st) in layer i an xattr whiteout (xattr.ts)? */
export function isXattrWhiteout(facts: XattrFacts[], i: number, abs: string, st: LStat | { isFile(): boolean; size: number }): boolean {
  if (!st.isFile() || Number(st.size) !== 0) return false;
  const f = facts[i]!;
  return f.xwhiteouts(abs.slice(0, abs.lastIndexOf('/'))) && f.xwhiteout(abs);
}

/** Does layer i (an OCI-format one) have a whiteout for rel ('/dir/name')? */
function ociWhiteout(layers: Layers, i: number, rel: string): boolean {
  const slash = rel.lastIndexOf('/');
  if (!layers.markers(i) || rel.length - slash - 1 + WH_PREFIX.length > 255) return false;
  return lstatIn(layers, i, rel.slice(0, slash + 1) + WH_PREFIX + rel.slice(slash + 1)) !== undefined;
}

/**
 * A directory's path in the upper layer and in the lower ones: they differ below a directory
 * whose upper copy redirects (redirect.ts), and per lower layer below a lower layer's redirect.
 */
export interface DirRels {
  readonly upper: string;
  /** The path below the upper layer: what a redirect written now records (Union.rels). */
  readonly lower: string;
  /** Lower layers where the path differs from `lower`: below a lower layer's redirect. */
  readonly byLayer?: ReadonlyMap<number, string>;
}

/** The path of the directory `at` in layer i. */
export function relIn(at: DirRels, i: number): string {
  return i === 0 ? at.upper : at.byLayer?.get(i) ?? at.lower;
}

/** A directory at the same path in every layer. */
export function sameRel(rel: string): DirRels {
  return { upper: rel, lower: rel };
}

/** One string for a directory's lower paths (a key of the shared lower listings). */
export function lowerKey(at: DirRels): string {
  if (at.byLayer === undefined) return at.lower;
  let k = at.lower;
  for (const [i, p] of at.byLayer) k += `\0${i}\0${p}`;
  return k;
}

/** The paths of the directory `name` below `at`, found as f. */
export function childRels(at: DirRels, name: string, f: Found): DirRels {
  const lower = f.below ?? at.lower + '/' + name;
  const upper = at.upper + '/' + name;
  if (f.paths === undefined) return { upper, lower };
  const byLayer = new Map<number, string>();
  for (const [i, p] of f.paths) if (p !== lower) byLayer.set(i, p);
  return byLayer.size === 0 ? { upper, lower } : { upper, lower, byLayer };
}

const NO_LAYERS: readonly number[] = [];

/**
 * Find `name` under the directory `at` whose merged layers are `stack`. A directory with a
 * redirect goes on in the layers below it at the path it names (the upper copy's is
 * Found.below): an absolute one from the root's lower layers below it (`rootLowers`,
 * lowerDirAt), a relative one (a name) in the parent's directories, as the kernel's
 * ovl_lookup does; Found.paths then has the path in each lower layer of the stack.
 */
export function findInLayers(layers: Layers, facts: XattrFacts[], stack: readonly number[], at: DirRels, name: string, rootLowers = NO_LAYERS): Found | null {
  let found: Found | null = null;
  let merged: number[] = [];
  let marker = isMarkerName(name);
  let list = stack;
  // Where the lower layers are searched: `name` in the parent's directories, until a redirect
  // names another name there (relative) or another parent (absolute).
  let parent = at;
  let last = name;
  let paths: Map<number, string> | undefined;
  for (let k = 0; k < list.length; k++) {
    const i = list[k]!;
    if (marker && layers.markers(i)) continue; // a marker there, never an object
    const rel = relIn(parent, i) + '/' + (i === 0 ? name : last);
    const st = lstatIn(layers, i, rel);
    if (st === undefined) {
      if (ociWhiteout(layers, i, rel)) break;
      continue;
    }
    if (isWhiteoutDev(st) || isXattrWhiteout(facts, i, layers.s(i, rel), st)) break;
    const type = typeOfMode(Number(st.mode));
    if (found === null) {
      if (type !== FileType.DIR) return { type, layer: i, st, stack: single(i) };
      merged = [i];
      found = { type, layer: i, st, stack: merged };
    } else {
      if (type !== FileType.DIR) break;
      merged.push(i);
    }
    if (i !== 0 && (parent !== at || last !== name || at.byLayer !== undefined)) (paths ??= new Map()).set(i, rel);
    if (k === list.length - 1 && !rootLowers.some((l) => l > i)) break; // nothing below it
    // its opaque mark and its redirect from one llistxattr
    const m = dirMarksIn(layers, facts, i, rel);
    if (m.opaque) break;
    const r = readRedirect(layers, i, m.redirect, rel);
    if (r === undefined) continue;
    if (i === 0) found.below = r.absolute ? r.path : at.lower + '/' + r.path;
    last = r.path.slice(r.path.lastIndexOf('/') + 1);
    marker = isMarkerName(last);
    if (r.absolute) {
      const d = lowerDirAt(layers, facts, rootLowers.filter((l) => l > i), r.path.slice(0, r.path.lastIndexOf('/')));
      parent = d.at;
      list = d.stack;
      k = -1;
    }
  }
  if (found !== null && paths !== undefined) found.paths = paths;
  return found;
}

/**
 * The directory `rel` in the union of the lower layers `rootLowers` alone, where an absolute
 * redirect names a path: its layers and its paths in them. Each component is looked up as
 * from the root, so an opaque directory or a whiteout on the way hides what the layers below
 * hold there, and a redirect on the way is followed, as the kernel's lookup of a redirect
 * does. No layers when rel is no directory there.
 */
export function lowerDirAt(layers: Layers, facts: XattrFacts[], rootLowers: readonly number[], rel: string): { stack: readonly number[]; at: DirRels } {
  let stack = rootLowers;
  let at = sameRel('');
  for (const name of rel === '' ? [] : rel.slice(1).split('/')) {
    const f = findInLayers(layers, facts, stack, at, name, rootLowers);
    if (f === null || f.type !== FileType.DIR) return { stack: NO_LAYERS, at: sameRel(rel) };
    stack = f.stack;
    at = childRels(at, name, f);
  }
  return { stack, at };
}
