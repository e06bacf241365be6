/**
 * The oracle: kernel overlayfs mounted over a separate rendering (overlayfs format) of the same
 * layers, walked into the canonical tree description (tree.ts). Also temp-dir bookkeeping that
 * never removes a directory while something is still mounted below it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RenderedLayers } from './layers.js';
import { walkLocal, type Tree } from './tree.js';

export function makeTemp(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `unfs-${prefix}-`));
}

/**
 * makeTemp on a tmpfs (/dev/shm) when there is one: for suites that measure the server's
 * work at scale, not the disk's. Every call that changes names or attributes waits for its
 * fsyncs (vfs/metadata-sync.ts); on this machine's disk that took the kernel-scale suite's
 * rm -rf of 10,000 files from 29 s to 142 s under TCG, past its guest's time limit.
 */
export function makeMemTemp(prefix: string): string {
  return existsSync('/dev/shm') ? mkdtempSync(join('/dev/shm', `unfs-${prefix}-`)) : makeTemp(prefix);
}

function mountedUnder(dir: string): string[] {
  return readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '')
    .map((m) => m.replace(/\\040/g, ' ')).filter((m) => m === dir || m.startsWith(`${dir}/`));
}

/** rm -rf dir after unmounting whatever a test left mounted inside it. */
export function cleanupTemp(dir: string): void {
  for (const m of mountedUnder(dir).reverse()) {
    try {
      execFileSync('umount', [m]);
    } catch {
      execFileSync('umount', ['-l', m]);
    }
  }
  if (mountedUnder(dir).length > 0) return;
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch (e) {
    // Node's recursive rm builds full paths: a tree deeper than PATH_MAX (a test of deep
    // paths left it) needs rm(1), which works from directory descriptors
    if ((e as NodeJS.ErrnoException).code !== 'ENAMETOOLONG') throw e;
    execFileSync('rm', ['-rf', '--one-file-system', dir]);
  }
}

export interface OverlayMount {
  mnt: string;
  options: string;
  unmount(): void;
}

/**
 * Mount kernel overlayfs. With an upper layer, redirect_dir=on (directory rename without EXDEV,
 * what issue 4 asks of the server) and index=on (hard links survive copy-up) are asked for
 * first, falling back to plainer option sets if this kernel refuses them; the chosen options
 * are returned so tests can explain known differences.
 */
export function mountOverlay(layers: RenderedLayers, mnt: string): OverlayMount {
  mkdirSync(mnt, { recursive: true });
  const base = `lowerdir=${layers.lowers.join(':')}`;
  const candidates = layers.upper
    ? [
        `${base},upperdir=${layers.upper},workdir=${layers.workdir},redirect_dir=on,index=on,metacopy=off`,
        `${base},upperdir=${layers.upper},workdir=${layers.workdir},redirect_dir=on`,
        `${base},upperdir=${layers.upper},workdir=${layers.workdir}`,
      ]
    : [base];
  let lastErr = '';
  for (const options of candidates) {
    try {
      execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', options, mnt], { stdio: ['ignore', 'ignore', 'pipe'] });
      return {
        mnt,
        options,
        unmount: () => {
          try {
            execFileSync('umount', [mnt]);
          } catch {
            execFileSync('umount', ['-l', mnt]);
          }
        },
      };
    } catch (e) {
      lastErr = String((e as { stderr?: Buffer }).stderr ?? e);
    }
  }
  throw new Error(`mount -t overlay failed for every option set: ${lastErr}`);
}

/** Mount, walk and unmount: the merged tree kernel overlayfs shows for these layers. */
export function oracleTree(layers: RenderedLayers, mnt: string): Tree {
  const m = mountOverlay(layers, mnt);
  try {
    return walkLocal(mnt);
  } finally {
    m.unmount();
  }
}

/** Fingerprint of a layer directory: every object's type, mode, owner, links, size, content and mtime. */
export function layerFingerprint(dir: string): string {
  const t = walkLocal(dir, { times: true });
  const lines = [...t.entries.values()].map((e) => `${e.path}\t${e.type}\t${e.mode}\t${e.uid}\t${e.gid}\t${e.nlink}\t${e.size}\t${e.extra}\t${e.mtime}`);
  let xattrs = '';
  try {
    xattrs = execFileSync('getfattr', ['-R', '-P', '-d', '-m', '-', '--absolute-names', dir], { encoding: 'latin1', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch { /* no xattrs anywhere: getfattr exits 0 with no output; errors only on odd fs */ }
  return `${lines.sort().join('\n')}\n--xattrs--\n${xattrs}`;
}
