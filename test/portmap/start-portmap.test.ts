// Both ways of being found on port 111, checked with the Debian rpcinfo: serving our own
// portmapper, and registering with a real rpcbind (started here in a private mount namespace
// so its lock and socket files do not clash with any other rpcbind on the machine).
import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { promisify } from 'node:util';
import { IPPROTO_TCP, IPPROTO_UDP, PMAP_PROG, PMAPPROC, type Mapping } from '../../src/portmap/program.js';
import { startPortmap } from '../../src/portmap/start-portmap.js';
import { RpcClient } from '../helpers/rpc-client.js';
import { withPort111Lock } from '../helpers/port111.js';

const run = promisify(execFile);
const MAPPINGS: Mapping[] = [
  { prog: 100003, vers: 3, prot: IPPROTO_TCP, port: 20490 },
  { prog: 100005, vers: 3, prot: IPPROTO_TCP, port: 20490 },
  { prog: 100005, vers: 3, prot: IPPROTO_UDP, port: 20491 },
];
const CI = process.env['CI'] === 'true';

async function port111Free(): Promise<boolean> {
  const s = net.createServer();
  return new Promise((resolve) => {
    s.once('error', () => resolve(false));
    s.listen(111, '0.0.0.0', () => s.close(() => resolve(true)));
  });
}

async function rpcinfo(): Promise<string> {
  return (await run('rpcinfo', ['-p', '127.0.0.1'], { timeout: 10_000 })).stdout;
}

function lists(out: string, m: Mapping): boolean {
  const proto = m.prot === IPPROTO_TCP ? 'tcp' : 'udp';
  return new RegExp(`^\\s*${m.prog}\\s+${m.vers}\\s+${proto}\\s+${m.port}\\b`, 'm').test(out);
}

const rpcinfoPresent = existsSync('/usr/sbin/rpcinfo') || existsSync('/usr/bin/rpcinfo');
const rpcbindPresent = existsSync('/usr/sbin/rpcbind') || existsSync('/sbin/rpcbind');
const isRoot = process.getuid?.() === 0;
const free = await withPort111Lock(port111Free);
const ownReason = !rpcinfoPresent ? 'rpcinfo missing' : !isRoot ? 'not root: cannot bind port 111' : !free ? 'port 111 is in use' : undefined;
const rpcbindReason = ownReason ?? (rpcbindPresent ? undefined : 'rpcbind missing');
if (ownReason) console.warn(`SKIPPING own-portmapper test: ${ownReason}`);
if (rpcbindReason) console.warn(`SKIPPING rpcbind registration test: ${rpcbindReason}`);

(ownReason && !CI ? test.serial.skip : test.serial)('own portmapper on 111: rpcinfo -p lists NFS 3 and MOUNT 3; UDP GETPORT works', (t) => withPort111Lock(async () => {
  const pm = await startPortmap({ mappings: MAPPINGS, host: '127.0.0.1' });
  try {
    t.is(pm.mode, 'own');
    const out = await rpcinfo();
    for (const m of MAPPINGS) t.true(lists(out, m), `${JSON.stringify(m)} in\n${out}`);
    t.true(lists(out, { prog: PMAP_PROG, vers: 2, prot: IPPROTO_UDP, port: 111 }));
    const udp = await RpcClient.connect('udp', '127.0.0.1', 111);
    const r = await udp.ok(PMAP_PROG, 2, PMAPPROC.GETPORT, (w) => w.uint32(100005).uint32(3).uint32(IPPROTO_UDP).uint32(0));
    t.is(r.uint32(), 20491);
    udp.close();
  } finally {
    await pm.close();
  }
}));

(rpcbindReason && !CI ? test.serial.skip : test.serial)('with a system rpcbind on 111: registers with it and unregisters on close', (t) => withPort111Lock(async () => {
  const child = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs tmpfs /run && mkdir -p /run/rpcbind && exec rpcbind -f'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    let up = false;
    for (let i = 0; i < 50 && !up; i++) {
      await new Promise((r) => setTimeout(r, 100));
      up = await rpcinfo().then(() => true, () => false);
    }
    t.true(up, `rpcbind did not come up: ${stderr}`);
    const pm = await startPortmap({ mappings: MAPPINGS });
    t.is(pm.mode, 'rpcbind');
    const out = await rpcinfo();
    t.true(/\b100000\s+4\s+tcp\s+111\b/.test(out), 'this is the real rpcbind (it speaks v4)');
    for (const m of MAPPINGS) t.true(lists(out, m), `${JSON.stringify(m)} in\n${out}`);
    await pm.close();
    const after = await rpcinfo();
    for (const m of MAPPINGS) t.false(lists(after, m), `${JSON.stringify(m)} still registered`);
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}));

const statdPresent = existsSync('/usr/sbin/rpc.statd') || existsSync('/sbin/rpc.statd');
const statdReason = rpcbindReason ?? (statdPresent ? undefined : 'rpc.statd missing (nfs-common)');
if (statdReason) console.warn(`SKIPPING rpcbind + rpc.statd test: ${statdReason}`);

(statdReason && !CI ? test.serial.skip : test.serial)('alongside a system rpc.statd: NSM is left to it, the lock manager is registered', (t) => withPort111Lock(async () => {
  // rpcbind and rpc.statd as a distribution runs them, in a private mount namespace.
  const script = 'mount -t tmpfs tmpfs /run && mkdir -p /run/rpcbind && mount -t tmpfs tmpfs /var/lib/nfs && mkdir /var/lib/nfs/sm /var/lib/nfs/sm.bak && ' +
    '(rpcbind -f &) && sleep 0.5 && exec rpc.statd -F --no-notify';
  const child = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const statdPort = async (): Promise<number | undefined> => {
    const m = /^\s*100024\s+1\s+udp\s+(\d+)/m.exec(await rpcinfo().catch(() => ''));
    return m ? Number(m[1]) : undefined;
  };
  try {
    let port: number | undefined;
    for (let i = 0; i < 50 && port === undefined; i++) {
      await new Promise((r) => setTimeout(r, 100));
      port = await statdPort();
    }
    t.truthy(port, `rpc.statd did not register: ${stderr}`);
    const ours: Mapping[] = [
      { prog: 100021, vers: 4, prot: IPPROTO_UDP, port: 20490 },
      { prog: 100024, vers: 1, prot: IPPROTO_UDP, port: 20490 },
    ];
    const pm = await startPortmap({ mappings: ours, keepRegistered: [100024] });
    t.is(pm.mode, 'rpcbind');
    t.true(lists(await rpcinfo(), ours[0]!), 'NLM registered');
    t.is(await statdPort(), port, 'statd keeps its registration');
    await pm.close();
    t.is(await statdPort(), port, 'and keeps it after we close');
    t.false(lists(await rpcinfo(), ours[0]!));
  } finally {
    try { process.kill(-child.pid!, 'SIGTERM'); } catch { /* gone */ }
  }
}));
