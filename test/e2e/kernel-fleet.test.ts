/**
 * Issue 13 with the Linux kernel client: two guests boot at once and mount the same per-client
 * export (`{client}` in its upper) over one shared lower. Their connections come from their
 * own loopback addresses (socat binds 127.0.0.2 and 127.0.0.3), so each gets its own union:
 * each writes /etc/hostname and a file of its own, and after both have written (a host-side
 * barrier), each sees its own changes and none of the other's. Then guest A's union is reset
 * with the documented command while B holds its mount: A, remounted, sees the base again; B's
 * changes are untouched.
 */
import test from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { hasQemu, REPO_ROOT, runGuest, type GuestResult } from './kernel/guest.js';
import { gate, missing } from './libnfs/env.js';
import { run } from './libnfs/driver.js';
import { cleanupTemp, layerFingerprint, makeTemp } from './libnfs/oracle.js';
import { TestServer } from './libnfs/server.js';

const SCRIPT = String.raw`
. /tests/params.sh
S=10.0.2.100
M=/mnt/u
export ME M
mkdir -p $M
mnt() { mount.nfs "$S:/fleet" $M -o "vers=3,proto=tcp,port=$NFS_PORT,mountport=$NFS_PORT,mountproto=tcp,nolock"; }
check mount mnt
check base_hostname sh -c '[ "$(cat $M/etc/hostname)" = base ]'
check write_hostname sh -c "echo $ME > $M/etc/hostname"
check write_own sh -c "echo $ME > $M/mine-$ME && sync"
host_call written
check sees_own_hostname sh -c '[ "$(cat $M/etc/hostname)" = "$ME" ]'
check sees_own_file test -e $M/mine-$ME
check sees_only_own sh -c '[ "$(ls $M | grep -c mine-)" = 1 ]'
if [ "$ME" = a ]; then
  host_call reset
  umount -l $M
  check remount mnt
  check reset_to_base sh -c '[ "$(cat $M/etc/hostname)" = base ] && [ "$(ls $M | grep -c mine-)" = 0 ]'
else
  host_call after_reset
  check untouched_by_reset sh -c '[ "$(cat $M/etc/hostname)" = "$ME" ] && test -e $M/mine-$ME'
fi
umount $M
`;

test('two kernel clients at once: a union each over one lower; a reset of one leaves the other', async (t) => {
  const q = hasQemu();
  const unmet = [...missing({ root: true, server: true }), ...(q.ok ? [] : [q.reason])];
  if (!gate(t, 'kernel fleet e2e', unmet)) return;
  t.timeout(5 * 60_000);
  const base = makeTemp('unfs-kfleet-');
  t.teardown(() => cleanupTemp(base));
  const lower = path.join(base, 'lower');
  fs.mkdirSync(path.join(lower, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(lower, 'etc/hostname'), 'base\n');
  const lowerBefore = layerFingerprint(lower);
  fs.mkdirSync(path.join(base, 'nodes'));
  const control = path.join(base, 'control.sock');
  const config = path.join(base, 'fleet.yaml');
  // The guests' connections come through socat from unprivileged ports: insecure.
  fs.writeFileSync(config, `control: ${control}
exports:
  - path: /fleet
    lower: ${lower}
    upper: ${base}/nodes/{client}/upper
    workdir: ${base}/nodes/{client}/work
    names: {a: 127.0.0.2, b: 127.0.0.3}
    clients: "127.0.0.2(rw,no_root_squash,insecure) 127.0.0.3(rw,no_root_squash,insecure)"
`);
  const server = new TestServer({ config, lowers: [] });
  t.teardown(() => server.stop());
  const { nfsPort } = await server.start();

  // A barrier both guests reach after writing, and the reset that B waits for.
  let arrived = 0;
  let release!: () => void;
  const bothWritten = new Promise<void>((r) => (release = r));
  let resetDone!: () => void;
  const afterReset = new Promise<void>((r) => (resetDone = r));
  const guest = (me: 'a' | 'b', address: string): Promise<GuestResult> => runGuest({
    script: SCRIPT,
    files: { 'params.sh': `NFS_PORT=${nfsPort}\nME=${me}\n` },
    ports: [nfsPort],
    sourceAddress: address,
    timeoutMs: 200_000,
    hooks: {
      written: async () => {
        if (++arrived === 2) release();
        await bothWritten;
      },
      reset: async () => {
        const r = await run(process.execPath, [path.join(REPO_ROOT, 'dist/src/cli.js'), '--control', control, '--export', '/fleet', '--reset-client', 'a'], { timeoutMs: 30_000 });
        resetDone();
        return r.code === 0 ? 'reset' : `reset failed: ${r.stderr}`;
      },
      after_reset: () => afterReset,
    },
  });
  const [a, b] = await Promise.all([guest('a', '127.0.0.2'), guest('b', '127.0.0.3')]);
  t.teardown(() => { a.cleanup(); b.cleanup(); });
  for (const [name, g] of [['a', a], ['b', b]] as const) {
    t.is(g.exitCode, 0, `guest ${name}: ${g.output}\n${g.serial.slice(-3000)}`);
    const failed = g.checks.filter((c) => !c.ok);
    t.deepEqual(failed, [], `guest ${name}:\n${g.output}\nserver:\n${server.output()}`);
    t.true(g.checks.length >= 8, `guest ${name} ran its checks: ${g.checks.map((c) => c.name).join(' ')}`);
  }
  t.is(fs.readFileSync(path.join(base, 'nodes/b/upper/etc/hostname'), 'utf8'), 'b\n');
  t.true(fs.existsSync(path.join(base, 'nodes/b/upper/mine-b')));
  t.false(fs.existsSync(path.join(base, 'nodes/a/upper/mine-a')), 'a was reset');
  t.is(layerFingerprint(lower), lowerBefore, 'the lower is byte-identical');
});
