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
import { cleanupTemp, makeTemp } from './libnfs/oracle.js';
import { TestServer, withPort111Lock } from './libnfs/server.js';
import { canMakeNamespaces, inHost, makeClientHosts, type ClientHost } from './clients/netns.js';

const rawCall = path.join(repoRoot, 'dist/test/e2e/clients/raw-call.js');

function unmet(): string[] {
  const out = missing({ root: true, libnfsDev: true, libnfsUtils: true, server: true });
  const ns = canMakeNamespaces();
  if (ns !== undefined) out.push(ns);
  const r = fs.existsSync('/usr/sbin/showmount') || fs.existsSync('/sbin/showmount');
  if (!r) out.push('showmount (nfs-common)');
  return out;
}

test('client rules, squashing, secure ports and ro exports, from clients with their own addresses', async (t) => {
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
    /** Runs the ops driver in a client's namespace: one "OK ..." / "ERR errno" per line, or the mount failure. */
    const script = async (h: ClientHost, exp: string, lines: string[], o: { user?: 'nobody'; q?: string } = {}) => {
      const [cmd, argv] = inHost(h, [ops, url(h, exp, o.q)], o.user);
      const r = await run(cmd, argv, { input: lines.join('\n') + '\n', timeoutMs: 60_000 });
      if (r.code !== 0) return { mount: r.stderr.trim(), results: [] as string[] };
      // "<n>\t<op>\tOK[\t<result>]" or "<n>\t<op>\tERR\t<errno>": keep "OK" or "ERR <errno>".
      return { mount: 'ok', results: r.stdout.trim().split('\n').map((l) => { const f = l.split('\t'); return f[2] === 'OK' ? 'OK' : `ERR ${f[3]}`; }) };
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
    const call = async (h: ClientHost, ...args: string[]) => {
      const [cmd, argv] = inHost(h, [process.execPath, rawCall, args[0]!, h.server, String(nfsPort), ...args.slice(1)]);
      const r = await run(cmd, argv, { timeoutMs: 30_000 });
      t.is(r.code, 0, r.stderr);
      return r.stdout.trim();
    };
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
});
