/**
 * Temporary union layers for tests, in either whiteout format.
 * A layer is described as a list of entries; parents are created as needed:
 *   ['d/', 'dir'] ['d/f', 'file', 'text'] ['l', 'symlink', '/etc/passwd'] ['x', 'whiteout']
 *   ['d', 'opaque'] (marks the existing directory d opaque) ['p', 'fifo']
 * overlayfs-format whiteouts and opaque xattrs need root (mknod c 0 0, trusted.* xattrs).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';

export type Format = 'oci' | 'overlayfs';
export type Entry =
  | [string, 'dir']
  | [string, 'file', (string | Buffer)?]
  | [string, 'symlink', string]
  | [string, 'whiteout']
  | [string, 'opaque']
  | [string, 'fifo'];

export const isRoot = process.getuid?.() === 0;

/** Skip loudly when overlayfs-format fixtures cannot be made (not root, not CI). */
export function canOverlayFormat(): boolean {
  if (isRoot) return true;
  if (process.env['CI']) throw new Error('overlayfs-format fixtures need root in CI');
  console.warn('SKIPPED: overlayfs-format layers need root (mknod c 0 0, trusted xattrs)');
  return false;
}

export function mkTmp(prefix = 'unfs-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function buildLayer(root: string, format: Format, entries: readonly Entry[]): string {
  fs.mkdirSync(root, { recursive: true });
  for (const e of entries) {
    const rel = e[0].replace(/\/$/, '');
    const p = path.join(root, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    switch (e[1]) {
      case 'dir': fs.mkdirSync(p, { recursive: true }); break;
      case 'file': fs.writeFileSync(p, e[2] ?? ''); break;
      case 'symlink': fs.symlinkSync(e[2], p); break;
      case 'fifo': execFileSync('mkfifo', [p]); break;
      case 'whiteout':
        if (format === 'oci') fs.writeFileSync(path.join(path.dirname(p), '.wh.' + path.basename(p)), '');
        else execFileSync('mknod', [p, 'c', '0', '0']);
        break;
      case 'opaque':
        fs.mkdirSync(p, { recursive: true });
        if (format === 'oci') fs.writeFileSync(path.join(p, '.wh..wh..opq'), '');
        else execFileSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', p]);
        break;
    }
  }
  return root;
}

export interface TmpUnion {
  base: string;
  lowers: string[];
  upper: string;
  workdir: string;
  cleanup(): void;
}

/** Lower layers (first = top-most), an empty upper and a workdir under one temp dir. */
export function makeLayers(format: Format, lowers: readonly (readonly Entry[])[], upperEntries: readonly Entry[] = []): TmpUnion {
  const base = mkTmp();
  const ls = lowers.map((es, i) => buildLayer(path.join(base, `l${i}`), format, es));
  const upper = buildLayer(path.join(base, 'upper'), format, upperEntries);
  const workdir = path.join(base, 'work');
  fs.mkdirSync(workdir);
  return { base, lowers: ls, upper, workdir, cleanup: () => fs.rmSync(base, { recursive: true, force: true }) };
}

/** A digest of a tree: names, types, modes, owners, sizes, contents, link targets, rdev, mtimes, xattrs. */
export function treeDigest(root: string): string {
  const h = createHash('sha256');
  const walk = (rel: string): void => {
    const p = path.join(root, rel);
    const st = fs.lstatSync(p);
    h.update(`${rel}\0${st.mode}\0${st.uid}\0${st.gid}\0${st.size}\0${st.rdev}\0${st.mtimeMs}\0${st.nlink}\0`);
    if (st.isSymbolicLink()) h.update(fs.readlinkSync(p));
    else if (st.isFile()) h.update(fs.readFileSync(p));
    else if (st.isDirectory()) {
      for (const n of fs.readdirSync(p).sort()) walk(path.join(rel, n));
    }
  };
  walk('.');
  if (isRoot) {
    try {
      h.update(execFileSync('getfattr', ['-R', '-P', '-d', '-m', '-', '.'], { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] }));
    } catch { /* no xattrs */ }
  }
  return h.digest('hex');
}

export const rootCred = { uid: 0, gid: 0, gids: [] as number[] };
