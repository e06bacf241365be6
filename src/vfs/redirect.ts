/**
 * redirect: where a renamed directory's lower part lives (overlayfs redirect_dir=on).
 *
 * Rule (overlayfs dir.c ovl_set_redirect, namei.c ovl_lookup): RENAME of a directory that has
 * lower parts copies up the directory alone (its own metadata and times) and records on the
 * upper copy the union path its lower directories have. A lookup that meets the record goes on
 * in the lower layers at that path, so nothing below the directory is ever copied, and the
 * move costs the same for ten files or ten million.
 *  - overlayfs format: the xattr `trusted.overlay.redirect`, which kernel overlayfs reads
 *    (redirect_dir=on or =follow). An absolute value ("/a/b") is looked up from the root of
 *    every lower layer; a relative one (a name, which the kernel writes for a move within one
 *    directory) in the parent's lower directories.
 *  - OCI format: the file `.wh..wh..redirect` in the directory, holding the same bytes. Its name
 *    is a marker (clients can neither see nor create it); an OCI tool that reads the upper as a
 *    layer takes it for the whiteout of a name no layer has, and sees the directory without its
 *    lower content, as it would see any redirected directory.
 * The union writes absolute redirects, of at most REDIRECT_MAX bytes; a longer one is not
 * written and the caller copies the subtree instead (the kernel answers EXDEV and leaves the
 * copy to mv). Records are read in every layer, as the kernel follows them: a lower layer that
 * was an upper (ours, in either format, or kernel overlayfs's) reads as it did then, its moved
 * directories merged with what the layers below it hold at the recorded paths.
 * Example: lower /a/{x,y}; RENAME /a -> /b: upper /b with redirect "/a", a whiteout at /a;
 * LOOKUP /b/x then finds lower /a/x.
 * Races: the OCI record is written whole in the workdir (fsynced on the thread pool) and
 * renamed into place, so a crash leaves the directory with the record or without it, never a
 * part of it; the xattr is one lsetxattr(2). Either is made durable by the rename's metadata
 * commit. Putting the OCI record in changes the directory's mtime, which is set back at once:
 * a crash between the two leaves the directory with the time of the crash as its mtime.
 */
import * as fs from 'node:fs';
import { FsError } from '../errors/fs-error.js';
import { pathBuf, WH_PREFIX } from './names.js';
import type { DirAt, Layers } from './layers.js';
import type { XattrFacts } from './xattr.js';
import { fsyncEach } from './metadata-sync.js';
import { setXattr } from './special.js';
import { copyTimes, timeOfNs } from './times.js';

/** The OCI-format record of a redirect. */
export const WH_REDIRECT = WH_PREFIX + WH_PREFIX + '.redirect';
const REDIRECT_XATTR = 'trusted.overlay.redirect';
/** Longest redirect written (bytes): well inside one ext4 xattr block. */
export const REDIRECT_MAX = 2048;

/**
 * The redirect recorded on the directory rel of layer i: an absolute union path, or a name
 * (relative: it replaces the directory's own name in its parent's lower directories); undefined
 * when it has none. `xattr`: the directory's overlay.redirect, already read with its other
 * marks (XattrFacts.dirMarks), the record in overlayfs format. A record that is not a path
 * inside the layers is EIO, as the kernel answers.
 */
export function readRedirect(layers: Layers, i: number, xattr: string | undefined, rel: string): { path: string; absolute: boolean } | undefined {
  const v = layers.markers(i) ? readRecordFile(layers, i, rel) : xattr;
  if (v === undefined) return undefined;
  if (!validRedirect(v)) throw new FsError('EIO', `invalid redirect record on ${rel}`);
  return { path: v, absolute: v.startsWith('/') };
}

/** An absolute path of names (no '.', '..', empty name or NUL), or one such name. */
function validRedirect(v: string): boolean {
  if (v.length === 0 || v.includes('\0')) return false;
  const names = v.startsWith('/') ? v.slice(1).split('/') : [v];
  return names.every((n) => n.length > 0 && n.length <= 255 && n !== '.' && n !== '..');
}

/** The OCI record's bytes in layer i; undefined when there is none. Never through a symlink. */
function readRecordFile(layers: Layers, i: number, rel: string): string | undefined {
  const st = layers.lstat(i, rel + '/' + WH_REDIRECT);
  if (st === undefined) return undefined;
  if (!st.isFile() || st.size > BigInt(REDIRECT_MAX)) throw new FsError('EIO', `invalid redirect record on ${rel}`);
  const fd = fs.openSync(layers.p(i, rel + '/' + WH_REDIRECT), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const buf = Buffer.alloc(REDIRECT_MAX + 1);
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    return buf.subarray(0, n).toString('latin1');
  } finally {
    fs.closeSync(fd);
  }
}

/** A redirect ready to be put on a directory (recordRedirect). */
export interface PreparedRedirect {
  readonly value: string;
  /** OCI format: the record, whole and durable, in the workdir. */
  readonly tmp?: Buffer;
}

/**
 * The record of `value` (a union path, absolute) made ready before the synchronous part of a
 * rename: in OCI format written and fsynced in the workdir (tmp), in overlayfs format nothing
 * yet. undefined when the value is longer than REDIRECT_MAX.
 */
export async function prepareRedirect(oci: boolean, value: string, tmp: string): Promise<PreparedRedirect | undefined> {
  if (value.length > REDIRECT_MAX) return undefined;
  if (!oci) return { value };
  const p = pathBuf(tmp);
  fs.writeFileSync(p, pathBuf(value), { flag: 'wx', mode: 0o600 });
  const [err] = await fsyncEach([p]);
  if (err != null) {
    fs.rmSync(p, { force: true });
    throw new FsError(err, 'fsync of a redirect record');
  }
  return { value, tmp: p };
}

/**
 * Put a prepared record on the upper directory `dir`. Its mtime stays what it was: the OCI
 * record is no entry of the directory's (as the xattr changes only the ctime).
 */
export function recordRedirect(r: PreparedRedirect, dir: DirAt, facts: XattrFacts): void {
  if (r.tmp !== undefined) {
    const st = fs.lstatSync(dir.self, { bigint: true });
    fs.renameSync(r.tmp, pathBuf(dir.inside + '/' + WH_REDIRECT));
    copyTimes(dir.self, timeOfNs(st.atimeNs), timeOfNs(st.mtimeNs));
  } else {
    setXattr(dir.self, REDIRECT_XATTR, pathBuf(r.value));
  }
  facts.markRedirect(dir.key, r.value);
}

/** A prepared record that will not be used. */
export function dropRedirect(r: PreparedRedirect | undefined): void {
  if (r?.tmp !== undefined) fs.rmSync(r.tmp, { force: true });
}
