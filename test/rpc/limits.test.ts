/**
 * The RPC layer's limits (src/rpc/limits.ts) on a real server over loopback: connection counts,
 * the idle and record timeouts, the budget of held bytes and the calls in flight (backpressure,
 * then resumption), UDP calls in flight. Clients are raw sockets (for half-sent records) and
 * RpcClient, from several loopback addresses.
 */
import test from 'ava';
import type net from 'node:net';
import dgram from 'node:dgram';
import { XdrWriter } from '@nfs-ts/xdr';
import { Dispatcher } from '../../src/rpc/dispatcher.js';
import { createRpcServer, type RpcServer } from '../../src/rpc/server.js';
import { DEFAULT_LIMITS, type RpcLimits } from '../../src/rpc/limits.js';
import type { RpcDrop, RpcObserver } from '../../src/rpc/observer.js';
import { auth_flavor, encodeCallHeader } from '../../src/rpc/message.js';
import { encodeRecordMark } from '../../src/rpc/record-marking.js';
import { RpcClient } from '../helpers/rpc-client.js';
import { TOY, TOY_PROG, TOY_VERS, toyProgram } from '../fixtures/toy-program.js';
import { connectFrom as connect } from '../helpers/net.js';

function observer(drops: RpcDrop[]): RpcObserver {
  return {
    callStarted() {}, callFinished() {}, rejected() {}, retransmit() {}, connectionOpened() {}, connectionClosed() {},
    dropped: (r) => void drops.push(r),
  };
}

async function serve(limits: Partial<RpcLimits>): Promise<{ server: RpcServer; port: number; udp: number; drops: RpcDrop[] }> {
  const drops: RpcDrop[] = [];
  const server = createRpcServer(new Dispatcher({ observer: observer(drops) }).register(toyProgram({ maxDelayMs: 5000 }).pv), { limits: { ...DEFAULT_LIMITS, ...limits } });
  const port = await server.listenTcp('127.0.0.1', 0);
  return { server, port, udp: await server.listenUdp('127.0.0.1', port), drops };
}

/** Resolves true when `s` is closed by the other side within `ms`. */
function closedWithin(s: net.Socket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (s.destroyed || s.readableEnded) return resolve(true);
    const timer = setTimeout(() => resolve(false), ms);
    const done = (): void => { clearTimeout(timer); resolve(true); };
    s.once('close', done);
    s.once('end', done);
    s.resume();
  });
}

/** A NULL call of the toy program as one record. */
function nullRecord(xid: number): Buffer {
  const body = encodeCallHeader(new XdrWriter(64), xid, TOY_PROG, TOY_VERS, TOY.NULL, NONE).toBuffer();
  return Buffer.concat([encodeRecordMark(body.length), body]);
}

const NONE = { flavor: auth_flavor.AUTH_NONE, body: Buffer.alloc(0) };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('connections are counted per client address and in all; one over either limit is closed at once', async (t) => {
  const { server, port, drops } = await serve({ maxConnections: 6, maxConnectionsPerClient: 3 });
  try {
    const a = await Promise.all([1, 2, 3].map(() => connect(port, '127.0.0.1')));
    const fourth = await connect(port, '127.0.0.1');
    t.true(await closedWithin(fourth, 2000), 'the 4th connection of 127.0.0.1 is closed');
    const b = await Promise.all([1, 2, 3].map(() => connect(port, '127.0.0.2')));
    const seventh = await connect(port, '127.0.0.3');
    t.true(await closedWithin(seventh, 2000), 'the 7th connection in all is closed');
    for (const s of [...a, ...b]) t.false(await closedWithin(s, 50), 'the admitted ones stay open');
    a[0]!.destroy();
    await sleep(100);
    const again = await RpcClient.connect('tcp', '127.0.0.1', port, { localAddress: '127.0.0.1' });
    await t.notThrowsAsync(again.ok(TOY_PROG, TOY_VERS, TOY.NULL), 'a place freed is taken again');
    again.close();
    t.deepEqual(drops.filter((d) => d.startsWith('connections')).sort(), ['connections', 'connections_per_client']);
    for (const s of [...a, ...b]) s.destroy();
  } finally {
    await server.close();
  }
});

test('a record left unfinished is closed after the record timeout, holding 64 KiB, not the 1 MiB it announced; records that keep completing are not', async (t) => {
  const { server, port, drops } = await serve({ recordTimeoutMs: 400 });
  try {
    const loris = await Promise.all(Array.from({ length: 50 }, () => connect(port)));
    for (const s of loris) s.write(Buffer.concat([encodeRecordMark(1 << 20), Buffer.alloc(10, 1)]));
    await sleep(150);
    t.true(server.load.usage.buffered <= 50 * 64 * 1024, `50 half-sent records hold ${server.load.usage.buffered} bytes`);
    // A client that sends each record in two halves, for longer than the timeout in all.
    const steady = await connect(port);
    const replies: Buffer[] = [];
    steady.on('data', (d: Buffer) => replies.push(d));
    for (let i = 0; i < 16; i++) {
      const r = nullRecord(i + 1);
      steady.write(r.subarray(0, 10));
      await sleep(25);
      steady.write(r.subarray(10));
      await sleep(25);
    }
    const closed = await Promise.all(loris.map((s) => closedWithin(s, 2000)));
    t.true(closed.every(Boolean), 'every half-sent record is closed');
    t.false(await closedWithin(steady, 10), 'a connection whose records keep completing stays open past the timeout');
    t.true(Buffer.concat(replies).length > 16 * 24, 'and its calls were answered');
    t.true(drops.filter((d) => d === 'record_timeout').length === 50);
    await sleep(50);
    t.is(server.load.usage.buffered, 0, 'nothing held once they are gone');
    steady.destroy();
  } finally {
    await server.close();
  }
});

test('an idle connection is closed after the idle timeout, but not while a call of its runs', async (t) => {
  const { server, port, drops } = await serve({ idleTimeoutMs: 300 });
  try {
    const idle = await RpcClient.connect('tcp', '127.0.0.1', port);
    await idle.ok(TOY_PROG, TOY_VERS, TOY.NULL);
    const busy = await RpcClient.connect('tcp', '127.0.0.1', port);
    const slow = busy.ok(TOY_PROG, TOY_VERS, TOY.COUNT, (w) => w.uint32(900));
    await sleep(700);
    await t.throwsAsync(idle.ok(TOY_PROG, TOY_VERS, TOY.NULL), undefined, 'the idle connection was closed');
    await t.notThrowsAsync(slow, 'the call that ran past the idle timeout was answered');
    t.true(drops.includes('idle'));
    busy.close();
    idle.close();
  } finally {
    await server.close();
  }
});

/** A raw connection that sends one call of `size` bytes (NULL plus padding, so GARBAGE_ARGS) and resolves with the ms until a reply came. */
async function bigCall(port: number, size: number): Promise<{ answered: Promise<number>; socket: net.Socket }> {
  const socket = await connect(port, '127.0.0.3');
  const head = encodeCallHeader(new XdrWriter(64), 77, TOY_PROG, TOY_VERS, TOY.NULL, NONE).toBuffer();
  const t0 = Date.now();
  const answered = new Promise<number>((resolve) => socket.once('data', () => resolve(Date.now() - t0)));
  socket.write(Buffer.concat([encodeRecordMark(size), head, Buffer.alloc(size - head.length)]));
  return { answered, socket };
}

test('past the budget of held bytes a connection holding more than a few calls stops reading, one holding little is still served; each resumes when the load falls back, and the record timeout ends a standoff', async (t) => {
  const { server, port, drops } = await serve({ bufferBudget: 1 << 20, recordTimeoutMs: 1500 });
  try {
    // A holds 1 MiB of a record it has not finished: the budget is spent.
    const a = await connect(port, '127.0.0.2');
    a.write(Buffer.concat([encodeRecordMark(1000 * 1024), Buffer.alloc(950 * 1024, 7)]));
    await sleep(200);
    t.true(server.load.spent(), `spent: ${server.load.usage.buffered} bytes held`);
    const small = await RpcClient.connect('tcp', '127.0.0.1', port, { timeoutMs: 5000 });
    const t0 = Date.now();
    await small.ok(TOY_PROG, TOY_VERS, TOY.NULL);
    t.true(Date.now() - t0 < 200, 'a client holding less than the allowance is served at once');
    const b = await bigCall(port, 300 * 1024);
    await sleep(300);
    t.true(drops.includes('buffer_budget'), 'the pause is counted');
    // A finishes its record: it is dispatched (not a call: A is closed), its buffer released.
    a.write(Buffer.alloc(50 * 1024, 7));
    const waited = await b.answered;
    t.true(waited >= 250, `the 300 KiB call waited for the budget (${waited} ms)`);

    // Again, and this time A never finishes: its record timeout frees the budget.
    const a2 = await connect(port, '127.0.0.2');
    a2.write(Buffer.concat([encodeRecordMark(1000 * 1024), Buffer.alloc(950 * 1024, 7)]));
    await sleep(200);
    const b2 = await bigCall(port, 300 * 1024);
    t.true(await b2.answered >= 800, 'the 300 KiB call waited until A\'s record timed out');
    t.true(await closedWithin(a2, 100));
    for (const s of [a, b.socket, b2.socket]) s.destroy();
    small.close();
  } finally {
    await server.close();
  }
});

test('calls in flight are bounded in all: one more waits for a place, and UDP calls over their limit are dropped', async (t) => {
  const { server, port, udp, drops } = await serve({ maxCalls: 2, maxUdpCalls: 1 });
  try {
    const c1 = await RpcClient.connect('tcp', '127.0.0.1', port);
    const c2 = await RpcClient.connect('tcp', '127.0.0.1', port);
    const slow = [c1.ok(TOY_PROG, TOY_VERS, TOY.COUNT, (w) => w.uint32(600)), c1.ok(TOY_PROG, TOY_VERS, TOY.COUNT, (w) => w.uint32(600))];
    await sleep(50);
    const t0 = Date.now();
    await c2.ok(TOY_PROG, TOY_VERS, TOY.NULL);
    t.true(Date.now() - t0 >= 450, 'the third call waited for one of the two to finish');
    await Promise.all(slow);
    t.true(drops.includes('calls'));

    const sock = dgram.createSocket('udp4');
    const got: Buffer[] = [];
    sock.on('message', (m) => got.push(m));
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    for (let xid = 1; xid <= 3; xid++) {
      const body = encodeCallHeader(new XdrWriter(64), xid, TOY_PROG, TOY_VERS, TOY.COUNT, NONE).uint32(300).toBuffer();
      sock.send(body, udp, '127.0.0.1');
    }
    await sleep(800);
    t.is(got.length, 1, 'one UDP call ran, two were dropped');
    t.is(drops.filter((d) => d === 'udp_calls').length, 2);
    sock.close();
    c1.close();
    c2.close();
  } finally {
    await server.close();
  }
});
