/**
 * RENAME of a big lower directory through the Linux kernel client (issue 11): one qemu guest
 * boot runs test/e2e/guest/rename.sh against the server on the host's loopback. The lower holds
 * big/: 10,000 files in 100 directories, 1 GiB of data. The guest renames it with one
 * rename(2), and checks with `fstool treesum` (test/e2e/guest/fstool.c) that the tree under the
 * new name has the same paths, types, modes, owners, mtimes, sizes and fileids; the host checks
 * that nothing below the directory was copied to the upper layer (redirect.ts); then the server
 * is SIGKILLed and restarted, and the guest, its caches dropped, reads the tree again, data
 * included, against the host's treesum of the lower (the same binary, run here).
 * The rename(2)'s time as the guest measured it is logged, not judged (timing in tests is
 * noise); what is judged is that the rename copied nothing.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { guestCacheDir, hasQemu, runGuest, REPO_ROOT, type GuestResult } from './kernel/guest.js';
import { gate, missing } from './libnfs/env.js';
import { cleanupTemp, layerFingerprint, makeMemTemp } from './libnfs/oracle.js';
import { INSECURE_LOOPBACK, TestServer } from './libnfs/server.js';
import { freePort } from '../helpers/net.js';

const FILES = 10_000;
const DIRS = 100;
const TOTAL = 1 << 30;
/** Bounds a hang; the run takes about a minute under TCG, most of it reading the 1 GiB back. */
const GUEST_TIMEOUT_MS = 8 * 60_000;

const qemu = hasQemu();
const unmet = [...missing({ root: true, server: true }), ...(qemu.ok ? [] : [qemu.reason])];

/** big/d<j>/f<i>: FILES files of TOTAL bytes in all, each starting with its own name. */
function makeBig(lower: string): void {
  const block = Buffer.alloc(Math.ceil(TOTAL / FILES));
  for (let i = 0; i < block.length; i++) block[i] = (i * 131 + (i >> 8)) & 0xff;
  for (let j = 0; j < DIRS; j++) mkdirSync(join(lower, 'big', `d${j}`), { recursive: true });
  for (let i = 0; i < FILES; i++) {
    const size = Math.floor(TOTAL / FILES) + (i < TOTAL % FILES ? 1 : 0);
    const name = `big/d${i % DIRS}/f${i}`;
    const fd = openSync(join(lower, name), 'wx');
    try {
      const head = Buffer.from(`${name}\n`);
      writeSync(fd, head);
      writeSync(fd, block, 0, size - head.length);
    } finally {
      closeSync(fd);
    }
  }
}

/** The upper's entries below `rel`, as paths. */
function upperBelow(upper: string, rel: string): string[] {
  return (readdirSync(join(upper, rel), { recursive: true }) as string[]).sort();
}

interface Outcome {
  guest?: GuestResult;
  error?: string;
  upperAfterRename?: string[];
  restartError?: string;
  lowerSame?: boolean;
  serverLog?: string;
}

test.serial('a 10,000-file, 1 GiB lower directory renamed through the kernel client: nothing copied, the same tree after, and after a SIGKILL and restart', async (t) => {
  if (!gate(t, 'kernel-client rename e2e', unmet)) return;
  t.timeout(12 * 60_000);
  const base = makeMemTemp('krename');
  const out: Outcome = {};
  let server: TestServer | undefined;
  try {
    const lower = join(base, 'lower');
    makeBig(lower);
    const upper = join(base, 'upper');
    const workdir = join(base, 'work');
    mkdirSync(upper);
    mkdirSync(workdir);
    const fstool = join(guestCacheDir(), 'root', 'bin', 'fstool');
    const treeData = execFileSync(fstool, ['treesum', join(lower, 'big'), 'data'], { encoding: 'utf8' }).trim();
    const lowerBefore = layerFingerprint(lower);
    // fixed ports: the guest's forwards must reach the server after its restart
    const nfsPort = await freePort();
    const mountPort = await freePort();
    server = new TestServer({ lowers: [lower], upper, workdir, port: nfsPort, mountPort, portmap: false, clients: INSECURE_LOOPBACK });
    const ready = await server.start();
    const srv = server;
    out.guest = await runGuest({
      script: readFileSync(join(REPO_ROOT, 'test/e2e/guest/rename.sh'), 'utf8'),
      files: { 'params.sh': [`NFS_PORT=${ready.nfsPort}`, `MOUNT_PORT=${ready.mountPort}`, 'EXPORT=/union', `TREE_DATA='${treeData}'`, ''].join('\n') },
      ports: [ready.nfsPort, ready.mountPort],
      timeoutMs: GUEST_TIMEOUT_MS,
      hooks: {
        upper: () => {
          out.upperAfterRename = upperBelow(upper, 'moved');
          // the directory itself and its redirect record (OCI format), nothing of what it holds
          return out.upperAfterRename.join(' ') === '.wh..wh..redirect' ? 'moved/ alone' : `moved/ holds ${out.upperAfterRename.length} entries`;
        },
        restart: async () => {
          try {
            const r = await srv.restart('SIGKILL');
            if (r.nfsPort !== ready.nfsPort || r.mountPort !== ready.mountPort) throw new Error(`ports moved to ${r.nfsPort}/${r.mountPort}`);
            return `server restarted nfs=${r.nfsPort}`;
          } catch (err) {
            out.restartError = String(err);
            return `restart failed: ${String(err)}`;
          }
        },
      },
    });
    out.lowerSame = layerFingerprint(lower) === lowerBefore;
  } catch (err) {
    out.error = (err as Error).stack ?? String(err);
  } finally {
    out.serverLog = server?.output();
    await server?.stop().catch(() => undefined);
    cleanupTemp(base);
  }
  const g = out.guest;
  try {
    if (out.error !== undefined || g === undefined) {
      t.fail(`run failed: ${out.error ?? 'no guest'}\nserver log:\n${out.serverLog ?? ''}`);
      return;
    }
    t.log(`guest ${g.durationMs} ms, exit ${g.exitCode}${g.timedOut ? ' (TIMED OUT)' : ''}`);
    for (const line of g.output.split('\n').filter((l) => l.startsWith('# '))) t.log(line);
    const failed = g.checks.filter((c) => !c.ok).map((c) => `${c.name} ${c.detail}`.trim());
    t.deepEqual(failed, [], `guest output:\n${g.output.slice(-4000)}\nserver log:\n${out.serverLog ?? ''}`);
    t.deepEqual(g.checks.map((c) => c.name), ['r_mount', 'r_same_tree', 'r_old_name_gone', 'r_nothing_copied', 'r_same_after_restart',
      'r_data_after_restart', 'r_old_name_gone_after_restart', 'r_no_stale', 'r_umount']);
    t.is(out.restartError, undefined);
    t.true(out.lowerSame, 'the lower layer is byte-identical');
  } finally {
    g?.cleanup();
  }
});
