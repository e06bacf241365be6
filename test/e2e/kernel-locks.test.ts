/**
 * Issue 15 with the Linux kernel client: locks through a plain mount (`mount.nfs HOST:/union
 * /mnt`, no options, so no `nolock`). The guests are hosts of their own on a bridge in a
 * network namespace (kernel/tap-net.ts), which the server runs in too: the server can call the
 * guests back (GRANTED, SM_NOTIFY) and its own portmapper has port 111 there. Each guest runs
 * rpcbind and rpc.statd as a distribution does (guest/init); locktool (guest/locktool.c) takes
 * fcntl and flock locks. Both guests are called "guest": cloned VMs share host names.
 *
 *   (1) one guest, several processes: exclusive and shared locks, byte ranges, upgrade and
 *       downgrade, flock, and a blocking lock granted by callback when its holder unlocks
 *   (2) two guests contend for one file: the second blocks and is granted when the first
 *       unlocks; then the first is killed while holding a lock, boots again with its
 *       /var/lib/nfs (as a disk would keep it), and its sm-notify frees the lock
 *   (3) the server is killed and restarted while a guest holds a lock: the guest reclaims it
 *       in the grace period, in which another client's lock is refused
 */
import test, { type ExecutionContext } from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { hasQemu, runGuest, type GuestResult } from './kernel/guest.js';
import { canMakeTaps, makeGuestNet, type GuestNet } from './kernel/tap-net.js';
import { gate, missing, repoRoot } from './libnfs/env.js';
import { run } from './libnfs/driver.js';
import { cleanupTemp, layerFingerprint, makeTemp } from './libnfs/oracle.js';
import { TestServer } from './libnfs/server.js';

const nlmCall = path.join(repoRoot, 'dist/test/e2e/clients/nlm-call.js');
const GRACE_SECONDS = 20;

/** Shell helpers for the guest scripts: waiting for marker files and reading locktool output. */
const PRELUDE = String.raw`
S=198.19.7.1
M=/mnt/u
L=locktool
mkdir -p $M
waitfile() { n=0; while [ ! -e "$1" ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done; [ -e "$1" ]; }
# has FILE PREFIX: locktool's output FILE has a line starting with PREFIX
has() { grep -q "^$2" "$1"; }
# ms FILE PREFIX: the time stamp of that line
ms() { grep "^$2" "$1" | head -n1 | sed 's/.*(\([0-9]*\) ms)$/\1/'; }
`;

const SUITE = String.raw`
check mount_no_options mount.nfs $S:/union $M
grep " $M " /proc/mounts | sed 's/^/# /'
check no_nolock sh -c "! grep ' $M ' /proc/mounts | grep -q nolock"

# exclusive: p1 holds a write lock on all of ex; p2 can take nothing
$L $M/ex w 0 0 touch /tmp/ex.held wait /tmp/ex.go >/tmp/ex.1 &
waitfile /tmp/ex.held
$L $M/ex w 0 0 r 0 0 t r 0 1 >/tmp/ex.2
check exclusive_first has /tmp/ex.1 "w 0 0: ok"
check exclusive_write_refused has /tmp/ex.2 "w 0 0: EAGAIN"
check exclusive_read_refused has /tmp/ex.2 "r 0 0: EAGAIN"
check exclusive_test_shows_holder has /tmp/ex.2 "t r 0 1: held w 0 0"
touch /tmp/ex.go; wait
$L $M/ex w 0 0 >/tmp/ex.3
check exclusive_after_release has /tmp/ex.3 "w 0 0: ok"

# byte ranges: p1 holds [0, 100)
$L $M/br w 0 100 touch /tmp/br.held wait /tmp/br.go >/dev/null &
waitfile /tmp/br.held
$L $M/br w 100 10 w 99 1 r 50 10 t w 200 0 t w 0 1 >/tmp/br.2
check range_disjoint has /tmp/br.2 "w 100 10: ok"
check range_last_byte has /tmp/br.2 "w 99 1: EAGAIN"
check range_inside has /tmp/br.2 "r 50 10: EAGAIN"
check range_test_free has /tmp/br.2 "t w 200 0: free"
check range_test_holder has /tmp/br.2 "t w 0 1: held w 0 100"
touch /tmp/br.go; wait

# shared: two readers, no writer
$L $M/sh r 0 0 touch /tmp/sh.held wait /tmp/sh.go >/dev/null &
waitfile /tmp/sh.held
$L $M/sh r 0 0 w 0 0 >/tmp/sh.2
check shared_second_reader has /tmp/sh.2 "r 0 0: ok"
check shared_no_writer has /tmp/sh.2 "w 0 0: EAGAIN"
touch /tmp/sh.go; wait

# upgrade and downgrade: p1 reads, p2 reads too, p1's upgrade fails and keeps its read lock;
# p2 goes, p1's upgrade succeeds; p1 downgrades and a reader gets in
$L $M/ud r 0 0 touch /tmp/ud.h1 wait /tmp/ud.g1 w 0 0 touch /tmp/ud.u1 wait /tmp/ud.g2 w 0 0 touch /tmp/ud.u2 \
  wait /tmp/ud.g3 r 0 0 touch /tmp/ud.d wait /tmp/ud.g4 >/tmp/ud.1 &
waitfile /tmp/ud.h1
$L $M/ud r 0 0 touch /tmp/ud.h2 wait /tmp/ud.rel >/dev/null &
p2=$!
waitfile /tmp/ud.h2
touch /tmp/ud.g1; waitfile /tmp/ud.u1
$L $M/ud t w 0 1 >/tmp/ud.t1
check upgrade_refused has /tmp/ud.1 "w 0 0: EAGAIN"
check upgrade_refused_keeps_read has /tmp/ud.t1 "t w 0 1: held r"
touch /tmp/ud.rel; wait $p2
touch /tmp/ud.g2; waitfile /tmp/ud.u2
$L $M/ud t r 0 1 >/tmp/ud.t2
check upgrade_granted sh -c "[ \$(grep -c '^w 0 0: ok' /tmp/ud.1) = 1 ]"
check upgrade_holds_write has /tmp/ud.t2 "t r 0 1: held w 0 0"
touch /tmp/ud.g3; waitfile /tmp/ud.d
$L $M/ud r 0 0 w 0 0 >/tmp/ud.t3
check downgrade_lets_reader has /tmp/ud.t3 "r 0 0: ok"
check downgrade_still_no_writer has /tmp/ud.t3 "w 0 0: EAGAIN"
touch /tmp/ud.g4; wait

# flock (the Linux client sends it as a whole-file lock)
$L $M/fl fx touch /tmp/fl.held wait /tmp/fl.go fu touch /tmp/fl.un wait /tmp/fl.end >/dev/null &
waitfile /tmp/fl.held
$L $M/fl fx fs >/tmp/fl.2
check flock_exclusive_refused has /tmp/fl.2 "fx: EAGAIN"
check flock_shared_refused has /tmp/fl.2 "fs: EAGAIN"
touch /tmp/fl.go; waitfile /tmp/fl.un
$L $M/fl fx >/tmp/fl.3
check flock_after_unlock has /tmp/fl.3 "fx: ok"
touch /tmp/fl.end; wait

# blocking: p2 waits in F_SETLKW; p1's unlock grants it through the server's GRANTED callback
$L $M/bl w 0 0 touch /tmp/bl.held wait /tmp/bl.go u 0 0 >/tmp/bl.1 &
waitfile /tmp/bl.held
$L $M/bl W 0 0 >/tmp/bl.2 &
p2=$!
sleep 3
check blocked_while_held sh -c "[ ! -s /tmp/bl.2 ]"
touch /tmp/bl.go
n=0; while [ ! -s /tmp/bl.2 ] && [ $n -lt 400 ]; do sleep 0.1; n=$((n + 1)); done
check blocking_granted has /tmp/bl.2 "W 0 0: ok"
wait
echo "granted_after_unlock_ms=$(( $(ms /tmp/bl.2 "W 0 0") - $(ms /tmp/bl.1 "u 0 0") ))" >/results/timing
cat /results/timing
umount $M
`;

/** Guest A of (2): holds a lock B waits for, unlocks; then holds another and is killed. */
const CONTEND_A = String.raw`
check mount mount.nfs $S:/union $M
$L $M/c w 0 0 touch /tmp/c.held wait /tmp/c.go u 0 0 >/tmp/c.1 &
waitfile /tmp/c.held
host_call a_holds
touch /tmp/c.go; wait
host_call a_unlocked
check a_unlocked has /tmp/c.1 "u 0 0: ok"
$L $M/d w 0 0 touch /tmp/d.held hold >/tmp/d.1 &
waitfile /tmp/d.held
check a_holds_d has /tmp/d.1 "w 0 0: ok"
# What a disk would keep across the crash: statd's monitor list and NSM state.
tar -C /var/lib -cf /results/nfs.tar nfs
sync
host_call kill_me
sleep 600
`;

/** Guest A again, "rebooted": its /var/lib/nfs back, sm-notify tells the server. */
const REBOOTED_A = String.raw`
tar -C /var/lib -xf /tests/nfs.tar
ls /var/lib/nfs/sm | sed 's/^/# monitored: /'
check sm_notify sm-notify -f -d
`;

/** Guest B of (2): blocks on A's lock and is granted at A's unlock; then meets A's lock on d until A's reboot is told. */
const CONTEND_B = String.raw`
check mount mount.nfs $S:/union $M
host_call b_start
$L $M/c t w 0 1 >/tmp/c.t
check b_sees_a has /tmp/c.t "t w 0 1: held w 0 0"
$L $M/c W 0 0 u 0 0 >/tmp/c.1 &
sleep 3
check b_blocked sh -c "[ ! -s /tmp/c.1 ]"
host_call b_waiting
n=0; while ! has /tmp/c.1 "W 0 0" && [ $n -lt 400 ]; do sleep 0.05; n=$((n + 1)); done
host_call b_granted
check b_granted has /tmp/c.1 "W 0 0: ok"
wait
host_call b_after_kill
$L $M/d w 0 0 >/tmp/d.1
check b_refused_while_a_dead has /tmp/d.1 "w 0 0: EAGAIN"
host_call b_after_notify
$L $M/d w 0 0 >/tmp/d.2
check b_granted_after_a_reboot has /tmp/d.2 "w 0 0: ok"
umount $M
`;

/** (3): holds a lock across the server's crash and restart. */
const RECLAIM = String.raw`
check mount mount.nfs $S:/union $M
$L $M/r w 0 0 touch /tmp/r.held hold >/tmp/r.1 &
holder=$!
waitfile /tmp/r.held
check holds has /tmp/r.1 "w 0 0: ok"
host_call restart_server
$L $M/r t w 0 1 >/tmp/r.t
check still_held_after_restart has /tmp/r.t "t w 0 1: held w 0 0"
kill $holder; wait
$L $M/r w 0 0 >/tmp/r.2
check relocks_after_release has /tmp/r.2 "w 0 0: ok"
echo data >$M/after-restart
check io_after_restart sh -c "[ \$(cat $M/after-restart) = data ]"
umount $M
`;

/** A promise with its resolve, for hooks that wait on each other. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => { resolve = r; });
  return { promise, resolve };
}

/** nlm-call.js inside the guests' namespace (a client at the server's own address). */
async function nlm(net: GuestNet, ...args: string[]): Promise<string> {
  const r = await run(net.exec[0]!, [...net.exec.slice(1), process.execPath, nlmCall, ...args], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`nlm-call ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

interface Setup { base: string; net: GuestNet; server: TestServer; lowerBefore: string; lower: string }

async function setUp(t: ExecutionContext, guests: number): Promise<Setup | undefined> {
  const q = hasQemu();
  const taps = canMakeTaps();
  const unmet = [...missing({ root: true, server: true }), ...(q.ok ? [] : [q.reason]), ...(taps === undefined ? [] : [taps])];
  if (!gate(t, 'kernel lock e2e', unmet)) return undefined;
  const base = makeTemp('unfs-klocks-');
  const lower = path.join(base, 'lower');
  fs.mkdirSync(lower);
  fs.writeFileSync(path.join(lower, 'shared'), 'a file of the lower\n');
  for (const d of ['upper', 'work']) fs.mkdirSync(path.join(base, d));
  const lowerBefore = layerFingerprint(lower);
  const net = makeGuestNet(guests);
  const server = new TestServer({
    lowers: [lower], upper: path.join(base, 'upper'), workdir: path.join(base, 'work'),
    host: '0.0.0.0', port: 2049, portmap: true, clients: '198.19.7.0/24(rw,no_root_squash,insecure)',
    wrap: [...net.exec], extraArgs: ['--nsm-dir', path.join(base, 'nsm'), '--grace-period', String(GRACE_SECONDS)],
  });
  t.teardown(async () => {
    await server.stop();
    net.remove();
    cleanupTemp(base);
  });
  await server.start();
  return { base, net, server, lowerBefore, lower };
}

function report(t: ExecutionContext, name: string, r: GuestResult): void {
  t.log(`${name}: exit ${r.exitCode}, ${r.durationMs} ms${r.timedOut ? ' (timed out)' : ''}`);
  for (const c of r.checks) if (!c.ok) t.log(`not ok ${c.name}: ${c.detail}`);
  if (r.checks.length === 0 || r.exitCode === null) t.log(r.serial.slice(-4000));
}

function assertChecks(t: ExecutionContext, r: GuestResult, expected: readonly string[]): void {
  const names = r.checks.map((c) => c.name);
  for (const n of expected) t.true(names.includes(n), `check ${n} ran`);
  t.deepEqual(r.checks.filter((c) => !c.ok).map((c) => c.name), [], 'every check in the guest passed');
}

test.serial('(1) a plain mount gets working fcntl and flock locks, blocking ones granted by callback', async (t) => {
  t.timeout(6 * 60_000);
  const s = await setUp(t, 1);
  if (s === undefined) return;
  const r = await runGuest({ script: PRELUDE + SUITE, ports: [], tap: s.net.guests[0]!, timeoutMs: 300_000 });
  t.teardown(() => r.cleanup());
  report(t, 'guest', r);
  assertChecks(t, r, ['mount_no_options', 'exclusive_write_refused', 'range_last_byte', 'shared_second_reader', 'upgrade_refused_keeps_read',
    'downgrade_lets_reader', 'flock_exclusive_refused', 'blocked_while_held', 'blocking_granted']);
  t.is(r.exitCode, 0);
  const m = /granted_after_unlock_ms=(-?\d+)/.exec(fs.readFileSync(path.join(r.resultsDir, 'timing'), 'utf8'));
  t.log(`blocked lock granted ${m?.[1]} ms after the holder's unlock`);
  // The client re-sends a blocked LOCK every 30 s: well under that means the callback did it.
  t.true(Number(m?.[1]) < 10_000, 'granted by the callback, not by the client\'s 30 s retry');
  t.is(layerFingerprint(s.lower), s.lowerBefore, 'the lower is untouched');
  t.log(s.server.output().split('\n').filter((l) => /nlm|nsm|grace/i.test(l)).join('\n'));
});

test.serial('(2) two guests contend: the second is granted at the first\'s unlock; a crashed guest\'s reboot frees its lock', async (t) => {
  t.timeout(8 * 60_000);
  const s = await setUp(t, 2);
  if (s === undefined) return;
  const aHolds = deferred(), bWaiting = deferred(), aKilled = deferred(), aNotified = deferred();
  const kill = new AbortController();
  let unlockedAt = 0, grantedAt = 0;
  const a = runGuest({
    script: PRELUDE + CONTEND_A, ports: [], tap: s.net.guests[0]!, timeoutMs: 300_000, kill: kill.signal,
    hooks: {
      a_holds: async () => { aHolds.resolve(); await bWaiting.promise; },
      a_unlocked: () => { unlockedAt = Date.now(); },
      kill_me: () => { kill.abort(); },
    },
  });
  const b = runGuest({
    script: PRELUDE + CONTEND_B, ports: [], tap: s.net.guests[1]!, timeoutMs: 300_000,
    hooks: {
      b_start: () => aHolds.promise,
      b_waiting: () => { bWaiting.resolve(); },
      b_granted: () => { grantedAt = Date.now(); },
      b_after_kill: () => aKilled.promise,
      b_after_notify: () => aNotified.promise,
    },
  });
  const ra = await a;
  t.teardown(() => ra.cleanup());
  aKilled.resolve();
  report(t, 'guest A', ra);
  t.true(ra.exitCode === null && !ra.timedOut, 'A was killed, as planned');
  t.deepEqual(ra.checks.filter((c) => !c.ok).map((c) => c.name), []);
  t.true(ra.checks.some((c) => c.name === 'a_holds_d'));
  // A boots again on the same address, with the /var/lib/nfs it had.
  const tar = fs.readFileSync(path.join(ra.resultsDir, 'nfs.tar'));
  const ra2 = await runGuest({ script: PRELUDE + REBOOTED_A, ports: [], tap: s.net.guests[0]!, timeoutMs: 180_000, files: { 'nfs.tar': tar } });
  t.teardown(() => ra2.cleanup());
  report(t, 'guest A rebooted', ra2);
  assertChecks(t, ra2, ['sm_notify']);
  await s.server.waitFor(/198\.19\.7\.2 \(\S+\) rebooted \(state \d+\): freed its 1 locks/);
  aNotified.resolve();
  const rb = await b;
  t.teardown(() => rb.cleanup());
  report(t, 'guest B', rb);
  assertChecks(t, rb, ['b_sees_a', 'b_blocked', 'b_granted', 'b_refused_while_a_dead', 'b_granted_after_a_reboot']);
  t.is(rb.exitCode, 0);
  t.log(`B's blocked lock was granted ${grantedAt - unlockedAt} ms after A's unlock (host clock, both host calls included)`);
  t.true(grantedAt - unlockedAt < 10_000, 'granted by the callback, not by the client\'s 30 s retry');
  t.is(layerFingerprint(s.lower), s.lowerBefore);
});

test.serial('(3) the server is killed while a guest holds a lock: the guest reclaims it in the grace period', async (t) => {
  t.timeout(6 * 60_000);
  const s = await setUp(t, 1);
  if (s === undefined) return;
  const seen: Record<string, string> = {};
  const r = await runGuest({
    script: PRELUDE + RECLAIM, ports: [], tap: s.net.guests[0]!, timeoutMs: 300_000,
    hooks: {
      restart_server: async () => {
        await s.server.restart('SIGKILL');
        const graceEnds = Date.now() + GRACE_SECONDS * 1000;
        // Another client in the grace period: refused, whether or not the guest reclaimed yet.
        seen['lock in grace'] = await nlm(s.net, 'lock', s.net.server, '/union', 'r');
        seen['test in grace'] = await nlm(s.net, 'test', s.net.server, '/union', 'r');
        await s.server.waitFor(/told 198\.19\.7\.2 \(guest\) that we restarted/);
        await new Promise((res) => setTimeout(res, Math.max(0, graceEnds - Date.now()) + 500));
        seen['lock after grace'] = await nlm(s.net, 'lock', s.net.server, '/union', 'r');
        seen['reclaim after grace'] = await nlm(s.net, 'lock', s.net.server, '/union', 'r', 'reclaim');
      },
    },
  });
  t.teardown(() => r.cleanup());
  report(t, 'guest', r);
  t.log(seen);
  assertChecks(t, r, ['holds', 'still_held_after_restart', 'relocks_after_release', 'io_after_restart']);
  t.is(r.exitCode, 0);
  t.is(seen['lock in grace'], '4', 'NLM4_DENIED_GRACE_PERIOD for a new lock in grace');
  t.is(seen['test in grace'], '4');
  t.is(seen['lock after grace'], '1', 'NLM4_DENIED: the guest reclaimed its lock');
  t.is(seen['reclaim after grace'], '4', 'no reclaims after the grace period');
  t.is(layerFingerprint(s.lower), s.lowerBefore);
});
