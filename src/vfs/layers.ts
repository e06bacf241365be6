/**
 * Layers: the ordered layer list of one union, and the path of a union-relative name in a layer.
 *
 * Rule (overlayfs order): index 0 is the upper layer (absent for a read-only union), indexes
 * 1..N are the lowers, the first lower named being the top-most (index 1). A layer index is
 * part of an object's backing key, so it must not change meaning between runs: the upper is
 * always 0 even when absent.
 * Each layer has a format (whiteout.ts): the upper's is --whiteout, a lower directory's the
 * same unless declared (an image's layers are OCI).
 * Example: `--lower A:B --upper U` -> [U, A, B]; union path '/etc/x' in B is 'B/etc/x'.
 * Every path given out is resolved inside its layer, never through a symlink (beneath.ts).
 * Races: none here; lowers are assumed immutable while served (README).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FsError } from '../errors/fs-error.js';
import { Beneath } from './beneath.js';
import { pathBuf } from './names.js';
import type { LStat } from './lstat.js';
import type { WhiteoutFormat } from './whiteout.js';

export interface Layer {
  readonly index: number;
  /** Real path of the layer root as a binary string (latin1 of its bytes). */
  readonly root: string;
  readonly present: boolean;
  readonly dev: number;
  /** Paths inside the layer (absent layer: none). */
  readonly beneath: Beneath | undefined;
  /** How the layer marks deletions: in an 'oci' layer every `.wh.*` name is a marker, in an 'overlayfs' one it is a name like any other. */
  readonly format: WhiteoutFormat;
}

/** A directory, as the calls on it and in it need it. */
export interface DirAt {
  /** Its own path, for calls that do not follow a last symlink (rmdir, rename, lsetxattr). */
  readonly self: Buffer;
  /** The directory itself, followed (readdir), and the prefix of `/<name>` for what it holds. */
  readonly inside: string;
  /** Its name in caches keyed by path. */
  readonly key: string;
}

/** A directory of the workdir's, which no client reaches (a temporary being built): by name. */
export function workdirDir(s: string): DirAt {
  return { self: pathBuf(s), inside: s, key: s };
}

export class Layers {
  readonly list: Layer[];
  readonly hasUpper: boolean;

  /** formats: the upper's, and each lower's (default: the upper's). */
  constructor(lowers: readonly string[], upper: string | undefined, formats: { upper: WhiteoutFormat; lowers?: readonly WhiteoutFormat[] }) {
    if (lowers.length === 0) throw new FsError('EINVAL', 'at least one lower layer is required');
    const mk = (index: number, p: string | undefined): Layer => {
      const format = index === 0 ? formats.upper : formats.lowers?.[index - 1] ?? formats.upper;
      if (p === undefined) return { index, root: '', present: false, dev: -1, beneath: undefined, format };
      const real = fs.realpathSync(path.resolve(p));
      const st = fs.statSync(real);
      if (!st.isDirectory()) throw new FsError('ENOTDIR', `layer ${p} is not a directory`);
      const root = Buffer.from(real, 'utf8').toString('latin1');
      return { index, root, present: true, dev: st.dev, beneath: Beneath.acquire(root), format };
    };
    this.list = [mk(0, upper), ...lowers.map((l, i) => mk(i + 1, l))];
    this.hasUpper = upper !== undefined;
  }

  get upper(): Layer { return this.list[0]!; }

  /** Are `.wh.*` names markers in layer i (an OCI-format layer)? */
  markers(i: number): boolean {
    return this.list[i]!.format === 'oci';
  }

  /** The path of union-relative `rel` ('' or '/a/b') in layer `i`, good until the next await. */
  p(i: number, rel: string): Buffer {
    return this.at(i).path(rel);
  }

  /** The directory `rel` of layer `i` as a prefix for `/<name>` (binary string; beneath.ts dir). */
  dir(i: number, rel: string): string {
    return this.at(i).dir(rel);
  }

  /** lstat of `rel` in layer `i`; undefined when it or a directory above it is not there. */
  lstat(i: number, rel: string): LStat | undefined {
    return this.at(i).lstat(rel);
  }

  /** The directory `rel` of layer `i` opened for one caller, across awaits (beneath.ts hold). */
  hold(i: number, rel: string): { readonly inside: string; release(): void } {
    return this.at(i).hold(rel);
  }

  /** The directory `rel` of layer `i`, resolved inside it. */
  dirAt(i: number, rel: string): DirAt {
    return { self: this.p(i, rel), inside: this.dir(i, rel), key: this.s(i, rel) };
  }

  /** The union moved or removed the directory `rel` of layer `i`. */
  forget(i: number, rel: string): void {
    this.at(i).forget(rel);
  }

  /** The name of `rel` in layer `i`, for caches keyed by path (binary string); not for system calls. */
  s(i: number, rel: string): string {
    return this.list[i]!.root + rel;
  }

  /** Let go of the layers' directories (once, when the union closes). */
  release(): void {
    for (const l of this.list) l.beneath?.release();
  }

  private at(i: number): Beneath {
    const b = this.list[i]!.beneath;
    if (b === undefined) throw new FsError('EROFS', 'no upper layer');
    return b;
  }
}
