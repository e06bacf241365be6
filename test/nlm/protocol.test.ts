/**
 * NLM v4 and SM_NOTIFY on the wire, against the server's programs over a real union, with
 * hand-written calls (test/helpers/nlm-client.ts) from several loopback addresses and a fake
 * client lock manager (with its own portmapper) that receives GRANTED and the `_RES` answers.
 * Covers what the Linux client never sends: _MSG forms, SHARE, FREE_ALL, refused callbacks.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import type { ExportConfig } from '../../src/config.js';
import { parseClientRules } from '../../src/exports/client-rules.js';
import { ExportSet } from '../../src/exports/export-set.js';
import { createMountProgram } from '../../src/mount/program.js';
import { nfs3Program } from '../../src/nfs3/program.js';
import { LockManager } from '../../src/nlm/lock-manager.js';
import { nlm4Program } from '../../src/nlm/program.js';
import { sendGranted } from '../../src/nlm/callback.js';
import { NLM4_VERS, NLM_PROG, NLMPROC4, nlm4_stats, fsh4_access, fsh4_mode } from '../../src/nlm/constants.js';
import { readLock, type Nlm4Lock } from '../../src/nlm/xdr.js';
import { createNsmProgram } from '../../src/nsm/program.js';
import { createPortmapProgram, IPPROTO_UDP, PortmapRegistry } from '../../src/portmap/program.js';
import { createRpcServer, Dispatcher } from '../../src/rpc/index.js';
import type { ProgramVersion, RpcCall } from '../../src/rpc/types.js';
import { encodeAuthSys } from '../../src/rpc/auth.js';
import { NlmClient } from '../helpers/nlm-client.js';
import { NfsView } from '../helpers/nfs-view.js';
import { mkTmp } from '../helpers/layers.js';

const { NLM4_GRANTED: GRANTED, NLM4_DENIED: DENIED, NLM4_BLOCKED: BLOCKED, NLM4_STALE_FH: STALE_FH, NLM4_FAILED: FAILED } = nlm4_stats;
const TOP = 1n << 63n;

/** A client's lock manager: answers GRANTED with `answer`, records what it was sent. */
async function fakeLockd(t: ExecutionContext) {
  const state = { answer: GRANTED as number, granted: [] as { cookie: Buffer; exclusive: boolean; lock: Nlm4Lock }[], res: [] as { proc: number; stat: number }[] };
  const res = (proc: number) => (call: RpcCall): void => {
    call.args.opaque(1024);
    state.res.push({ proc, stat: call.args.enum() });
  };
  const procedures: ProgramVersion['procedures'][number][] = [];
  procedures[NLMPROC4.NULL] = (call) => call.args.done();
  procedures[NLMPROC4.GRANTED] = (call, reply) => {
    const cookie = Buffer.from(call.args.opaque(1024));
    const exclusive = call.args.bool();
    state.granted.push({ cookie, exclusive, lock: readLock(call.args) });
    reply.opaque(cookie).enum(state.answer);
  };
  for (const p of [NLMPROC4.TEST_RES, NLMPROC4.LOCK_RES, NLMPROC4.CANCEL_RES, NLMPROC4.UNLOCK_RES]) procedures[p] = res(p);
  const registry = new PortmapRegistry();
  const server = createRpcServer(new Dispatcher().register(createPortmapProgram(registry)).register({ prog: NLM_PROG, vers: NLM4_VERS, name: 'fake lockd', procedures }));
  const port = await server.listenUdp('127.0.0.1', 0);
  registry.set({ prog: NLM_PROG, vers: NLM4_VERS, prot: IPPROTO_UDP, port });
  t.teardown(() => server.close());
  return { state, port };
}

async function setup(t: ExecutionContext, rules = '127.0.0.0/8(rw,no_root_squash,insecure) 127.0.0.9(rw,all_squash,insecure)') {
  const base = mkTmp('unfs-nlm-');
  const lower = path.join(base, 'lower');
  fs.mkdirSync(lower);
  fs.writeFileSync(path.join(lower, 'f'), 'data');
  fs.writeFileSync(path.join(lower, 'g'), 'data');
  fs.writeFileSync(path.join(lower, 'secret'), 'root only', { mode: 0o600 });
  for (const d of ['upper', 'work']) fs.mkdirSync(path.join(base, d));
  const cfg: ExportConfig = {
    path: '/union', lowers: [lower], upper: path.join(base, 'upper'), workdir: path.join(base, 'work'), whiteoutFormat: 'oci', fsid: 0,
    clients: parseClientRules(rules), defaultClients: false, source: 'test',
  };
  const exports = new ExportSet();
  await exports.apply([cfg]);
  const lockd = await fakeLockd(t);
  const callbacks = { pmapPort: lockd.port };
  const manager = new LockManager({ monitor: () => undefined, grant: (w) => sendGranted(w, callbacks) });
  const dispatcher = new Dispatcher()
    .register(nfs3Program(() => exports.table()))
    .register(createMountProgram({ exports: { mnt: async (dir, call) => (await exports.table().mnt(dir, call.peer, call.cred)).fh, list: () => [] } }))
    .register(nlm4Program({ exports: () => exports.table(), manager, callbacks }))
    .register(createNsmProgram({ state: () => 3, rebooted: (address, _name, state) => manager.freeClient(address, { state }) }));
  const server = createRpcServer(dispatcher);
  const port = await server.listenTcp('127.0.0.1', 0);
  await server.listenUdp('127.0.0.1', port);
  const clients: NlmClient[] = [];
  t.teardown(async () => {
    for (const c of clients) c.close();
    await server.close();
    await exports.close();
    fs.rmSync(base, { recursive: true, force: true });
  });
  const connect = async (address: string, o: { transport?: 'tcp' | 'udp'; uid?: number } = {}) => {
    const c = await NlmClient.connect(o.transport ?? 'tcp', '127.0.0.1', port, {
      ...(o.transport !== 'udp' && { localAddress: address }), cred: encodeAuthSys({ uid: o.uid ?? 0, gid: o.uid ?? 0, machinename: 'guest' }),
    });
    clients.push(c);
    return c;
  };
  const a = await connect('127.0.0.2');
  const view = await NfsView.mount(a.rpc);
  const lookup = async (name: string): Promise<Buffer> => {
    const h = await view.lookup(name);
    if (h === undefined) throw new Error(`${name}: no such file`);
    return h;
  };
  const root = view.root;
  const fh = await lookup('f');
  return { a, connect, root, fh, lookup, lockd, manager, port };
}

const until = async (cond: () => boolean, ms = 5000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
};

test('length 0 means to the end of any file; ranges beyond 2^63 and past 2^64 are 64-bit exact', async (t) => {
  const { a, connect, fh } = await setup(t);
  const b = await connect('127.0.0.3');
  t.is(await a.lock({ fh, start: 100n, len: 0n }), GRANTED);
  const r = await b.test({ fh, start: TOP + 5n, len: 10n });
  t.is(r.stat, DENIED);
  t.deepEqual([r.holder?.start, r.holder?.len, r.holder?.exclusive, r.holder?.svid], [100n, 0n, true, 1]);
  t.is(await a.unlock({ fh }), GRANTED);
  t.is(await a.lock({ fh, start: TOP, len: 10n }), GRANTED);
  t.is(await b.lock({ fh, start: TOP - 10n, len: 10n }), GRANTED, 'the range just below');
  t.is(await b.lock({ fh, start: TOP + 9n, len: 1n }), DENIED);
  // offset + length past 2^64: to the end of the file
  t.is(await b.lock({ fh, start: (1n << 64n) - 10n, len: 100n }), GRANTED);
  const h = await a.test({ fh, start: (1n << 64n) - 1n, len: 1n });
  t.deepEqual([h.stat, h.holder?.start, h.holder?.len], [DENIED, (1n << 64n) - 10n, 0n]);
});

test('one owner\'s overlapping locks: merged, split, upgraded and downgraded in place', async (t) => {
  const { a, connect, fh } = await setup(t);
  const b = await connect('127.0.0.3');
  t.is(await a.lock({ fh, start: 0n, len: 100n, exclusive: false }), GRANTED);
  t.is(await a.lock({ fh, start: 40n, len: 20n }), GRANTED);
  t.is((await b.test({ fh, start: 0n, len: 10n, exclusive: false })).stat, GRANTED);
  const w = await b.test({ fh, start: 45n, len: 1n, exclusive: false });
  t.deepEqual([w.stat, w.holder?.start, w.holder?.len], [DENIED, 40n, 20n]);
  t.is(await a.lock({ fh, start: 60n, len: 40n }), GRANTED, 'touching write locks merge');
  const m = await b.test({ fh, start: 99n, len: 1n, exclusive: false });
  t.deepEqual([m.holder?.start, m.holder?.len], [40n, 60n]);
  t.is(await a.unlock({ fh, start: 50n, len: 10n }), GRANTED, 'a hole in the middle');
  t.is(await b.lock({ fh, start: 50n, len: 10n }), GRANTED);
  t.is(await b.lock({ fh, start: 49n, len: 1n }), DENIED);
  t.is(await a.unlock({ fh }), GRANTED);
  t.is(await b.lock({ fh }), GRANTED);
});

test('a failed upgrade keeps the read lock', async (t) => {
  const { a, connect, fh } = await setup(t);
  const b = await connect('127.0.0.3'), c = await connect('127.0.0.4');
  t.is(await a.lock({ fh, exclusive: false }), GRANTED);
  t.is(await b.lock({ fh, exclusive: false }), GRANTED);
  t.is(await a.lock({ fh, exclusive: true }), DENIED);
  t.is(await b.unlock({ fh }), GRANTED);
  const r = await c.test({ fh });
  t.deepEqual([r.stat, r.holder?.exclusive], [DENIED, false], 'A still reads');
  t.is(await a.lock({ fh, exclusive: true }), GRANTED, 'now the upgrade goes through');
});

test('a blocked lock is granted by callback with the client\'s own handle, owner and range; a refused callback releases it', async (t) => {
  const { a, connect, fh, lockd } = await setup(t);
  // The callback goes to the address the call came from: the fake lockd listens on 127.0.0.1.
  const b = await connect('127.0.0.1');
  const c = await connect('127.0.0.3');
  t.is(await a.lock({ fh }), GRANTED);
  t.is(await b.lock({ fh, svid: 77, start: 10n, len: 5n, block: true }), BLOCKED);
  t.is(await a.unlock({ fh }), GRANTED);
  await until(() => lockd.state.granted.length === 1);
  const g = lockd.state.granted[0]!;
  t.deepEqual([g.lock.fh.equals(fh), g.lock.svid, g.lock.start, g.lock.end, g.exclusive, g.lock.callerName], [true, 77, 10n, 15n, true, 'test-host']);
  t.is(await c.lock({ fh, start: 12n, len: 1n }), DENIED, 'B took it');
  t.is(await b.unlock({ fh, svid: 77 }), GRANTED);

  lockd.state.answer = DENIED;
  t.is(await a.lock({ fh }), GRANTED);
  t.is(await b.lock({ fh, svid: 78, block: true }), BLOCKED);
  t.is(await a.unlock({ fh }), GRANTED);
  await until(() => lockd.state.granted.length === 2);
  await until(() => false, 200).catch(() => undefined);
  t.is(await c.lock({ fh }), GRANTED, 'the lock B refused was released');
});

test('CANCEL of a blocked lock; CANCEL and UNLOCK of what was never asked', async (t) => {
  const { a, connect, fh, lockd } = await setup(t);
  const b = await connect('127.0.0.1');
  t.is(await a.lock({ fh }), GRANTED);
  t.is(await b.lock({ fh, block: true }), BLOCKED);
  t.is(await b.cancel({ fh }), GRANTED);
  t.is(await b.cancel({ fh }), DENIED);
  t.is(await b.unlock({ fh, start: 5n, len: 5n }), GRANTED, 'UNLOCK of nothing');
  t.is(await a.unlock({ fh }), GRANTED);
  await new Promise((r) => setTimeout(r, 300));
  t.is(lockd.state.granted.length, 0, 'no GRANTED for a cancelled request');
  t.is(await b.lock({ fh }), GRANTED);
});

test('FREE_ALL and SM_NOTIFY free the locks of the calling address only', async (t) => {
  const { a, connect, fh, lookup } = await setup(t);
  const clone = await connect('127.0.0.3');
  const other = await connect('127.0.0.4');
  const g = await lookup('g');
  t.is(await a.lock({ fh, caller: 'guest', state: 5 }), GRANTED);
  t.is(await clone.lock({ fh: g, caller: 'guest', state: 9 }), GRANTED);
  await other.freeAll('guest');
  t.is(await other.lock({ fh }), DENIED, 'FREE_ALL from another address frees nothing');
  await a.notify('guest', 5);
  t.is(await other.lock({ fh }), DENIED, 'SM_NOTIFY with the state the locks carry is stale');
  await a.notify('guest', 7);
  t.is(await other.lock({ fh }), GRANTED, 'a rebooted client\'s locks are gone');
  t.is(await other.lock({ fh: g }), DENIED, 'its clone (same name, another address) keeps its own');
  await clone.freeAll('guest');
  t.is(await other.lock({ fh: g }), GRANTED);
});

test('SHARE and UNSHARE: share reservations deny by mode and access', async (t) => {
  const { a, connect, fh } = await setup(t);
  const b = await connect('127.0.0.3');
  t.is(await a.share({ fh, mode: fsh4_mode.fsm_DW, access: fsh4_access.fsa_R }), GRANTED);
  t.is(await b.share({ fh, mode: fsh4_mode.fsm_DN, access: fsh4_access.fsa_W }), DENIED, 'A denies writers');
  t.is(await b.share({ fh, mode: fsh4_mode.fsm_DR, access: fsh4_access.fsa_R }), DENIED, 'B would deny A\'s reading');
  t.is(await b.share({ fh, mode: fsh4_mode.fsm_DN, access: fsh4_access.fsa_R }), GRANTED);
  t.is(await a.share({ fh, mode: fsh4_mode.fsm_DW, access: fsh4_access.fsa_R }, NLMPROC4.UNSHARE), GRANTED);
  t.is(await b.share({ fh, mode: fsh4_mode.fsm_DN, access: fsh4_access.fsa_W }, NLMPROC4.SHARE), GRANTED);
});

test('the _MSG forms answer with _RES calls to the client\'s lock manager; GRANTED to the server is DENIED', async (t) => {
  const { a, connect, fh, lockd } = await setup(t);
  const b = await connect('127.0.0.1');
  t.is(await a.lock({ fh }), GRANTED);
  await b.lockMessage({ fh });
  await until(() => lockd.state.res.length === 1);
  t.deepEqual(lockd.state.res, [{ proc: NLMPROC4.LOCK_RES, stat: DENIED }]);
  t.is((await b.test({ fh, proc: NLMPROC4.GRANTED })).stat, DENIED);
});

test('a _MSG from a host no export admits gets no _RES call back', async (t) => {
  const { connect, fh, lockd } = await setup(t, '127.0.0.2(rw,no_root_squash,insecure)');
  const stranger = await connect('127.0.0.1');
  await stranger.lockMessage({ fh });
  await new Promise((r) => setTimeout(r, 300));
  t.deepEqual(lockd.state.res, []);
});

test('locking needs read access, an admitted client and a live handle', async (t) => {
  const { a, connect, fh, lookup } = await setup(t, '127.0.0.2(rw,no_root_squash,insecure) 127.0.0.9(rw,all_squash,insecure)');
  const secret = await lookup('secret');
  t.is(await a.lock({ fh: secret }), GRANTED, 'root reads it');
  const squashed = await connect('127.0.0.9');
  t.is(await squashed.lock({ fh: secret }), FAILED, 'nobody cannot read a 0600 file of root');
  t.is(await squashed.lock({ fh }), GRANTED);
  const stranger = await connect('127.0.0.5');
  t.is(await stranger.lock({ fh: Buffer.from(fh) }), FAILED, 'no rule admits 127.0.0.5');
  const stale = Buffer.from(fh);
  stale[stale.length - 1]! ^= 0xff;
  t.is(await a.lock({ fh: stale }), STALE_FH);
});

test('a lock survives the copy-up of its file (files are named by stable id)', async (t) => {
  const { a, connect, fh } = await setup(t);
  const b = await connect('127.0.0.3');
  t.is(await a.lock({ fh }), GRANTED);
  // WRITE copies f up into the upper layer.
  const w = await a.rpc.ok(100003, 3, 7, (x) => x.opaque(fh).uint64(0n).uint32(2).enum(2).opaque(Buffer.from('up')));
  t.is(w.uint32(), 0);
  t.is(await b.lock({ fh }), DENIED);
});

test('a lock on a file removed since can still be unlocked', async (t) => {
  const { a, root, fh, manager } = await setup(t);
  t.is(await a.lock({ fh }), GRANTED);
  const r = await a.rpc.ok(100003, 3, 12, (x) => x.opaque(root).string('f'));
  t.is(r.uint32(), 0, 'REMOVE');
  t.is(await a.lock({ fh, svid: 2 }), STALE_FH, 'no new locks on it');
  t.is(await a.unlock({ fh }), GRANTED);
  t.is(manager.table.total, 0, 'nothing left held');
});

test('calls in flight together: of 24 clients racing for one lock, exactly one gets it (20 rounds); a repeated LOCK over UDP', async (t) => {
  const { connect, fh } = await setup(t);
  const clients = await Promise.all(Array.from({ length: 24 }, (_, i) => connect(`127.0.1.${i + 1}`)));
  for (let round = 0; round < 20; round++) {
    const stats = await Promise.all(clients.map((c, i) => c.lock({ fh, svid: i + 1 })));
    t.is(stats.filter((s) => s === GRANTED).length, 1, `round ${round}: ${stats.join(',')}`);
    const winner = stats.indexOf(GRANTED);
    t.is(await clients[winner]!.unlock({ fh, svid: winner + 1 }), GRANTED);
  }
  // UDP too: a retransmitted LOCK of a granted lock answers GRANTED again.
  const u = await connect('127.0.0.1', { transport: 'udp' });
  t.is(await u.lock({ fh, svid: 99 }), GRANTED);
  t.is(await u.lock({ fh, svid: 99 }), GRANTED);
  t.is(await clients[0]!.lock({ fh, svid: 1 }), DENIED);
});

test('an undecodable request is GARBAGE_ARGS, not a crash; NSM calls meant for a local statd are PROC_UNAVAIL', async (t) => {
  const { a } = await setup(t);
  const r = await a.rpc.call(NLM_PROG, NLM4_VERS, NLMPROC4.LOCK, (w) => w.opaque(Buffer.from('c')).bool(true));
  t.deepEqual(r.header, { xid: r.header.xid, kind: 'accepted', stat: 4 });
  const mon = await a.rpc.call(100024, 1, 2, (w) => w.string('host'));
  t.deepEqual(mon.header, { xid: mon.header.xid, kind: 'accepted', stat: 3 });
  const stat = await a.rpc.ok(100024, 1, 1, (w) => w.string('host'));
  t.deepEqual([stat.enum(), stat.int32()], [1, 3]);
});
