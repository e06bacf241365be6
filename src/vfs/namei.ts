/**
 * namei: looking a name up across the layers.
 *
 * Rule (overlayfs): search the parent's stack top-down. The first layer holding the name
 * decides: a whiteout there (char 0/0, xattr whiteout, or in an OCI-format layer a `.wh.<name>`
 * where the name itself is absent) means ENOENT; a non-directory is the object and hides everything
 * below; a directory merges with directories of the same name further down its parent's
 * stack, until an opaque one, a whiteout or a non-directory. A `.wh.*` name is a marker, never
 * an object, in an OCI-format layer, and a name like any other in an overlayfs-format one (as
 * kernel overlayfs reads its layers). Only lstat is used, on paths
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

export { lstatQuiet };

export interface Found {
  type: FileType;
  layer: number;
  st: LStat;
  stack: readonly number[];
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
  if (facts[i]!.opaque(layers.s(i, rel))) return true;
  return layers.markers(i) && lstatIn(layers, i, rel + '/' + WH_OPAQUE) !== undefined;
}

/** Is the object at abs (lstat st) in layer i an xattr whiteout (xattr.ts)? */
export function isXattrWhiteout(facts: XattrFacts[], i: number, abs: string, st: LStat | { isFile(): boolean; size: number }): boolean {
  if (!st.isFile() || Number(st.size) !== 0) return false;
  const f = facts[i]!;
  return f.xwhiteouts(abs.slice(0, abs.lastIndexOf('/'))) && f.xwhiteout(abs);
}

/** Does layer i (an OCI-format one) have a whiteout for name in dirRel? */
function ociWhiteout(layers: Layers, i: number, dirRel: string, name: string): boolean {
  if (!layers.markers(i) || name.length + WH_PREFIX.length > 255) return false;
  return lstatIn(layers, i, dirRel + '/' + WH_PREFIX + name) !== undefined;
}

/** Find `name` under the directory at `dirRel` whose merged layers are `stack`. */
export function findInLayers(layers: Layers, facts: XattrFacts[], stack: readonly number[], dirRel: string, name: string): Found | null {
  const rel = dirRel + '/' + name;
  let found: Found | null = null;
  let merged: number[] = [];
  const marker = isMarkerName(name);
  for (const i of stack) {
    if (marker && layers.markers(i)) continue; // a marker there, never an object
    const st = lstatIn(layers, i, rel);
    if (st === undefined) {
      if (ociWhiteout(layers, i, dirRel, name)) break;
      continue;
    }
    if (isWhiteoutDev(st) || isXattrWhiteout(facts, i, layers.s(i, rel), st)) break;
    const type = typeOfMode(Number(st.mode));
    if (found === null) {
      if (type !== FileType.DIR) return { type, layer: i, st, stack: single(i) };
      merged = [i];
      found = { type, layer: i, st, stack: merged };
      if (isOpaque(layers, facts, i, rel)) return found;
      continue;
    }
    if (type !== FileType.DIR) break;
    merged.push(i);
    if (isOpaque(layers, facts, i, rel)) break;
  }
  return found;
}

/** Layers whose copy of `rel` (a directory known in `stack`) hides or holds a name below the top. */
export function existsBelow(layers: Layers, facts: XattrFacts[], stack: readonly number[], dirRel: string, name: string): boolean {
  const lower = stack.filter((i) => i !== 0);
  return findInLayers(layers, facts, lower, dirRel, name) !== null;
}
