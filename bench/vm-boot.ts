/**
 * `sudo npm run bench:vm-boot`: VMs booting Debian with systemd from union-nfsd and from
 * nfs-ganesha, side by side. Not part of CI (each boot is 20-40 s under software emulation).
 *
 * - union-nfsd serves the image (test/e2e/guest/debian-image.sh's Debian root plus the boot
 *   check's layer) with a union per client: a new VM needs nothing prepared; its upper is made
 *   at its first MNT.
 * - nfs-ganesha (its defaults, VFS FSAL) serves a private copy of the flattened root per VM, as
 *   one must without a union: `cp -a` of `umoci unpack`'s tree, timed as the provisioning cost.
 * Rounds are interleaved (order alternating). Each VM boots the guest kernel with its root on
 * NFS, reaches multi-user.target, runs the check (which installs a .deb with apt-get) and powers
 * off. Reported per side, median over rounds: provisioning, qemu start to multi-user.target
 * (the guest's uptime when the check starts), the check with apt-get, qemu start to power-off,
 * the server's CPU seconds per boot, and the disk a VM's root costs (its upper, or its copy).
 * Environment: BOOT_ROUNDS (default 3).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cleanup, cpuSeconds, repo, run, say, startGanesha, startRpcbind, startUnion, tmpDirs, which } from './harness.js';
import { hasQemu, runGuest, type GuestResult } from '../test/e2e/kernel/guest.js';
import { bootImage, DEBIAN, probeDeb } from '../test/e2e/image/vm-image.js';
import { median } from './report.js';

const ROUNDS = Math.max(1, Number(process.env['BOOT_ROUNDS'] ?? 3) || 1);

interface Boot {
  provisionS: number;
  multiUserS: number;
  checkS: number;
  totalS: number;
  serverCpuS: number;
  diskMiB: number;
}

function duMiB(dir: string): number {
  return Number(run('du', ['-sk', dir]).split('\t')[0]) / 1024;
}

async function boot(ports: number[], nfsroot: string, address: string, deb: Buffer): Promise<GuestResult> {
  return runGuest({
    script: '', ports, sourceAddress: address, memoryMb: 1024, timeoutMs: 300_000,
    files: { 'probe.deb': deb }, cmdline: 'vm.role=a', nfsroot: { root: nfsroot },
  });
}

function timings(r: GuestResult): { multiUserS: number; checkS: number } {
  const start = /vm-check: role \w+, uptime ([\d.]+) s/.exec(r.output);
  const done = /vm-check: done at ([\d.]+) s/.exec(r.output);
  const failed = r.checks.filter((c) => !c.ok).map((c) => c.name);
  if (r.exitCode !== 0 || start === null || done === null || failed.length > 0) {
    throw new Error(`boot failed (exit ${String(r.exitCode)}${failed.length > 0 ? `, checks ${failed.join(', ')}` : ''}):\n${r.output}\n${r.serial.slice(-2000)}`);
  }
  return { multiUserS: Number(start[1]), checkS: Number(done[1]) - Number(start[1]) };
}

async function main(): Promise<void> {
  for (const bin of ['ganesha.nfsd', 'umoci', 'dpkg-deb', 'qemu-system-x86_64']) if (!which(bin)) throw new Error(`${bin} missing (apt-get install nfs-ganesha-vfs umoci dpkg qemu-system-x86)`);
  const qemu = hasQemu();
  if (!qemu.ok) throw new Error(qemu.reason);
  if (!fs.existsSync(path.join(DEBIAN, 'ready'))) throw new Error(`no Debian image: run test/e2e/guest/debian-image.sh (${DEBIAN})`);
  const base = fs.mkdtempSync('/tmp/unfs-vm-boot-');
  tmpDirs.push(base);
  const image = bootImage(base);
  const deb = probeDeb(base);

  say('flattening the image for ganesha (umoci unpack)');
  const flat = path.join(base, 'flat');
  run('umoci', ['unpack', '--image', image.slice('oci:'.length), flat], { timeoutMs: 300_000 });
  const roots = path.join(base, 'roots');
  fs.mkdirSync(roots);
  const provision: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const t0 = Date.now();
    run('cp', ['-a', path.join(flat, 'rootfs'), path.join(roots, `vm${i}`)], { timeoutMs: 300_000 });
    run('sync', ['--file-system', roots]);
    provision.push((Date.now() - t0) / 1000);
  }
  await startRpcbind();
  const g = await startGanesha(Array.from({ length: ROUNDS }, (_, i) =>
    `EXPORT { Export_Id = ${i + 1}; Path = ${path.join(roots, `vm${i}`)}; Pseudo = /vm${i}; Access_Type = RW; Squash = None; Protocols = 3; Transports = TCP; SecType = sys; FSAL { Name = VFS; } }\n`).join(''), base);

  const config = path.join(base, 'union.yaml');
  fs.mkdirSync(path.join(base, 'vms'));
  fs.writeFileSync(config, `image-cache: ${path.join(base, 'cache')}\nexports:\n  - path: /vm\n    image: ${image}\n` +
    `    upper: ${base}/vms/{client}/upper\n    workdir: ${base}/vms/{client}/work\n    clients: 127.0.0.0/8(rw,no_root_squash,insecure)\n`);
  const started = Date.now();
  const u = await startUnion(['--config', config], 'vm-boot', base);
  say(`union-nfsd ready in ${((Date.now() - started) / 1000).toFixed(1)} s (pulling and unpacking the image into its cache)`);

  const results: Record<'union-nfsd' | 'ganesha', Boot[]> = { 'union-nfsd': [], ganesha: [] };
  for (let i = 0; i < ROUNDS; i++) {
    const sides = i % 2 === 0 ? ['union-nfsd', 'ganesha'] as const : ['ganesha', 'union-nfsd'] as const;
    for (const side of sides) {
      const address = `127.0.0.${10 + i}`;
      const pid = side === 'union-nfsd' ? u.pid : g.child.pid!;
      const cpu0 = cpuSeconds(pid);
      const r = side === 'union-nfsd'
        ? await boot([u.nfs, u.mnt], `10.0.2.100:/vm,vers=3,tcp,port=${u.nfs},mountport=${u.mnt},mountproto=tcp,nolock`, address, deb)
        : await boot([g.nfs, g.mnt], `10.0.2.100:${path.join(roots, `vm${i}`)},vers=3,tcp,port=${g.nfs},mountport=${g.mnt},mountproto=tcp,nolock`, address, deb);
      try {
        const t = timings(r);
        const b: Boot = {
          provisionS: side === 'union-nfsd' ? 0 : provision[i]!,
          ...t,
          totalS: r.durationMs / 1000,
          serverCpuS: cpuSeconds(pid) - cpu0,
          diskMiB: duMiB(side === 'union-nfsd' ? path.join(base, 'vms', address) : path.join(roots, `vm${i}`)),
        };
        results[side].push(b);
        say(`round ${i + 1} ${side}: multi-user ${b.multiUserS.toFixed(1)} s, check ${b.checkS.toFixed(1)} s, total ${b.totalS.toFixed(1)} s, server CPU ${b.serverCpuS.toFixed(2)} s, root ${b.diskMiB.toFixed(1)} MiB`);
      } finally {
        r.cleanup();
      }
    }
  }
  const col = (side: keyof typeof results, k: keyof Boot): number => median(results[side].map((b) => b[k]));
  const rows: [string, keyof Boot, number][] = [
    ['provision a VM root (s)', 'provisionS', 1], ['qemu start to multi-user.target (s)', 'multiUserS', 1], ['check incl. apt-get install (s)', 'checkS', 1],
    ['qemu start to power-off (s)', 'totalS', 1], ['server CPU per boot (s)', 'serverCpuS', 2], ['disk per VM root (MiB)', 'diskMiB', 1],
  ];
  const out = [`VM boot, ${ROUNDS} interleaved rounds, medians (ratio: ganesha / union-nfsd, above 1.0: union-nfsd is cheaper)`, '',
    '| | union-nfsd | ganesha | ratio |', '| --- | --- | --- | --- |',
    ...rows.map(([label, k, d]) => {
      const a = col('union-nfsd', k), b = col('ganesha', k);
      return `| ${label} | ${a.toFixed(d)} | ${b.toFixed(d)} | ${a > 0 ? (b / a).toFixed(2) : '-'} |`;
    })];
  process.stdout.write(`${out.join('\n')}\n`);
  fs.mkdirSync(path.join(repo, 'bench/results'), { recursive: true });
  fs.writeFileSync(path.join(repo, 'bench/results/vm-boot.md'), `${out.join('\n')}\n`);
}

main().then(() => cleanup(), (err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  cleanup();
  process.exit(1);
});
