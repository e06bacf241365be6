/**
 * What the libnfs end-to-end tests need from the machine, checked once: root (for kernel
 * overlayfs, mknod and trusted.* xattrs), gcc + libnfs-dev (the C drivers), libnfs-utils
 * (nfs-ls, nfs-cat), rpcinfo, kernel overlayfs, and a built server. Outside CI a missing piece
 * skips the test with a loud message; with CI=true it fails instead, so a green CI cannot hide
 * a test that never ran.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';

/** Repository root (this file runs as dist/test/e2e/libnfs/env.js). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
/** UNFS_SERVER_CLI points the tests at another build of the server (e.g. a bisect checkout). */
export const serverCli = process.env.UNFS_SERVER_CLI ?? join(repoRoot, 'dist/src/cli.js');
/** The C sources stay in the source tree; tsc does not copy them. */
export const driverSrcDir = join(repoRoot, 'test/e2e/libnfs/driver');

export const inCi = process.env.CI === 'true';

/** Is cmd on the PATH? */
export function has(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export interface Needs {
  root?: boolean;
  overlay?: boolean;
  libnfsDev?: boolean;
  libnfsUtils?: boolean;
  rpcinfo?: boolean;
  server?: boolean;
  xattr?: boolean;
  /** ext4 on a loop device (test/helpers/loop-disk.ts): root, mkfs.ext4, /dev/loop-control. */
  loopExt4?: boolean;
}

/** Missing requirements as human-readable strings (empty = all present). */
export function missing(n: Needs): string[] {
  const out: string[] = [];
  if (n.root && process.getuid?.() !== 0) out.push('root (uid 0)');
  if (n.overlay) {
    let ok = false;
    try {
      ok = /\boverlay\b/.test(readFileSync('/proc/filesystems', 'utf8'));
    } catch { /* not Linux */ }
    if (!ok) out.push('kernel overlayfs (/proc/filesystems)');
  }
  if (n.libnfsDev && !(has('gcc') && existsSync('/usr/include/nfsc/libnfs.h'))) out.push('gcc + libnfs-dev');
  if (n.libnfsUtils && !(has('nfs-ls') && has('nfs-cat'))) out.push('libnfs-utils (nfs-ls, nfs-cat)');
  if (n.rpcinfo && !has('rpcinfo')) out.push('rpcinfo (rpcbind package)');
  if (n.xattr && !(has('setfattr') && has('getfattr'))) out.push('attr (setfattr/getfattr)');
  if (n.loopExt4) {
    if (process.getuid?.() !== 0) out.push('root (uid 0), to mount a loop device');
    if (!has('mkfs.ext4')) out.push('mkfs.ext4 (e2fsprogs)');
    if (!existsSync('/dev/loop-control')) out.push('loop devices (/dev/loop-control)');
    let ok = false;
    try {
      ok = /\bext4\b/.test(readFileSync('/proc/filesystems', 'utf8'));
    } catch { /* not Linux */ }
    if (!ok) out.push('ext4 in the kernel (/proc/filesystems)');
  }
  if (n.server && !existsSync(serverCli)) out.push(`a built server (${serverCli}; run npx tsc -b)`);
  return out;
}

/**
 * Returns true when the test may run. Otherwise logs a loud skip reason (outside CI) or fails
 * the test (CI=true) and returns false; the caller returns at once.
 */
export function requireEnv(t: ExecutionContext, n: Needs): boolean {
  return gate(t, 'libnfs e2e', missing(n));
}

/** requireEnv for a suite that computed what it lacks itself (`unmet` empty = run). */
export function gate(t: ExecutionContext, suite: string, unmet: readonly string[]): boolean {
  if (unmet.length === 0) return true;
  const msg = `${suite}: missing ${unmet.join(', ')}`;
  if (inCi) {
    t.fail(`${msg} (CI=true: tests may not skip)`);
    return false;
  }
  console.warn(`\n*** SKIPPED ${t.title}: ${msg} ***\n`);
  t.log(`SKIPPED: ${msg}`);
  t.pass();
  return false;
}
