/**
 * Host-side driver for the Linux guest built by test/e2e/guest/setup.sh: boots it under qemu
 * (software emulation: the /dev/kvm here is a nested PVM that cannot boot a stock kernel), runs
 * one shell script inside it, and returns the script's exit status, its output and the results
 * directory it wrote.
 *
 * Network safety: qemu user networking with restrict=on and no IPv6. The guest is 10.0.2.15/24
 * with no default route; the only things it can reach are the forwarded ports, each carried by
 * `guestfwd=tcp:10.0.2.100:PORT-cmd:socat STDIO TCP4:127.0.0.1:PORT` to the host's loopback.
 * socat gets a 256 KiB buffer and TCP_NODELAY (`,,` is qemu's escaped comma): with its default
 * 8 KiB pieces and Nagle, a WRITE's last piece waits for a delayed ACK.
 * restrict=on drops every other TCP connection and all UDP (except slirp's own DHCP/TFTP).
 * A test that needs the server to reach the guest (lock callbacks, UDP) gives it a tap device
 * instead (`tap`, from tap-net.ts): qemu then runs inside the test's network namespace, and
 * the guest is a host of its own on that namespace's bridge.
 *
 * Host hooks: a guest script can call `host_call NAME` (test/e2e/guest/lib.sh); the driver sees
 * the `@@host-call NAME` line on the serial console, runs `hooks[NAME]`, and writes its reply to
 * results/.reply-NAME, which releases the guest.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync, chmodSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file runs as dist/test/e2e/kernel/guest.js). */
export const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

/** Address of the host as the guest sees it (every forwarded port lives here). */
export const HOST_ADDR = '10.0.2.100';

export function guestCacheDir(): string {
  const base = process.env['UNION_NFSD_CACHE'] ?? join(REPO_ROOT, '.cache');
  return join(base, 'guest');
}

export type QemuCheck = { ok: true } | { ok: false; reason: string };

/** Whether a guest can boot here: qemu, socat and a built guest (setup.sh) are present. */
export function hasQemu(): QemuCheck {
  for (const tool of ['qemu-system-x86_64', 'socat']) {
    const r = spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    if (r.status !== 0) return { ok: false, reason: `${tool} not found (apt-get install qemu-system-x86 socat)` };
  }
  const cache = guestCacheDir();
  if (!existsSync(join(cache, 'ready'))) {
    return { ok: false, reason: `no guest image in ${cache}: run test/e2e/guest/setup.sh` };
  }
  return { ok: true };
}

export interface GuestTap {
  /** The network namespace the tap device is in (qemu runs there). */
  readonly netns: string;
  readonly ifname: string;
  /** The guest's address, ADDR/PREFIX. */
  readonly address: string;
  /** The guest's MAC address: guests on one bridge need their own. */
  readonly mac: string;
}

export interface GuestOptions {
  /** Shell script (busybox sh) run inside the guest, after lib.sh; cwd is a tmpfs. */
  script: string;
  /** Host loopback ports the guest may reach, each at 10.0.2.100:PORT (user networking). */
  ports: number[];
  /** A tap device instead of user networking; `ports` is then unused. */
  tap?: GuestTap;
  /**
   * The loopback address (127.0.0.0/8) the guest's connections come from on the host; default
   * the kernel's choice (127.0.0.1). Gives guests of one test addresses of their own.
   */
  sourceAddress?: string;
  /** Hard wall-clock limit; qemu is killed when it passes. Default 240 s. */
  timeoutMs?: number;
  /** Extra files placed next to run.sh in the guest's read-only /tests share. */
  files?: Record<string, string | Buffer>;
  /** Host hooks a guest script can call with `host_call NAME`; the return value is the reply. */
  hooks?: Record<string, () => Promise<string | void> | string | void>;
  /**
   * Boot with the root on NFS (init's guest.nfsroot): `root` is SERVER:/EXPORT,OPTIONS, `init`
   * the program to switch_root to (default /sbin/init). `script` then does not run: the root's
   * own init does, and writes results/ itself (at /mnt/results in the new root).
   */
  nfsroot?: { root: string; init?: string };
  /** More kernel command line (systemd.show_status=1, ...). */
  cmdline?: string;
  /** Kills the guest (SIGKILL to qemu: a crash, not a shutdown). */
  kill?: AbortSignal;
  /** Live serial console output, for logging. */
  onOutput?: (text: string) => void;
  memoryMb?: number;
}

export interface GuestResult {
  /** The script's exit status, or null when the guest never reported one (crash, timeout). */
  exitCode: number | null;
  /** What the script printed (results/output.log). */
  output: string;
  /** The whole serial console: kernel messages, init, the script's output. */
  serial: string;
  /** Host directory the guest wrote to (/results inside). Removed by cleanup(). */
  resultsDir: string;
  timedOut: boolean;
  durationMs: number;
  /** Parsed results/checks: one entry per `check` call in the script. */
  checks: { name: string; ok: boolean; detail: string }[];
  cleanup(): void;
}

export function parseChecks(text: string): GuestResult['checks'] {
  const checks: GuestResult['checks'] = [];
  for (const line of text.split('\n')) {
    const m = /^(ok|not ok) (\S+)(.*)$/.exec(line);
    if (m) checks.push({ name: m[2]!, ok: m[1] === 'ok', detail: m[3]!.trim() });
    else if (line.startsWith('    ') && checks.length > 0) checks[checks.length - 1]!.detail += `\n${line.slice(4)}`;
  }
  return checks;
}

export async function runGuest(o: GuestOptions): Promise<GuestResult> {
  const cache = guestCacheDir();
  const kernel = existsSync(join(cache, 'vmlinux')) ? join(cache, 'vmlinux') : join(cache, 'vmlinuz');
  const work = mkdtempSync(join(tmpdir(), 'union-nfsd-guest-'));
  const testsDir = join(work, 'tests');
  const resultsDir = join(work, 'results');
  for (const d of [testsDir, resultsDir]) spawnSync('mkdir', ['-p', d]);
  chmodSync(resultsDir, 0o777);
  const lib = readFileSync(join(REPO_ROOT, 'test/e2e/guest/lib.sh'), 'utf8');
  writeFileSync(join(testsDir, 'run.sh'), `${lib}\n# ---- test script ----\n${o.script}\n`);
  for (const [name, data] of Object.entries(o.files ?? {})) writeFileSync(join(testsDir, name), data);

  const bind = o.sourceAddress === undefined ? '' : `,,bind=${o.sourceAddress}`;
  const fwd = [...new Set(o.ports)].map((p) => `,guestfwd=tcp:${HOST_ADDR}:${p}-cmd:socat -b 262144 STDIO TCP4:127.0.0.1:${p},,nodelay${bind}`).join('');
  const net = o.tap === undefined
    ? ['-netdev', `user,id=n0,restrict=on,ipv6=off,net=10.0.2.0/24${fwd}`, '-device', 'virtio-net-pci,netdev=n0,romfile=']
    : ['-netdev', `tap,id=n0,ifname=${o.tap.ifname},script=no,downscript=no`, '-device', `virtio-net-pci,netdev=n0,romfile=,mac=${o.tap.mac}`];
  const ip = o.tap === undefined ? '' : ` guest.ip=${o.tap.address}`;
  const root = o.nfsroot === undefined ? '' : ` guest.nfsroot=${o.nfsroot.root}${o.nfsroot.init !== undefined ? ` guest.init=${o.nfsroot.init}` : ''}`;
  const args = [
    '-nodefaults', '-no-reboot', '-display', 'none', '-monitor', 'none',
    '-accel', 'tcg,thread=multi', '-cpu', 'max', '-smp', '2', '-m', String(o.memoryMb ?? 512),
    '-kernel', kernel, '-initrd', join(cache, 'initramfs.gz'),
    '-append', `console=ttyS0 quiet panic=-1 ipv6.disable=1 guest.script=/tests/run.sh${ip}${root}${o.cmdline !== undefined ? ` ${o.cmdline}` : ''}`,
    '-serial', 'stdio',
    ...net,
    '-virtfs', `local,path=${testsDir},mount_tag=tests,security_model=none,readonly=on`,
    '-virtfs', `local,path=${resultsDir},mount_tag=results,security_model=none`,
  ];
  const started = Date.now();
  const qemu = o.tap === undefined
    ? spawn('qemu-system-x86_64', args, { stdio: ['pipe', 'pipe', 'pipe'] })
    : spawn('ip', ['netns', 'exec', o.tap.netns, 'qemu-system-x86_64', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let serial = '';
  let pending = '';
  let timedOut = false;
  const hookQueue: Promise<void>[] = [];
  const runHook = async (name: string): Promise<void> => {
    let reply = '';
    try {
      const hook = o.hooks?.[name];
      reply = hook ? String((await hook()) ?? 'done') : `no such hook: ${name}`;
    } catch (err) {
      reply = `hook ${name} failed: ${(err as Error).stack ?? String(err)}`;
    }
    writeFileSync(join(resultsDir, `.reply-${name}`), `${reply}\n`);
  };
  const onData = (buf: Buffer): void => {
    const text = buf.toString('utf8');
    serial += text;
    o.onOutput?.(text);
    pending += text;
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl).replace(/\r$/, '');
      pending = pending.slice(nl + 1);
      const m = /@@host-call (\S+)/.exec(line);
      if (m) hookQueue.push(runHook(m[1]!));
    }
  };
  qemu.stdout.on('data', onData);
  qemu.stderr.on('data', onData);
  const timer = setTimeout(() => {
    timedOut = true;
    qemu.kill('SIGKILL');
  }, o.timeoutMs ?? 240_000);
  o.kill?.addEventListener('abort', () => qemu.kill('SIGKILL'));
  await new Promise<void>((resolve) => qemu.on('close', () => resolve()));
  clearTimeout(timer);
  await Promise.allSettled(hookQueue);

  const read = (name: string): string => {
    try {
      return readFileSync(join(resultsDir, name), 'utf8');
    } catch {
      return '';
    }
  };
  const status = read('exitcode').trim();
  return {
    exitCode: status === '' ? null : Number(status),
    output: read('output.log'),
    serial,
    resultsDir,
    timedOut,
    durationMs: Date.now() - started,
    checks: parseChecks(read('checks')),
    cleanup: () => rmSync(work, { recursive: true, force: true }),
  };
}
