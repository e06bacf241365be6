// TCP and UDP transports end to end on loopback: replies, multi-fragment calls, big replies,
// oversized records closing only their own connection, UDP reply bound, IPv6 loopback.
import test from 'ava';
import net from 'node:net';
import { Dispatcher } from '../../src/rpc/dispatcher.js';
import { XdrWriter } from '@nfs-ts/xdr';
import { accept_stat, encodeCallHeader } from '../../src/rpc/message.js';
import { encodeRecordMark } from '../../src/rpc/record-marking.js';
import { createRpcServer, type RpcServer } from '../../src/rpc/server.js';
import { RpcClient } from '../helpers/rpc-client.js';
import { TOY, TOY_PROG, toyProgram } from '../fixtures/toy-program.js';

async function start(): Promise<{ server: RpcServer; tcp: number; udp: number }> {
  const server = createRpcServer(new Dispatcher().register(toyProgram().pv), { maxReplySize: 8192 });
  const tcp = await server.listenTcp('127.0.0.1', 0);
  const udp = await server.listenUdp('127.0.0.1', 0);
  return { server, tcp, udp };
}

test('TCP and UDP answer calls', async (t) => {
  const { server, tcp, udp } = await start();
  for (const [transport, port] of [['tcp', tcp], ['udp', udp]] as const) {
    const c = await RpcClient.connect(transport, '127.0.0.1', port);
    const r = await c.ok(TOY_PROG, 3, TOY.ECHO, (w) => w.opaque(Buffer.from(transport)));
    t.is(r.opaque(10).toString(), transport);
    t.like((await c.call(TOY_PROG, 4, 0)).header, { stat: accept_stat.PROG_MISMATCH, mismatch: { low: 3, high: 3 } });
    c.close();
  }
  await server.close();
});

test('TCP: many calls in flight, a multi-fragment call, a 1 MiB reply', async (t) => {
  const { server, tcp } = await start();
  const c = await RpcClient.connect('tcp', '127.0.0.1', tcp);
  const replies = await Promise.all(Array.from({ length: 200 }, (_, i) => c.ok(TOY_PROG, 3, TOY.ECHO, (w) => w.opaque(Buffer.from(`m${i}`)))));
  t.deepEqual(replies.map((r) => r.opaque(10).toString()), Array.from({ length: 200 }, (_, i) => `m${i}`));
  const big = await c.ok(TOY_PROG, 3, TOY.BIG, (w) => w.uint32(1 << 20));
  t.is(big.opaque(1 << 20).length, 1 << 20);

  const sock = net.connect(tcp, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  const got = new Promise<Buffer>((resolve) => sock.once('data', resolve));
  const msg = encodeCallHeader(new XdrWriter(), 5, TOY_PROG, 3, TOY.NULL, { flavor: 0, body: Buffer.alloc(0) }).toBuffer();
  sock.write(Buffer.concat([encodeRecordMark(10, false), msg.subarray(0, 10), encodeRecordMark(msg.length - 10), msg.subarray(10)]));
  const reply = await got;
  t.is(reply.readUInt32BE(0), 0x8000_0018);
  t.is(reply.readUInt32BE(4), 5);
  sock.destroy();
  c.close();
  await server.close();
});

test('TCP: an oversized fragment header closes that connection only', async (t) => {
  const { server, tcp } = await start();
  const good = await RpcClient.connect('tcp', '127.0.0.1', tcp);
  const bad = await RpcClient.connect('tcp', '127.0.0.1', tcp);
  bad.sendRaw(Buffer.from([0xff, 0xff, 0xff, 0xff]));
  await new Promise((r) => setTimeout(r, 100));
  t.true(bad.closed);
  await t.notThrowsAsync(good.ok(TOY_PROG, 3, TOY.NULL));
  good.close();
  await server.close();
});

test('UDP: a reply larger than the bound becomes SYSTEM_ERR', async (t) => {
  const { server, udp } = await start();
  const c = await RpcClient.connect('udp', '127.0.0.1', udp);
  t.like((await c.call(TOY_PROG, 3, TOY.BIG, (w) => w.uint32(9000))).header, { stat: accept_stat.SYSTEM_ERR });
  await t.notThrowsAsync(c.ok(TOY_PROG, 3, TOY.BIG, (w) => w.uint32(4000)));
  c.close();
  await server.close();
});

test('IPv6 loopback works where available', async (t) => {
  const server = createRpcServer(new Dispatcher().register(toyProgram().pv));
  let port: number;
  try {
    port = await server.listenTcp('::1', 0);
    await server.listenUdp('::1', 0);
  } catch (e) {
    await server.close();
    t.log(`no IPv6 loopback here: ${(e as Error).message}`);
    t.pass();
    return;
  }
  const c = await RpcClient.connect('tcp', '::1', port);
  await t.notThrowsAsync(c.ok(TOY_PROG, 3, TOY.NULL));
  c.close();
  await server.close();
});

test('TCP: calls in flight per connection are bounded', async (t) => {
  const server = createRpcServer(new Dispatcher().register(toyProgram().pv), { maxInFlight: 2 });
  const c = await RpcClient.connect('tcp', '127.0.0.1', await server.listenTcp('127.0.0.1', 0));
  const started = Date.now();
  const counts = await Promise.all(Array.from({ length: 6 }, () => c.ok(TOY_PROG, 3, TOY.COUNT, (w) => w.uint32(100)).then((r) => r.uint32())));
  const elapsed = Date.now() - started;
  t.deepEqual([...counts].sort(), [1, 2, 3, 4, 5, 6]);
  t.true(elapsed >= 290, `6 calls of 100 ms, 2 at a time, took ${elapsed} ms`);
  c.close();
  await server.close();
});

test('TCP: a procedure that throws gets SYSTEM_ERR and the connection stays up', async (t) => {
  const { server, tcp } = await start();
  const c = await RpcClient.connect('tcp', '127.0.0.1', tcp);
  t.like((await c.call(TOY_PROG, 3, TOY.THROW)).header, { stat: accept_stat.SYSTEM_ERR });
  await t.notThrowsAsync(c.ok(TOY_PROG, 3, TOY.NULL));
  t.false(c.closed);
  c.close();
  await server.close();
});
