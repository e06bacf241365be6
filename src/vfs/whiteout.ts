/**
 * Whiteouts and opaque directories, in both on-disk formats.
 *
 * Rule: a name in a layer directory is hidden from the layers below by
 *  - overlayfs: a character device 0/0 with that name (or a zero-size file carrying
 *    `trusted.overlay.whiteout`, read as the kernel reads it: xattr.ts); a directory stops
 *    the merge when it carries `trusted.overlay.opaque="y"` (or `user.overlay.opaque`);
 *  - OCI/aufs: an empty file `.wh.<name>` beside it; a directory is opaque when it contains
 *    `.wh..wh..opq`. Every other `.wh.*` name (`.wh..wh.plnk`, ...) is a marker and invisible.
 *    Only in an OCI-format layer (Layers.markers): in an overlayfs-format one, as in kernel
 *    overlayfs, `.wh.*` is a name like any other.
 * Within one layer a real entry wins over its own `.wh.` whiteout (OCI applies whiteouts to the
 * layers below only).
 * The overlayfs xattr marks are read by xattr.ts.
 * Writing: OCI by default (`.wh.<name>`, `.wh..wh..opq`, plain files); overlayfs on request
 * (a character device 0/0, `trusted.overlay.opaque=y`: special.ts), which needs root.
 * Example: lower B has /a/x and /a/y; lower A has /a/.wh.x -> merged /a lists y only.
 * Races: marker writes go to the upper layer only, whiteout first and object removal second,
 * so a crash leaves the old state visible rather than exposing a lower object.
 */
import * as fs from 'node:fs';
import { pathBuf, WH_OPAQUE, WH_PREFIX } from './names.js';
import type { DirAt } from './layers.js';
import type { LStat } from './lstat.js';
import type { XattrFacts } from './xattr.js';
import { makeWhiteoutDev, markOpaqueXattr } from './special.js';

export type WhiteoutFormat = 'oci' | 'overlayfs';

/** True when an lstat result is an overlayfs whiteout device. */
export function isWhiteoutDev(st: LStat | fs.Stats): boolean {
  return st.isCharacterDevice() && Number(st.rdev) === 0;
}

export function ociWhiteoutName(name: string): string {
  return WH_PREFIX + name;
}

export { WH_OPAQUE };

/** Create a whiteout for `name` in the upper directory `dir` (tmpPath: a workdir name, binary string). */
export function writeWhiteout(format: WhiteoutFormat, dir: DirAt, name: string, tmpPath: string): void {
  if (format === 'oci') {
    createMarker(pathBuf(dir.inside + '/' + ociWhiteoutName(name)));
    return;
  }
  // overlayfs: a 0/0 char device made in the workdir and renamed over the name.
  makeWhiteoutDev(pathBuf(tmpPath));
  fs.renameSync(pathBuf(tmpPath), pathBuf(dir.inside + '/' + name));
}

/** Mark an upper directory opaque. */
export function writeOpaque(format: WhiteoutFormat, dir: DirAt, facts: XattrFacts): void {
  if (format === 'oci') {
    createMarker(pathBuf(dir.inside + '/' + WH_OPAQUE));
  } else {
    markOpaqueXattr(dir.self);
  }
  facts.markOpaque(dir.key);
}

/**
 * An OCI marker file at p: made if missing, kept if there. Never through a symlink
 * (O_NOFOLLOW: ELOOP), so a link a local process puts under that name between the union's
 * check and this write cannot make the server create a file elsewhere.
 */
function createMarker(p: Buffer): void {
  fs.closeSync(fs.openSync(p, fs.constants.O_CREAT | fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW, 0o600));
}
