/**
 * namei: looking a name up across the layers.
 *
 * Rule (overlayfs): search the parent's stack top-down. The first layer holding the name
 * decides: a whiteout there (char 0/0, xattr whiteout, or in an OCI-format layer a `.wh.<name>`
 * where the name itself is absent) means ENOENT; a non-directory is the object and hides everything
 * below; a directory merges with directories of the same name further down its parent's
 * stack, until an opaque one, a whiteout or a non-directory. An upper directory that redirects
 * (redirect.ts) merges with the lower directories at the path it names instead. A `.wh.*` name
 * is a marker, never an object, in an OCI-format layer, and a name like any other in an
 * overlayfs-format one (as kernel overlayfs reads its layers). Only lstat is used, on paths
 * resolved inside the layer (beneath.ts): no symlink is ever followed, whatever the layers, a
 * client or a local process put there.
 * Example: lowers A{d/}, B{d/ (opaque), d/x}, C{d/y} -> d stacks [A, B]; d/y is ENOENT.
 * Races: lowers are immutable; upper changes only through the union, synchronously with
 * respect to the path computed here.
 */
import { isMarkerName, WH_OPAQUE, WH_PREFIX } from './names.js';
import { isWhiteoutDev } from './whiteout.js';
import type { XattrFacts } from './xattr.js';
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
 * whose upper copy redirects (redirect.ts).
 */
export interface DirRels {
  readonly upper: string;
  readonly lower: string;
}

/** The path of the directory `at` in layer i. */
export function relIn(at: DirRels, i: number): string {
  return i === 0 ? at.upper : at.lower;
}

/** A directory at the same path in every layer. */
export function sameRel(rel: string): DirRels {
  return { upper: rel, lower: rel };
}

const NO_LAYERS: readonly number[] = [];

/**
 * Find `name` under the directory `at` whose merged layers are `stack`. A directory found in
 * the upper layer with a redirect goes on at the path it names (Found.below): an absolute one
 * from `rootLowers`, the root's lower layers (lowerStackAt), as the kernel does.
 */
export function findInLayers(layers: Layers, facts: XattrFacts[], stack: readonly number[], at: DirRels, name: string, rootLowers = NO_LAYERS): Found | null {
  const upperRel = at.upper + '/' + name;
  let lowerRel = at.lower === at.upper ? upperRel : at.lower + '/' + name;
  let found: Found | null = null;
  let merged: number[] = [];
  let marker = isMarkerName(name);
  let list = stack;
  for (let k = 0; k < list.length; k++) {
    const i = list[k]!;
    if (marker && layers.markers(i)) continue; // a marker there, never an object
    const rel = i === 0 ? upperRel : lowerRel;
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
      if (i !== 0) {
        if (isOpaque(layers, facts, i, rel)) return found;
        continue;
      }
      // the upper copy: its opaque mark and its redirect from one llistxattr
      const m = facts[0]!.dirMarks(layers.s(0, rel));
      if (m.opaque || hasOpaqueMarker(layers, 0, rel)) return found;
      const r = readRedirect(layers, m.redirect, rel, at.lower);
      if (r !== undefined) {
        found.below = lowerRel = r.path;
        marker = isMarkerName(r.path.slice(r.path.lastIndexOf('/') + 1));
        if (r.absolute) {
          list = lowerStackAt(layers, facts, rootLowers, r.path.slice(0, r.path.lastIndexOf('/')));
          k = -1;
        }
      }
      continue;
    }
    if (type !== FileType.DIR) break;
    merged.push(i);
    if (isOpaque(layers, facts, i, rel)) break;
  }
  return found;
}

/**
 * The layers of the directory `rel` in the union of the lower layers `rootLowers` alone, where
 * an absolute redirect names a path: each component is looked up as from the root, so an
 * opaque directory or a whiteout on the way hides what the layers below hold there, as the
 * kernel's lookup of a redirect does. Empty when rel is no directory there.
 */
export function lowerStackAt(layers: Layers, facts: XattrFacts[], rootLowers: readonly number[], rel: string): readonly number[] {
  let stack = rootLowers;
  let at = '';
  for (const name of rel === '' ? [] : rel.slice(1).split('/')) {
    const f = findInLayers(layers, facts, stack, sameRel(at), name);
    if (f === null || f.type !== FileType.DIR) return NO_LAYERS;
    stack = f.stack;
    at += '/' + name;
  }
  return stack;
}
