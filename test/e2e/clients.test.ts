/**
 * Issue 13, end to end: client rules, squashing, secure/insecure and read-only exports, proven
 * with libnfs (the ops driver and nfs-ls) and nfs-utils' showmount running in network
 * namespaces, so each client has an address of its own (netns.ts). One server serves two
 * exports of one shared lower from a configuration file:
 *
 *   /a  198.18.1.2(rw)  198.18.2.0/24(ro)  198.18.3.2(rw,no_root_squash,insecure)
 *   /b  198.18.2.2(rw,all_squash,anonuid=1234,anongid=1234,insecure)
 *
 * libnfs binds a port below 1024 when it runs as root and an unprivileged one otherwise, so
 * running it as nobody (setpriv) is how a client calls from an insecure port.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import test from 'ava';
import { compileDriver, run } from './libnfs/driver.js';
import { gate, missing, repoRoot } from './libnfs/env.js';
import { cleanupTemp, layerFingerprint, makeTemp } from './libnfs/oracle.js';
import { TestServer, withPort111Lock } from './libnfs/server.js';
import { canMakeNamespaces, inHost, makeClientHosts, type ClientHost } from './clients/netns.js';

const rawCall = path.join(repoRoot, 'dist/test/e2e/clients/raw-call.js');
const cli = path.join(repoRoot, 'dist/src/cli.js');

/** Runs the ops driver in a client's namespace: "OK" or "ERR <errno>" per line, or the mount failure. */
async function opsIn(ops: string, h: ClientHost, url: string, lines: string[], user?: 'nobody'): Promise<{ mount: string; results: string[] }> {
  const [cmd, argv] = inHost(h, [ops, url], user);
  const r = await run(cmd, argv, { input: lines.join('\n') + '\n', timeoutMs: 60_000 });
  if (r.code !== 0) return { mount: r.stderr.trim(), results: [] };
  // "<n>\t<op>\tOK[\t<result>]" or "<n>\t<op>\tERR\t<errno>"
  return { mount: 'ok', results: r.stdout.trim().split('\n').map((l) => { const f = l.split('\t'); return f[2] === 'OK' ? `OK${f[3] !== undefined ? ` ${f[3]}` : ''}` : `ERR ${f[3]}`; }) };
}

/** GETATTR of a handle, or MNT, from a client's namespace with the bare RPC caller. */
async function rawIn(h: ClientHost, port: number, ...args: string[]): Promise<string> {
  const [cmd, argv] = inHost(h, [process.execPath, rawCall, args[0]!, h.server, String(port), ...args.slice(1)]);
  const r = await run(cmd, argv, { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`raw-call ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

function unmet(): string[] {
  const out = missing({ root: true, libnfsDev: true, libnfsUtils: true, server: true });
  const ns = canMakeNamespaces();
  if (ns !== undefined) out.push(ns);
  const r = fs.existsSync('/usr/sbin/showmount') || fs.existsSync('/sbin/showmount');
  if (!r) out.push('showmount (nfs-common)');
  return out;
}

// Serial: both tests give client i the address 198.18.i.2.
test.serial('client rules, squashing, secure ports and ro exports, from clients with their own addresses', async (t) => {
  if (!gate(t, 'client rules e2e', unmet())) return;
  t.timeout(5 * 60_000);
  const base = makeTemp('unfs-clients-');
  const { hosts, remove } = makeClientHosts(3);
  const [c1, c2, c3] = hosts as [ClientHost, ClientHost, ClientHost];
  t.teardown(() => {
    remove();
    cleanupTemp(base);
  });
  const lower = path.join(base, 'lower');
  fs.mkdirSync(lower);
  fs.writeFileSync(path.join(lower, 'f'), 'lower data\n', { mode: 0o644 });
  for (const u of ['a', 'b']) {
    fs.mkdirSync(path.join(base, u, 'upper'), { recursive: true });
    fs.mkdirSync(path.join(base, u, 'work'));
    // The union's root is the upper's: world-writable, so squashed callers may create in it.
    fs.chmodSync(path.join(base, u, 'upper'), 0o1777);
  }
  const lowerBefore = layerFingerprint(lower);
  const config = path.join(base, 'exports.yaml');
  fs.writeFileSync(config, `exports:
  - path: /a
    lower: ${lower}
    upper: ${base}/a/upper
    workdir: ${base}/a/work
    clients: "198.18.1.2(rw) 198.18.2.0/24(ro) 198.18.3.2(rw,no_root_squash,insecure)"
  - path: /b
    lower: [${lower}]
    upper: ${base}/b/upper
    workdir: ${base}/b/work
    clients:
      - 198.18.2.2(rw,all_squash,anonuid=1234,anongid=1234,insecure)
`);
  const ops = await compileDriver('ops');

  await withPort111Lock(async () => {
    const server = new TestServer({ config, host: '0.0.0.0', lowers: [], portmap: true });
    t.teardown(() => server.stop());
    const { nfsPort } = await server.start();
    const url = (h: ClientHost, exp: string, q = '') => `nfs://${h.server}${exp}?nfsport=${nfsPort}&mountport=${nfsPort}${q}`;
    const script = async (h: ClientHost, exp: string, lines: string[], o: { user?: 'nobody'; q?: string } = {}) => {
      const r = await opsIn(ops, h, url(h, exp, o.q), lines, o.user);
      return { mount: r.mount, results: r.results.map((x) => (x.startsWith('OK') ? 'OK' : x)) };
    };
    const upper = (u: string, name: string) => fs.lstatSync(path.join(base, u, 'upper', name));

    // c1, rw with root squashed, from a privileged port (libnfs as root).
    let s = await script(c1, '/a', ['create c1-root 644', 'cat f', 'chown c1-root 0 0', 'chmod f 4755', 'mkdir c1-dir 755']);
    t.is(s.mount, 'ok');
    t.deepEqual(s.results, ['OK', 'OK', 'ERR EPERM', 'ERR EPERM', 'OK']);
    t.deepEqual([upper('a', 'c1-root').uid, upper('a', 'c1-root').gid], [65534, 65534], 'root squashed to nobody');
    t.is(fs.readFileSync(path.join(lower, 'f'), 'utf8'), 'lower data\n');
    t.is(fs.statSync(path.join(lower, 'f')).mode & 0o7777, 0o644, 'the lower is never touched');
    t.false(fs.existsSync(path.join(base, 'a/upper/f')), 'no copy-up for a refused chmod');

    // c1 from an unprivileged port: /a is `secure` for it, so MNT is refused (MNT3ERR_PERM).
    s = await script(c1, '/a', ['create c1-user 644'], { user: 'nobody', q: '&uid=0&gid=0' });
    t.regex(s.mount, /PERM/);
    t.false(fs.existsSync(path.join(base, 'a/upper/c1-user')));

    // c2 is in 198.18.2.0/24: read-only on /a.
    s = await script(c2, '/a', ['cat f', 'create c2 644', 'unlink f']);
    t.deepEqual(s.results, ['OK', 'ERR EROFS', 'ERR EROFS']);
    t.false(fs.existsSync(path.join(base, 'a/upper/c2')));
    t.false(fs.existsSync(path.join(base, 'a/upper/.wh.f')));

    // c3: rw, no_root_squash, insecure: a user process claiming uid 0 acts as root.
    s = await script(c3, '/a', ['create c3 644', 'chown c3 0 0'], { user: 'nobody', q: '&uid=0&gid=0' });
    t.deepEqual(s.results, ['OK', 'OK']);
    t.is(upper('a', 'c3').uid, 0);

    // c2 on /b: all_squash to 1234 whoever it claims to be, from any port; /b's changes stay in /b.
    for (const [name, user, q] of [['b-root', undefined, ''], ['b-user', 'nobody', '&uid=0&gid=0']] as const) {
      s = await script(c2, '/b', [`create ${name} 600`], { ...(user && { user }), q });
      t.deepEqual(s.results, ['OK'], name);
      t.deepEqual([upper('b', name).uid, upper('b', name).gid], [1234, 1234], name);
    }
    t.false(fs.existsSync(path.join(base, 'a/upper/b-root')));

    // Clients no rule admits: c3 on /b, and the server's own loopback (not in /a's rules).
    s = await script(c3, '/b', ['stat f']);
    t.regex(s.mount, /ACCES/);
    const local = await run('nfs-ls', [`nfs://127.0.0.1/a?nfsport=${nfsPort}&mountport=${nfsPort}`], { timeoutMs: 30_000 });
    t.not(local.code, 0);
    t.regex(local.stderr + local.stdout, /ACCES/);

    // A handle is checked on every call, not only at MNT: /b's root handle, taken by c2,
    // replayed by c1 (no rule of /b admits it) is refused; c2 itself keeps using it.
    const call = (h: ClientHost, ...args: string[]) => rawIn(h, nfsPort, ...args);
    const [mntStat, handle] = (await call(c2, 'mnt', '/b')).split(' ');
    t.is(mntStat, '0');
    t.is(await call(c2, 'getattr', handle!), '0');
    t.is(await call(c1, 'getattr', handle!), '13', 'NFS3ERR_ACCES');

    // showmount -e (nfs-utils, through the portmapper on 111) lists both exports and their clients.
    const [cmd, argv] = inHost(c1, ['showmount', '--no-headers', '-e', c1.server]);
    const sm = await run(cmd, argv, { timeoutMs: 30_000 });
    t.is(sm.code, 0, sm.stderr);
    t.deepEqual(sm.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/)), [
      ['/a', '198.18.1.2,198.18.3.2,198.18.2.0/24'],
      ['/b', '198.18.2.2'],
    ]);
  });
  t.is(layerFingerprint(lower), lowerBefore, 'the lower is byte-identical');
});

test.serial('a union per client over a shared lower; reset of one client; SIGHUP reload without ESTALE', async (t) => {
  if (!gate(t, 'client rules e2e', unmet())) return;
  t.timeout(5 * 60_000);
  const base = makeTemp('unfs-fleet-');
  const { hosts, remove } = makeClientHosts(2);
  const [c1, c2] = hosts as [ClientHost, ClientHost];
  t.teardown(() => {
    remove();
    cleanupTemp(base);
  });
  const lower = path.join(base, 'lower');
  fs.mkdirSync(path.join(lower, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(lower, 'etc/hostname'), 'base\n');
  fs.mkdirSync(path.join(base, 'fleet'));
  const control = path.join(base, 'control.sock');
  const config = path.join(base, 'fleet.yaml');
  const write = (rule: string, extra = '') => fs.writeFileSync(config, `control: ${control}
exports:
  - path: /fleet
    lower: ${lower}
    upper: ${base}/fleet/{client}/upper
    workdir: ${base}/fleet/{client}/work
    names: {node1: ${c1.address}}
    clients: "${rule}"
${extra}`);
  write('198.18.0.0/16(rw,no_root_squash,insecure)');
  const lowerBefore = layerFingerprint(lower);
  const ops = await compileDriver('ops');
  const server = new TestServer({ config, host: '0.0.0.0', lowers: [] });
  t.teardown(() => server.stop());
  let { nfsPort } = await server.start();
  const url = (h: ClientHost, exp = '/fleet') => `nfs://${h.server}${exp}?nfsport=${nfsPort}&mountport=${nfsPort}`;

  // Each client writes its own /etc/hostname over the same lower and sees only its own; both
  // clients' first calls (each opening its union, each copying up the same lower file) and
  // four more sessions of c1 are in flight together.
  const sessions = await Promise.all([c1, c2, c1, c1, c1, c1].map((h, k) => opsIn(ops, h, url(h),
    k < 2 ? [`write etc/hostname 0 64 ${h === c1 ? 1 : 2}`, `create mine-${h.address} 644`] : [`create extra-${k} 644`])));
  for (const r of sessions) t.true(r.results.every((x) => x.startsWith('OK')), `${r.mount} ${r.results.join(', ')}`);
  t.deepEqual(fs.readdirSync(path.join(base, 'fleet/node1/upper')).filter((n) => n.startsWith('extra-')).sort(), ['extra-2', 'extra-3', 'extra-4', 'extra-5'], 'one union for c1');

  // SIGKILL and restart: what was acknowledged is there, in each client's own union.
  const hostnames = async () => Promise.all([c1, c2].map(async (h) => (await opsIn(ops, h, url(h), ['stat etc/hostname', `stat mine-${h.address}`])).results));
  const beforeKill = await hostnames();
  ({ nfsPort } = await server.restart('SIGKILL'));
  t.deepEqual(await hostnames(), beforeKill);
  const seen = async (h: ClientHost) => (await opsIn(ops, h, url(h), ['ls .']))?.results[0] ?? '';
  t.regex(await seen(c1), new RegExp(`mine-${c1.address.replace(/\./g, '\\.')}`));
  t.notRegex(await seen(c1), new RegExp(`mine-${c2.address.replace(/\./g, '\\.')}`));
  t.regex(await seen(c2), new RegExp(`mine-${c2.address.replace(/\./g, '\\.')}`));
  t.deepEqual(fs.readdirSync(path.join(base, 'fleet')).sort(), [c2.address, 'node1'].sort());
  t.is(fs.readFileSync(path.join(lower, 'etc/hostname'), 'utf8'), 'base\n', 'the lower is never touched');
  const hostnameOf = async (h: ClientHost) => (await opsIn(ops, h, url(h), ['stat etc/hostname'])).results[0] ?? '';
  const c2Before = await hostnameOf(c2);

  // Reset node1 (c1) with the documented command; c2 keeps its changes.
  const reset = await run(process.execPath, [cli, '--control', control, '--export', '/fleet', '--reset-client', 'node1'], { timeoutMs: 30_000 });
  t.is(reset.code, 0, reset.stderr);
  t.false(fs.existsSync(path.join(base, 'fleet/node1/upper')));
  t.notRegex(await seen(c1), /mine-/);
  t.regex((await opsIn(ops, c1, url(c1), ['cat etc/hostname'])).results[0] ?? '', /^OK 5\b/, 'node1 is back to the base');
  t.is(await hostnameOf(c2), c2Before);
  const bad = await run(process.execPath, [cli, '--control', control, '--export', '/nope', '--reset-client', 'node1'], { timeoutMs: 30_000 });
  t.is(bad.code, 1);
  t.regex(bad.stderr, /no export \/nope/);

  // SIGHUP: c2 loses /fleet, /extra appears; c1's handle of /fleet, taken before, stays valid.
  const [mntStat, handle] = (await rawIn(c1, nfsPort, 'mnt', '/fleet')).split(' ');
  t.is(mntStat, '0');
  write(`${c1.address}(rw,no_root_squash,insecure)`, `  - path: /extra
    lower: ${lower}
    state: ${base}/extra-state
    clients: "*(ro,insecure)"
`);
  server.signal('SIGHUP');
  await server.waitFor(/SIGHUP: serving/);
  t.is(await rawIn(c1, nfsPort, 'getattr', handle!), '0', 'no ESTALE for an unchanged export');
  t.regex((await opsIn(ops, c2, url(c2), ['ls .'])).mount, /ACCES/);
  const extra = (await opsIn(ops, c2, url(c2, '/extra'), ['cat etc/hostname', 'create x 644'])).results;
  t.regex(extra[0] ?? '', /^OK 5\b/);
  t.is(extra[1], 'ERR EROFS');

  // A configuration that does not hold is refused whole; what was served goes on.
  fs.writeFileSync(config, 'exports: [\n');
  server.signal('SIGHUP');
  await server.waitFor(/still serving the previous configuration/);
  t.is(await rawIn(c1, nfsPort, 'getattr', handle!), '0');
  t.is(layerFingerprint(lower), lowerBefore, 'the lower is byte-identical');
});
