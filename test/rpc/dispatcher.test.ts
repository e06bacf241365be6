// Every RPC-level outcome produced by the dispatcher, and the duplicate request cache.
import test from 'ava';
import { XdrReader, XdrWriter } from '@nfs-ts/xdr';
import { AUTH_NONE_CRED, encodeAuthSys } from '../../src/rpc/auth.js';
import { DISCONNECT, Dispatcher } from '../../src/rpc/dispatcher.js';
import { DuplicateRequestCache } from '../../src/rpc/drc.js';
import { accept_stat, auth_stat, decodeReplyHeader, encodeCallHeader, type OpaqueAuth } from '../../src/rpc/message.js';
import type { Peer } from '../../src/rpc/types.js';
import { NFS_NULL_CALL_AUTH_SYS, PROG_MISMATCH_3_3, replyBytes, RPC_MISMATCH_2_2 } from '../fixtures/rpc.js';
import { TOY, TOY_PROG, toyProgram } from '../fixtures/toy-program.js';

const peer: Peer = { address: '127.0.0.1', port: 800, transport: 'tcp' };
const SYS = encodeAuthSys({ uid: 1000, gid: 100, gids: [1, 2] });

function call(prog: number, vers: number, proc: number, args?: (w: XdrWriter) => void, cred: OpaqueAuth = SYS, xid = 77): Buffer {
  const w = encodeCallHeader(new XdrWriter(), xid, prog, vers, proc, cred);
  args?.(w);
  return w.toBuffer();
}

async function answer(d: Dispatcher, msg: Buffer, from = peer) {
  const r = new XdrReader(replyBytes(await d.dispatch(msg, from)));
  return { header: decodeReplyHeader(r), body: r };
}

function setup() {
  const toy = toyProgram();
  return { d: new Dispatcher().register(toy.pv), state: toy.state };
}

test('SUCCESS with results; credential reaches the procedure', async (t) => {
  const { d } = setup();
  const a = await answer(d, call(TOY_PROG, 3, TOY.ECHO, (w) => w.opaque(Buffer.from('hi'))));
  t.like(a?.header, { kind: 'accepted', stat: accept_stat.SUCCESS });
  t.is(a?.body.opaque(10).toString(), 'hi');
  const who = await answer(d, call(TOY_PROG, 3, TOY.WHO));
  t.deepEqual([who!.body.uint32(), who!.body.uint32(), who!.body.uint32()], [1000, 100, 2]);
  const anon = await answer(d, call(TOY_PROG, 3, TOY.WHO, undefined, AUTH_NONE_CRED));
  t.deepEqual([anon!.body.uint32(), anon!.body.uint32()], [65534, 65534]);
});

test('PROG_MISMATCH(3,3) for versions 2 and 4 of a program registered at 3 only', async (t) => {
  const { d } = setup();
  for (const vers of [2, 4]) {
    const a = await answer(d, call(TOY_PROG, vers, 0));
    t.deepEqual(a?.header, { xid: 77, kind: 'accepted', stat: accept_stat.PROG_MISMATCH, mismatch: { low: 3, high: 3 } });
  }
  d.register({ prog: 100003, vers: 3, name: 'nfs', procedures: [() => undefined] });
  const v4 = Buffer.from(NFS_NULL_CALL_AUTH_SYS);
  v4.writeUInt32BE(4, 16);
  t.deepEqual(replyBytes(await d.dispatch(v4, peer)), PROG_MISMATCH_3_3);
});

test('PROG_MISMATCH reports the registered range', async (t) => {
  const { d } = setup();
  d.register({ prog: TOY_PROG, vers: 1, name: 'toy1', procedures: [] });
  t.like((await answer(d, call(TOY_PROG, 7, 0)))?.header, { mismatch: { low: 1, high: 3 } });
});

test('PROG_UNAVAIL, PROC_UNAVAIL', async (t) => {
  const { d } = setup();
  t.like((await answer(d, call(100227, 3, 0)))?.header, { kind: 'accepted', stat: accept_stat.PROG_UNAVAIL });
  t.like((await answer(d, call(TOY_PROG, 3, TOY.HOLE)))?.header, { stat: accept_stat.PROC_UNAVAIL });
  t.like((await answer(d, call(TOY_PROG, 3, 0xffffffff)))?.header, { stat: accept_stat.PROC_UNAVAIL });
});

test('RPC_MISMATCH(2,2) for rpcvers != 2, even when the rest is truncated', async (t) => {
  const { d } = setup();
  const msg = Buffer.from(NFS_NULL_CALL_AUTH_SYS.subarray(0, 12));
  msg.writeUInt32BE(3, 8);
  t.deepEqual(replyBytes(await d.dispatch(msg, peer)), RPC_MISMATCH_2_2);
});

test('GARBAGE_ARGS when arguments do not decode', async (t) => {
  const { d } = setup();
  t.like((await answer(d, call(TOY_PROG, 3, TOY.ECHO, (w) => w.uint32(5000))))?.header, { stat: accept_stat.GARBAGE_ARGS });
  t.like((await answer(d, call(TOY_PROG, 3, TOY.NULL, (w) => w.uint32(1))))?.header, { stat: accept_stat.GARBAGE_ARGS });
});

test('SYSTEM_ERR when a procedure throws, and the next call is served', async (t) => {
  const { d } = setup();
  t.like((await answer(d, call(TOY_PROG, 3, TOY.THROW)))?.header, { stat: accept_stat.SYSTEM_ERR });
  t.like((await answer(d, call(TOY_PROG, 3, TOY.NULL)))?.header, { stat: accept_stat.SUCCESS });
});

test('AUTH_ERROR for bad and unsupported credentials', async (t) => {
  const { d } = setup();
  const bad = { flavor: 1, body: Buffer.alloc(3) };
  t.like((await answer(d, call(TOY_PROG, 3, 0, undefined, bad)))?.header, { kind: 'auth_error', why: auth_stat.AUTH_BADCRED });
  t.like((await answer(d, call(TOY_PROG, 3, 0, undefined, { flavor: 6, body: Buffer.alloc(8) })))?.header, { why: auth_stat.AUTH_TOOWEAK });
});

test('a REPLY sent to the server is dropped; short messages and truncated headers disconnect', async (t) => {
  const { d } = setup();
  const reply = Buffer.alloc(24);
  reply.writeUInt32BE(1, 4);
  t.is(await d.dispatch(reply, peer), null);
  t.is(await d.dispatch(Buffer.alloc(0), peer), DISCONNECT);
  t.is(await d.dispatch(Buffer.alloc(7), peer), DISCONNECT);
  for (const cut of [8, 12, 16, 24, 30, 60]) t.is(await d.dispatch(NFS_NULL_CALL_AUTH_SYS.subarray(0, cut), peer), DISCONNECT, `cut ${cut}`);
});

test('duplicate request cache: a completed retransmit replays, one in progress is dropped', async (t) => {
  const { d, state } = setup();
  const msg = call(TOY_PROG, 3, TOY.COUNT, (w) => w.uint32(50), SYS, 900);
  const first = d.dispatch(msg, peer);
  t.is(await d.dispatch(msg, peer), null, 'still running: dropped');
  const a = replyBytes(await first);
  const b = replyBytes(await d.dispatch(msg, peer));
  t.deepEqual(a, b);
  t.is(state.count, 1);
  await d.dispatch(msg, { ...peer, port: 801 });
  t.is(state.count, 2, 'another peer port is another call');
  await d.dispatch(call(TOY_PROG, 3, TOY.COUNT, (w) => w.uint32(0), SYS, 901), peer);
  t.is(state.count, 3, 'another xid is another call');
});

test('idempotent procedures are not cached', async (t) => {
  const { d } = setup();
  const msg = call(TOY_PROG, 3, TOY.ECHO, (w) => w.opaque(Buffer.from('x')));
  await d.dispatch(msg, peer);
  await d.dispatch(msg, peer);
  t.is(d.drc.size, 0);
});

test('DuplicateRequestCache is bounded in entries and age', (t) => {
  const c = new DuplicateRequestCache({ maxEntries: 3, maxAgeMs: 1000 });
  for (let i = 0; i < 10; i++) {
    c.begin(`k${i}`, 0);
    c.complete(`k${i}`, Buffer.of(i));
  }
  t.is(c.size, 3);
  t.deepEqual(c.begin('k9', 10), { state: 'done', reply: Buffer.of(9) });
  t.deepEqual(c.begin('k0', 10), { state: 'new' });
  t.deepEqual(c.begin('k0', 20), { state: 'in-progress' });
  c.begin('late', 5000);
  t.is(c.size, 1, 'old entries expired');
  c.abandon('late');
  t.is(c.size, 0);
  t.is(c.bytes, 0);
});

test('DuplicateRequestCache is bounded in bytes: large replies push the oldest out', (t) => {
  const c = new DuplicateRequestCache({ maxEntries: 1000, maxBytes: 10_000 });
  for (let i = 0; i < 100; i++) {
    c.begin(`k${i}`, 0);
    c.complete(`k${i}`, Buffer.alloc(1000, i));
    t.true(c.bytes <= 10_000, `held ${c.bytes}`);
  }
  t.true(c.size >= 5 && c.size < 10, `entries ${c.size}`);
  t.deepEqual(c.begin('k99', 1), { state: 'done', reply: Buffer.alloc(1000, 99) });
  t.deepEqual(c.begin('k0', 1), { state: 'new' });
});
