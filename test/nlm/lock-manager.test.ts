// The lock manager's rules without a network: ranges, owners, blocking, grace, bounds.
import test from 'ava';
import { LockManager, type LockIntent, type Waiter } from '../../src/nlm/lock-manager.js';
import { ownerOf, type Owner } from '../../src/nlm/lock-table.js';
import { nlm4_stats } from '../../src/nlm/constants.js';
import { END_OF_FILE } from '../../src/nlm/xdr.js';

const { NLM4_GRANTED: GRANTED, NLM4_DENIED: DENIED, NLM4_BLOCKED: BLOCKED, NLM4_DENIED_GRACE_PERIOD: GRACE, NLM4_DENIED_NOLOCKS: NOLOCKS } = nlm4_stats;
const owner = (client: string, svid = 1, caller = 'guest'): Owner => ownerOf(client, { callerName: caller, svid, oh: Buffer.from(`${svid}@${caller}`) });
const A = owner('10.0.0.1'), B = owner('10.0.0.2'), C = owner('10.0.0.3');

function manager(o: { taken?: boolean; maxPerClient?: number } = {}) {
  const grants: Waiter[] = [];
  const monitored: string[] = [];
  const m = new LockManager({
    monitor: (c) => { monitored.push(c); },
    grant: (w) => { grants.push(w); return Promise.resolve(o.taken ?? true); },
    ...(o.maxPerClient !== undefined && { maxPerClient: o.maxPerClient }),
  });
  const i = (who: Owner, exclusive: boolean, start: bigint, end: bigint, file = 'f'): LockIntent => ({ file, owner: who, exclusive, start, end });
  const lock = (who: Owner, exclusive: boolean, start: bigint, end: bigint, x: { block?: boolean; reclaim?: boolean; state?: number; file?: string } = {}) =>
    m.lock(i(who, exclusive, start, end, x.file), {
      block: x.block ?? false, reclaim: x.reclaim ?? false, state: x.state ?? 1, monitored: true, cookie: Buffer.from('c'), local: undefined,
      lock: { callerName: who.caller, fh: Buffer.from('fh'), oh: who.oh, svid: who.svid, start, end },
    });
  const held = (who: Owner, exclusive: boolean, start: bigint, end: bigint) => m.test(i(who, exclusive, start, end));
  return { m, grants, monitored, lock, held, i };
}

test('exclusive and shared locks, disjoint ranges, length 0 to the end of any file', (t) => {
  const { lock, held } = manager();
  t.is(lock(A, false, 0n, 100n), GRANTED);
  t.is(lock(B, false, 50n, 150n), GRANTED, 'two readers share');
  t.is(lock(C, true, 60n, 70n), DENIED);
  t.is(lock(C, true, 150n, END_OF_FILE), GRANTED, 'disjoint');
  const r = held(A, true, (1n << 63n) + 5n, (1n << 63n) + 6n);
  t.is(r.stat, DENIED);
  t.is(r.holder?.owner.key, C.key);
  t.is(r.holder?.end, END_OF_FILE);
});

test('ranges above 2^63 are 64-bit ranges, not clamped', (t) => {
  const { lock } = manager();
  const top = 1n << 63n;
  t.is(lock(A, true, top, top + 10n), GRANTED);
  t.is(lock(B, true, top - 10n, top), GRANTED, 'just below');
  t.is(lock(B, true, top + 10n, END_OF_FILE), GRANTED, 'just above');
  t.is(lock(C, true, top + 9n, top + 10n), DENIED);
  t.is(lock(C, true, END_OF_FILE - 1n, END_OF_FILE), DENIED, 'the last byte is B\'s');
});

test('one owner\'s overlapping locks merge and split; an unlock of part splits', (t) => {
  const { lock, held, m } = manager();
  t.is(lock(A, true, 0n, 10n), GRANTED);
  t.is(lock(A, true, 10n, 20n), GRANTED);
  t.deepEqual(m.table.locksOf('f').map((l) => [l.start, l.end]), [[0n, 20n]], 'touching locks of one kind merge');
  t.is(lock(A, false, 5n, 15n), GRANTED, 'a downgrade of the middle');
  t.deepEqual(m.table.locksOf('f').map((l) => [l.exclusive, l.start, l.end]).sort((a, b) => Number(a[1]) - Number(b[1])),
    [[true, 0n, 5n], [false, 5n, 15n], [true, 15n, 20n]]);
  t.is(held(B, false, 6n, 7n).stat, GRANTED, 'a reader may share the downgraded middle');
  t.is(held(B, false, 16n, 17n).stat, DENIED);
  m.unlock('f', A, 0n, 5n);
  t.is(held(B, true, 0n, 5n).stat, GRANTED);
  t.is(held(B, true, 4n, 6n).stat, DENIED);
  m.unlock('f', A, 0n, END_OF_FILE);
  t.is(m.table.fileCount, 0, 'nothing left behind');
});

test('a refused upgrade keeps the read lock; an upgrade nobody blocks is one step', (t) => {
  const { lock, held } = manager();
  t.is(lock(A, false, 0n, END_OF_FILE), GRANTED);
  t.is(lock(B, false, 0n, END_OF_FILE), GRANTED);
  t.is(lock(A, true, 0n, END_OF_FILE), DENIED);
  const r = held(C, true, 0n, 1n);
  t.is(r.stat, DENIED);
  t.false(r.holder?.exclusive);
  t.is(held(C, false, 0n, 1n).stat, GRANTED, 'still only readers');
  t.is(lock(A, true, 100n, 200n), DENIED);
  const { lock: lock2, held: held2 } = manager();
  t.is(lock2(A, false, 0n, END_OF_FILE), GRANTED);
  t.is(lock2(A, true, 0n, END_OF_FILE), GRANTED);
  t.true(held2(B, false, 0n, 1n).holder?.exclusive);
});

test('blocked locks are granted in order on unlock, with a callback; a refused callback releases', async (t) => {
  const { lock, grants, m, held } = manager();
  t.is(lock(A, true, 0n, END_OF_FILE), GRANTED);
  t.is(lock(B, true, 0n, 10n, { block: true }), BLOCKED);
  t.is(lock(C, true, 5n, 20n, { block: true }), BLOCKED);
  t.is(lock(B, true, 0n, 10n, { block: true }), BLOCKED, 'a re-sent LOCK keeps its place');
  t.is(m.blocked, 2);
  m.unlock('f', A, 0n, END_OF_FILE);
  t.deepEqual(grants.map((w) => w.owner.key), [B.key], 'B first; C still conflicts with B');
  t.is(held(A, true, 0n, 1n).holder?.owner.key, B.key);
  m.unlock('f', B, 0n, END_OF_FILE);
  t.deepEqual(grants.map((w) => w.owner.key), [B.key, C.key]);
  t.is(lock(C, true, 5n, 20n, { block: true }), GRANTED, 'a repeat of a granted lock answers GRANTED');
  t.is(m.blocked, 0);

  const refused = manager({ taken: false });
  t.is(refused.lock(A, true, 0n, END_OF_FILE), GRANTED);
  t.is(refused.lock(B, true, 0n, END_OF_FILE, { block: true }), BLOCKED);
  refused.m.unlock('f', A, 0n, END_OF_FILE);
  t.is(refused.grants.length, 1);
  await new Promise((r) => setImmediate(r));
  t.is(refused.held(C, true, 0n, END_OF_FILE).stat, GRANTED, 'the lock B refused is released');
});

test('CANCEL withdraws a blocked lock, or a grant whose callback is still out; else DENIED', (t) => {
  const { lock, grants, m, i } = manager();
  t.is(lock(A, true, 0n, END_OF_FILE), GRANTED);
  t.is(lock(B, true, 0n, END_OF_FILE, { block: true }), BLOCKED);
  t.is(m.cancel(i(B, true, 0n, END_OF_FILE)), GRANTED);
  t.is(m.cancel(i(B, true, 0n, END_OF_FILE)), DENIED, 'nothing left to cancel');
  m.unlock('f', A, 0n, END_OF_FILE);
  t.is(grants.length, 0, 'no grant for a cancelled request');

  // A grant whose callback has not been answered: the client gave up waiting.
  const slow = new LockManager({ monitor: () => undefined, grant: () => new Promise<boolean>(() => undefined) });
  const req = (who: Owner, block: boolean) => slow.lock(i(who, true, 0n, END_OF_FILE), {
    block, reclaim: false, state: 1, monitored: true, cookie: Buffer.alloc(0), local: undefined,
    lock: { callerName: who.caller, fh: Buffer.alloc(0), oh: who.oh, svid: who.svid, start: 0n, end: END_OF_FILE },
  });
  t.is(req(A, false), GRANTED);
  t.is(req(B, true), BLOCKED);
  slow.unlock('f', A, 0n, END_OF_FILE);
  t.is(slow.test(i(C, true, 0n, 1n)).holder?.owner.key, B.key);
  t.is(slow.cancel(i(B, true, 0n, END_OF_FILE)), GRANTED);
  t.is(slow.test(i(C, true, 0n, 1n)).stat, GRANTED);
});

test('UNLOCK of something never locked answers GRANTED', (t) => {
  const { m } = manager();
  t.is(m.unlock('nothing', A, 0n, END_OF_FILE), GRANTED);
});

test('a client\'s state is freed by address (not by name), and a stale SM_NOTIFY is ignored', (t) => {
  const twin = owner('10.0.0.9', 1, 'guest');
  const { lock, m, held, grants } = manager();
  t.is(lock(A, true, 0n, 10n, { state: 3 }), GRANTED);
  t.is(lock(twin, true, 20n, 30n, { state: 7 }), GRANTED, 'a clone with the same host name');
  t.is(lock(B, true, 0n, 10n, { block: true }), BLOCKED);
  t.is(m.freeClient('10.0.0.1', { state: 3 }), 0, 'the state of its last LOCK: an old notification');
  t.is(m.freeClient('10.0.0.1', { state: 5 }), 1);
  t.deepEqual(grants.map((w) => w.owner.key), [B.key], 'the blocked lock is granted');
  t.is(held(C, true, 25n, 26n).holder?.owner.key, twin.key, 'the clone keeps its lock');
  t.is(m.freeClient('10.0.0.9', { caller: 'other-name' }), 0, 'FREE_ALL names the caller too');
  t.is(m.freeClient('10.0.0.9', { caller: 'guest' }), 1);
});

test('grace: only reclaims, and after it no reclaims; UNLOCK and CANCEL always', (t) => {
  const { lock, m, held } = manager();
  m.startGrace(60_000);
  t.is(lock(A, true, 0n, 10n), GRACE);
  t.is(held(A, true, 0n, 10n).stat, GRACE);
  t.is(lock(A, true, 0n, 10n, { reclaim: true }), GRANTED);
  t.is(lock(B, true, 0n, 10n, { reclaim: true }), DENIED, 'a reclaim still meets conflicts');
  t.is(m.unlock('f', A, 0n, 10n), GRANTED);
  m.startGrace(0);
  t.is(lock(A, true, 0n, 10n, { reclaim: true }), GRACE);
  t.is(lock(A, true, 0n, 10n), GRANTED);
});

test('a client gets at most maxPerClient locks and blocked requests: then NLM4_DENIED_NOLOCKS', (t) => {
  const { lock, m } = manager({ maxPerClient: 3 });
  for (let n = 0n; n < 3n; n++) t.is(lock(A, true, n * 10n, n * 10n + 1n), GRANTED);
  t.is(lock(A, true, 100n, 101n), NOLOCKS);
  t.is(lock(A, true, 0n, 21n), GRANTED, 'merging into fewer locks is always possible');
  t.is(lock(B, true, 0n, 1n), DENIED);
  for (let n = 0n; n < 3n; n++) t.is(lock(B, true, n, n + 1n, { block: true }), BLOCKED);
  t.is(lock(B, true, 50n, 51n, { block: true }), NOLOCKS, 'blocked requests count');
  t.is(m.blocked, 3);
});
