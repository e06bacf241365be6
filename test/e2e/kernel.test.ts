/**
 * The Linux kernel NFSv3 client against union-nfsd (issue 3). One qemu guest per file
 * (test/e2e/kernel/guest.ts; build it with test/e2e/guest/setup.sh) runs
 * test/e2e/guest/suite.sh against the server on the host's loopback; the tests below judge its
 * phases:
 *   (a) `mount.nfs SERVER:/union /mnt` with no options: NFSv4 probe, v3 fallback, portmapper on
 *       111 (only when 111 and 2049 are free here; the guest reaches them via guestfwd)
 *   (b) explicit vers=3,proto=tcp,port=,mountport=,nolock
 *   (c) the guest's view of the union (a tar of it, unpacked here) equals kernel overlayfs's
 *       view of the same layers; reads from every layer; whiteouts never show
 *   (d) writes, and every lower layer byte-identical afterwards
 *   (e) SIGKILL + restart of the server while the guest holds the union and open files
 * Layers: test/e2e/libnfs/layers.ts standardLayers(); the server gets L1 in OCI format, L2 in
 * overlayfs format (char 0/0 whiteouts, trusted.overlay.opaque), L3 and the upper in OCI format;
 * the oracle gets all of them in overlayfs format, as read-only lowers (upper on top).
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { guestCacheDir, hasQemu, runGuest, REPO_ROOT, type GuestResult } from './kernel/guest.js';
import { gate as gateOn, missing } from './libnfs/env.js';
import { renderLayer, standardLayers, type WhiteoutFormat } from './libnfs/layers.js';
import { cleanupTemp, layerFingerprint, makeTemp, mountOverlay } from './libnfs/oracle.js';
import { INSECURE_LOOPBACK, TestServer, withPort111Lock } from './libnfs/server.js';
import { diffTrees, walkLocal } from './libnfs/tree.js';
import { freePort } from '../helpers/net.js';

/** The suite takes ~15 s in the guest; this only bounds a hang (below ava's 5 min timeout). */
const GUEST_TIMEOUT_MS = 180_000;

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '0.0.0.0', () => s.close(() => resolve(true)));
  });
}

interface Outcome {
  guest?: GuestResult;
  portmap: boolean;
  error?: string;
  oracleDiff?: string[];
  /** Objects in the oracle's tree and in the guest's view (so an empty diff is not vacuous). */
  counts?: { oracle: number; guest: number };
  lowersBefore?: string[];
  lowersAfter?: string[];
  restartError?: string;
  serverLog?: string;
}

const qemu = hasQemu();
const unmet = [...missing({ root: true, overlay: true, xattr: true, server: true }), ...(qemu.ok ? [] : [qemu.reason])];

function gate(t: ExecutionContext): boolean {
  return gateOn(t, 'kernel-client e2e', unmet);
}

let outcome: Promise<Outcome> | undefined;

/** Everything happens once: layers, server, one guest boot; the tests read the outcome. */
function runOnce(): Promise<Outcome> {
  outcome ??= withPort111Lock(async () => {
    const base = makeTemp('kernel');
    const out: Outcome = { portmap: false };
    let server: TestServer | undefined;
    try {
      const set = standardLayers();
      const formats: WhiteoutFormat[] = ['oci', 'overlayfs', 'oci'];
      const lowers = set.lowers.map((nodes, i) => {
        const dir = join(base, `l${i + 1}`);
        renderLayer(nodes, dir, formats[i]!);
        return dir;
      });
      const upper = join(base, 'upper');
      renderLayer(set.upper, upper, 'oci');
      const workdir = join(base, 'work');
      mkdirSync(workdir);
      // The oracle: the same layers in overlayfs format, upper as the top-most read-only lower.
      const oracleLayers = ['upper', ...set.lowers.map((_, i) => `l${i + 1}`)].map((name, i) => {
        const dir = join(base, 'oracle', name);
        renderLayer(i === 0 ? set.upper : set.lowers[i - 1]!, dir, 'overlayfs');
        return dir;
      });
      const ov = mountOverlay({ lowers: oracleLayers }, join(base, 'oracle', 'mnt'));
      let oracle;
      try {
        oracle = walkLocal(ov.mnt);
      } finally {
        ov.unmount();
      }
      out.lowersBefore = lowers.map(layerFingerprint);

      out.portmap = (await portFree(111)) && (await portFree(2049));
      const mountPort = await freePort();
      server = new TestServer({
        lowers, upper, workdir, port: out.portmap ? 2049 : 0, mountPort, portmap: out.portmap, clients: INSECURE_LOOPBACK,
      });
      const ready = await server.start();
      const ports = [ready.nfsPort, ready.mountPort, ...(out.portmap ? [111] : [])];
      const bigMd5 = createHash('md5').update(readFileSync(join(lowers[2]!, 'big.bin'))).digest('hex');
      const params = [
        `NFS_PORT=${ready.nfsPort}`, `MOUNT_PORT=${ready.mountPort}`, `PORTMAP=${out.portmap ? 1 : 0}`,
        'EXPORT=/union', `BIG_MD5=${bigMd5}`,
      ].join('\n');
      const srv = server;
      out.guest = await runGuest({
        script: readFileSync(join(REPO_ROOT, 'test/e2e/guest/suite.sh'), 'utf8'),
        files: { 'params.sh': `${params}\n` },
        ports,
        timeoutMs: GUEST_TIMEOUT_MS,
        hooks: {
          restart: async () => {
            try {
              const r = await srv.restart('SIGKILL');
              return `server restarted nfs=${r.nfsPort} mount=${r.mountPort}`;
            } catch (err) {
              out.restartError = String(err);
              return `restart failed: ${String(err)}`;
            }
          },
        },
      });

      // (c) the guest's tar of the union, unpacked with owners, modes, devices and links.
      const tar = join(out.guest.resultsDir, 'union.tar');
      const unpacked = join(base, 'guest-view');
      mkdirSync(unpacked);
      try {
        execFileSync('tar', ['-xf', tar, '-C', unpacked, '--numeric-owner', '--same-owner', '-p'], { stdio: ['ignore', 'ignore', 'pipe'] });
        const view = walkLocal(unpacked);
        out.counts = { oracle: oracle.entries.size, guest: view.entries.size };
        out.oracleDiff = diffTrees(oracle, view, ['type', 'mode', 'uid', 'gid', 'nlink', 'size', 'extra']);
      } catch (err) {
        out.oracleDiff = [`cannot unpack the guest's tar: ${String((err as { stderr?: Buffer }).stderr ?? err)}`];
      }
      out.lowersAfter = lowers.map(layerFingerprint);
    } catch (err) {
      out.error = (err as Error).stack ?? String(err);
    } finally {
      out.serverLog = server?.output();
      await server?.stop().catch(() => undefined);
      out.guest?.cleanup();
      cleanupTemp(base);
    }
    return out;
  });
  return outcome;
}

function phase(o: Outcome, prefix: string): { ok: string[]; failed: string[] } {
  const checks = (o.guest?.checks ?? []).filter((c) => c.name.startsWith(prefix));
  return {
    ok: checks.filter((c) => c.ok).map((c) => c.name),
    failed: checks.filter((c) => !c.ok).map((c) => `${c.name} ${c.detail}`.trim()),
  };
}

/** Common preamble: the run itself worked and the guest said something about this phase. */
async function outcomeFor(t: ExecutionContext, prefix: string): Promise<{ o: Outcome; ok: string[] } | undefined> {
  const o = await runOnce();
  if (o.error) {
    t.fail(`run failed: ${o.error}\nserver log:\n${o.serverLog ?? ''}`);
    return undefined;
  }
  const g = o.guest!;
  t.log(`guest: ${g.durationMs} ms, exit ${g.exitCode}${g.timedOut ? ' (TIMED OUT)' : ''}`);
  const p = phase(o, prefix);
  if (p.failed.length > 0) {
    t.fail(`guest checks failed:\n${p.failed.join('\n')}\n--- guest output ---\n${g.output.slice(-6000)}\n--- server log ---\n${o.serverLog ?? ''}`);
    return undefined;
  }
  if (p.ok.length === 0) {
    t.fail(`no ${prefix} checks ran\n--- serial ---\n${g.serial.slice(-6000)}`);
    return undefined;
  }
  t.log(`${p.ok.length} checks passed: ${p.ok.join(' ')}`);
  t.pass();
  return { o, ok: p.ok };
}

test.serial('(a) mount.nfs with no options: NFSv4 probe, v3 fallback, portmapper on 111', async (t) => {
  if (!gate(t)) return;
  const o = await runOnce();
  if (!o.error && !o.portmap) {
    console.warn('\n*** SKIPPED (a): port 111 or 2049 is taken on this host ***\n');
    t.log('SKIPPED: port 111 or 2049 is taken');
    t.pass();
    return;
  }
  const r = await outcomeFor(t, 'a_');
  if (r) t.true(r.ok.includes('a_mount_no_options'));
});

test.serial('(b) explicit vers=3,proto=tcp,port=,mountport=,nolock', async (t) => {
  if (!gate(t)) return;
  const r = await outcomeFor(t, 'b_');
  if (r) t.deepEqual(r.ok, ['b_mount_explicit']);
});

test.serial('(c) reads from every layer, whiteouts and markers never show', async (t) => {
  if (!gate(t)) return;
  await outcomeFor(t, 'c_');
});

test.serial('(c) the guest sees exactly what kernel overlayfs shows for the same layers', async (t) => {
  if (!gate(t)) return;
  const o = await runOnce();
  if (o.error) return t.fail(o.error);
  t.log(`objects: oracle ${o.counts?.oracle}, guest ${o.counts?.guest}`);
  t.true((o.counts?.oracle ?? 0) > 100, 'the oracle tree is suspiciously small');
  t.deepEqual(o.oracleDiff, [], (o.oracleDiff ?? []).join('\n'));
});

test.serial('(d) write behaviours from the guest', async (t) => {
  if (!gate(t)) return;
  const r = await outcomeFor(t, 'd_');
  if (r) t.log((r.o.guest?.output ?? '').split('\n').filter((l) => l.startsWith('# lower hard link')).join('\n'));
});

test.serial('(d) lower layers are byte-identical afterwards', async (t) => {
  if (!gate(t)) return;
  const o = await runOnce();
  if (o.error) return t.fail(o.error);
  t.truthy(o.lowersBefore && o.lowersAfter);
  o.lowersBefore!.forEach((before, i) => t.is(o.lowersAfter![i], before, `lower L${i + 1} changed`));
});

test.serial('(e) SIGKILL + restart while mounted with open files: no ESTALE, no lost data', async (t) => {
  if (!gate(t)) return;
  const r = await outcomeFor(t, 'e_');
  if (!r) return;
  t.is(r.o.restartError, undefined);
  t.notRegex(r.o.guest!.serial, /Stale file handle|fileid changed/i);
});

test.after.always('guest timing', async () => {
  if (!outcome) return;
  const o = await outcome;
  if (o.guest) writeFileSync(join(guestCacheDir(), 'last-run.log'), `${o.guest.serial}\n`);
});
