/**
 * Issue 16: VMs boot from an image through the union. The lower is a real Debian root
 * filesystem (bookworm minbase + systemd, made by mmdebstrap: test/e2e/guest/debian-image.sh)
 * served as an OCI image with one more layer on top that this test adds (the check that
 * systemd runs, test/e2e/guest/vm-check, as vm-check.service). The export has a union per
 * client, so each VM writes to an upper of its own.
 *
 * VM a boots the guest kernel with its root on the union (the initramfs mounts it and
 * switch_roots into systemd, as an nfsroot initramfs does), reaches multi-user.target,
 * installs a local .deb with apt-get, writes a file and deletes one of the image's. VM b boots
 * afterwards over the same image and sees none of it. On the host: a's changes are in a's upper
 * only, b's upper has none of them, and the image's unpacked layers are unchanged.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hasQemu, runGuest, type GuestResult } from './kernel/guest.js';
import { gate, missing } from './libnfs/env.js';
import { cleanupTemp, layerFingerprint, makeTemp } from './libnfs/oracle.js';
import { TestServer } from './libnfs/server.js';
import { bootImage, DEBIAN, probeDeb } from './image/vm-image.js';
import { freePort } from '../helpers/net.js';

/** Under TCG a VM reaches multi-user.target in about 25 s; this bounds a hang. */
const BOOT_TIMEOUT_MS = 150_000;

function unmet(): string[] {
  const qemu = hasQemu();
  const tools = ['umoci', 'dpkg-deb', 'tar'].filter((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0);
  return [
    ...missing({ root: true, server: true }),
    ...(qemu.ok ? [] : [qemu.reason]),
    ...tools.map((c) => `${c} (apt-get install umoci dpkg tar)`),
    ...(existsSync(join(DEBIAN, 'ready')) ? [] : [`the Debian image (run test/e2e/guest/debian-image.sh; ${DEBIAN}/ready is missing)`]),
  ];
}

function report(r: GuestResult): string {
  return `exit ${String(r.exitCode)}, ${(r.durationMs / 1000).toFixed(1)} s${r.timedOut ? ' (timed out)' : ''}\n${r.output}\n${r.checks.filter((c) => !c.ok).map((c) => `not ok ${c.name} ${c.detail}`).join('\n')}\n--- serial (end) ---\n${r.serial.slice(-3000)}`;
}

test.serial('boot: a Debian VM boots with systemd from an image through the union, installs a package with apt-get, and a second VM over the same image sees none of its changes', async (t) => {
  if (!gate(t, 'boot e2e', unmet())) return;
  t.timeout(6 * 60_000);
  const base = makeTemp('boot');
  let server: TestServer | undefined;
  try {
    const image = bootImage(base);
    const deb = probeDeb(base);
    const port = await freePort();
    const cache = join(base, 'cache');
    const config = join(base, 'config.yaml');
    writeFileSync(config, [
      `image-cache: ${cache}`,
      'exports:',
      '  - path: /vm',
      `    image: ${image}`,
      `    upper: ${base}/vms/{client}/upper`,
      `    workdir: ${base}/vms/{client}/work`,
      // socat carries the guest's connections from unprivileged ports.
      '    clients: 127.0.0.0/8(rw,no_root_squash,insecure)',
    ].join('\n') + '\n');
    mkdirSync(join(base, 'vms'));
    server = new TestServer({ lowers: [], config, port });
    await server.start(120_000);
    const layers = readdirSync(join(cache, 'layers/sha256')).map((h) => join(cache, 'layers/sha256', h));
    t.is(layers.length, 2, 'the Debian layer and the test layer');
    const before = layers.map(layerFingerprint);

    const boot = (role: 'a' | 'b', address: string): Promise<GuestResult> => runGuest({
      script: '',
      ports: [port],
      sourceAddress: address,
      memoryMb: 1024,
      timeoutMs: BOOT_TIMEOUT_MS,
      files: { 'probe.deb': deb },
      cmdline: `vm.role=${role}`,
      nfsroot: { root: `10.0.2.100:/vm,vers=3,tcp,port=${port},mountport=${port},mountproto=tcp,nolock` },
    });
    for (const [role, address] of [['a', '127.0.0.2'], ['b', '127.0.0.3']] as const) {
      const r = await boot(role, address);
      try {
        t.log(`vm ${role}: ${(r.durationMs / 1000).toFixed(1)} s from qemu start to power-off; ${r.output.trim().split('\n').filter((l) => l.startsWith('vm-check:')).join('; ')}`);
        t.is(r.exitCode, 0, `vm ${role}: ${report(r)}`);
        t.true(r.checks.length >= (role === 'a' ? 9 : 8), `vm ${role} ran its checks: ${report(r)}`);
        for (const c of r.checks) t.true(c.ok, `vm ${role}: ${c.name}: ${c.detail}`);
      } finally {
        r.cleanup();
      }
    }

    const upper = (address: string, rel: string): string => join(base, 'vms', address, 'upper', rel);
    t.is(readFileSync(upper('127.0.0.2', 'root/vm-marker'), 'utf8'), 'written by vm a\n', "a's write is in a's upper");
    t.true(existsSync(upper('127.0.0.2', 'usr/bin/union-nfsd-probe')), "the package a installed is in a's upper");
    t.true(existsSync(upper('127.0.0.2', 'etc/.wh.motd')), "a's deletion is a whiteout in a's upper");
    for (const rel of ['root/vm-marker', 'usr/bin/union-nfsd-probe', 'etc/.wh.motd']) t.false(existsSync(upper('127.0.0.3', rel)), `b's upper has no ${rel}`);
    t.deepEqual(layers.map(layerFingerprint), before, 'the image layers are unchanged');
  } finally {
    await server?.stop();
    cleanupTemp(base);
  }
});
