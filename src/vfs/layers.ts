/**
 * Layers: the ordered layer list of one union, and the path of a union-relative name in a layer.
 *
 * Rule (overlayfs order): index 0 is the upper layer (absent for a read-only union), indexes
 * 1..N are the lowers, the first lower named being the top-most (index 1). A layer index is
 * part of an object's backing key, so it must not change meaning between runs: the upper is
 * always 0 even when absent.
 * Example: `--lower A:B --upper U` -> [U, A, B]; union path '/etc/x' in B is 'B/etc/x'.
 * Races: none here; lowers are assumed immutable while served (README).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FsError } from '../errors/fs-error.js';
import { pathBuf } from './names.js';

export interface Layer {
  readonly index: number;
  /** Real path of the layer root as a binary string (latin1 of its bytes). */
  readonly root: string;
  readonly present: boolean;
  readonly dev: number;
}

export class Layers {
  readonly list: Layer[];
  readonly hasUpper: boolean;

  constructor(lowers: readonly string[], upper: string | undefined) {
    if (lowers.length === 0) throw new FsError('EINVAL', 'at least one lower layer is required');
    const mk = (index: number, p: string | undefined): Layer => {
      if (p === undefined) return { index, root: '', present: false, dev: -1 };
      const real = fs.realpathSync(path.resolve(p));
      const st = fs.statSync(real);
      if (!st.isDirectory()) throw new FsError('ENOTDIR', `layer ${p} is not a directory`);
      return { index, root: Buffer.from(real, 'utf8').toString('latin1'), present: true, dev: st.dev };
    };
    this.list = [mk(0, upper), ...lowers.map((l, i) => mk(i + 1, l))];
    this.hasUpper = upper !== undefined;
  }

  get upper(): Layer { return this.list[0]!; }

  /** Buffer path of union-relative `rel` ('' or '/a/b') in layer `i`. */
  p(i: number, rel: string): Buffer {
    return pathBuf(this.list[i]!.root + rel);
  }

  /** Binary-string path (for caches/sets keyed by path). */
  s(i: number, rel: string): string {
    return this.list[i]!.root + rel;
  }
}
