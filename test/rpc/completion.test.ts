// Buffers lent to replies (call.afterReply) and record buffers go back only once the transport
// is done with the call: after the reply's write completed, when the reply is dropped or
// replaced by an error, or when the connection closes; never while a reply is still queued on a
// slow socket, and never while a call still reads its arguments.
import test from 'ava';
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { XdrReader, XdrWriter } from '@nfs-ts/xdr';
import { BufferPool } from '../../src/rpc/buffer-pool.js';
import { CallCompletion } from '../../src/rpc/completion.js';
import { Dispatcher } from '../../src/rpc/dispatcher.js';
import { DuplicateRequestCache } from '../../src/rpc/drc.js';
import { encodeAuthSys } from '../../src/rpc/auth.js';
import { accept_stat, decodeReplyHeader, encodeCallHeader } from '../../src/rpc/message.js';
import { encodeRecordMark, RecordDecoder } from '../../src/rpc/record-marking.js';
import { createRpcServer } from '../../src/rpc/server.js';
import type { ProgramVersion, RpcCall } from '../../src/rpc/types.js';

const PROG = 0x2000_0777;
const P = { FILL: 0, FILL_THEN_THROW: 1, DIGEST: 2 } as const;
const SIZE = 1 << 20;

/** FILL(byte, n): n bytes of `byte` in a pooled buffer lent to the reply. DIGEST(data, ms): sha256 of the data after a delay. */
function lendingProgram(pool: BufferPool, seen: Set<ArrayBufferLike>): ProgramVersion {
  const fill = (call: RpcCall, reply: XdrWriter, fail: boolean): void => {
    const byte = call.args.uint32();
    const n = call.args.uint32();
    call.args.done();
    if (!call.afterReply) throw new Error('no afterReply over a transport');
    const b = pool.take(n);
    seen.add(b.buffer);
    call.afterReply(() => pool.give(b));
    b.fill(byte, 0, n);
    if (fail) throw new Error('failed after lending');
    reply.opaqueRef(b.subarray(0, n));
  };
  return {
    prog: PROG, vers: 1, name: 'lend',
    procedures: [
      (call, reply) => fill(call, reply, false),
      (call, reply) => fill(call, reply, true),
      async (call, reply) => {
        const data = call.args.opaque(SIZE);
        const ms = call.args.uint32();
        call.args.done();
        await new Promise((r) => setTimeout(r, ms));
        reply.opaqueFixed(createHash('sha256').update(data).digest());
      },
    ],
  };
}

function message(xid: number, proc: number, args: (w: XdrWriter) => void): Buffer {
  const w = encodeCallHeader(new XdrWriter(), xid, PROG, 1, proc, encodeAuthSys({ uid: 0, gid: 0, machinename: 't' }));
  args(w);
  const m = w.toBuffer();
  return Buffer.concat([encodeRecordMark(m.length), m]);
}

/** A raw client whose reading can be paused, so the server's writes back up. */
async function rawClient(port: number): Promise<{ sock: net.Socket; replies: Map<number, XdrReader>; waitFor(n: number): Promise<void> }> {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  const replies = new Map<number, XdrReader>();
  let notify = (): void => undefined;
  const d = new RecordDecoder((record) => {
    const r = new XdrReader(Buffer.from(record));
    const h = decodeReplyHeader(r);
    if (h.kind !== 'accepted') throw new Error('rejected');
    replies.set(h.xid, h.stat === accept_stat.SUCCESS ? r : new XdrReader(Buffer.from([0xff, 0xff, 0xff, 0xff])));
    notify();
  }, 64 * 1024 * 1024);
  sock.on('data', (c: Buffer) => d.push(c));
  sock.on('error', () => undefined);
  const waitFor = (n: number): Promise<void> => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${replies.size} of ${n} replies within 5 s`)), 5000);
    notify = () => {
      if (replies.size < n) return;
      clearTimeout(timer);
      resolve();
    };
    notify();
  });
  return { sock, replies, waitFor };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('a pooled buffer is not reused before its reply has been written (slow reader)', async (t) => {
  const pool = new BufferPool({ maxSize: SIZE, maxFreeBytes: 64 * SIZE });
  const seen = new Set<ArrayBufferLike>();
  const server = createRpcServer(new Dispatcher().register(lendingProgram(pool, seen)));
  const port = await server.listenTcp('127.0.0.1', 0);
  const c = await rawClient(port);
  c.sock.pause();
  // 48 MiB of replies, alternating contents: more than loopback socket buffers absorb
  // (tcp_rmem's maximum is often 32 MiB).
  const N = 48;
  // One at a time, so each call runs after the previous reply was handed to the socket: a
  // buffer given back too early would be taken and refilled by the next call.
  for (let i = 0; i < N; i++) {
    c.sock.write(message(i + 1, P.FILL, (w) => w.uint32(i % 2 ? 0xb2 : 0xa1).uint32(SIZE)));
    await sleep(15);
  }
  await sleep(200);
  t.true(pool.freeBytes < seen.size * SIZE, 'replies still queued keep their buffers');
  c.sock.resume();
  await c.waitFor(N);
  for (let i = 0; i < N; i++) {
    const data = (c.replies.get(i + 1) as XdrReader).opaque(SIZE);
    const want = i % 2 ? 0xb2 : 0xa1;
    t.true(data.length === SIZE && data.every((x) => x === want), `reply ${i + 1} intact`);
  }
  await sleep(50);
  t.is(pool.freeBytes, seen.size * SIZE, 'every buffer came back once written');
  // Sequential calls now reuse: no new buffers.
  const before = seen.size;
  for (let i = 0; i < 4; i++) {
    c.sock.write(message(100 + i, P.FILL, (w) => w.uint32(i).uint32(SIZE)));
    await c.waitFor(N + i + 1);
  }
  t.is(seen.size, before);
  c.sock.destroy();
  await server.close();
});

test('lent buffers come back when the connection closes with replies unsent, and after an error reply', async (t) => {
  const pool = new BufferPool({ maxSize: SIZE, maxFreeBytes: 64 * SIZE });
  const seen = new Set<ArrayBufferLike>();
  const server = createRpcServer(new Dispatcher().register(lendingProgram(pool, seen)));
  const port = await server.listenTcp('127.0.0.1', 0);
  const c = await rawClient(port);
  c.sock.pause();
  for (let i = 0; i < 16; i++) c.sock.write(message(i + 1, P.FILL, (w) => w.uint32(7).uint32(SIZE)));
  await sleep(300);
  t.true(pool.freeBytes < seen.size * SIZE);
  c.sock.destroy();
  await sleep(300);
  t.is(pool.freeBytes, seen.size * SIZE, 'all returned after close');

  const c2 = await rawClient(port);
  c2.sock.write(message(50, P.FILL_THEN_THROW, (w) => w.uint32(1).uint32(SIZE)));
  await c2.waitFor(1);
  await sleep(50);
  t.is(pool.freeBytes, seen.size * SIZE, 'returned after SYSTEM_ERR replaced the reply');
  c2.sock.destroy();
  await server.close();
});

test('a record buffer is not assembled into while its call still reads its arguments', async (t) => {
  const server = createRpcServer(new Dispatcher().register(lendingProgram(new BufferPool(), new Set())));
  const port = await server.listenTcp('127.0.0.1', 0);
  const c = await rawClient(port);
  const datas = Array.from({ length: 6 }, () => randomBytes(700_000));
  const send = (i: number, ms: number): void => {
    // Written in pieces so each record is assembled in a decoder buffer.
    const m = message(i + 1, P.DIGEST, (w) => w.opaque(datas[i] as Buffer).uint32(ms));
    for (let at = 0; at < m.length; at += 100_000) c.sock.write(m.subarray(at, at + 100_000));
  };
  send(0, 400); // slow: its record must survive the records that follow
  for (let i = 1; i < 6; i++) {
    send(i, 0);
    await c.waitFor(i);
  }
  await c.waitFor(6);
  for (let i = 0; i < 6; i++) {
    t.deepEqual((c.replies.get(i + 1) as XdrReader).opaqueFixed(32), createHash('sha256').update(datas[i] as Buffer).digest(), `call ${i + 1}`);
  }
  c.sock.destroy();
  await server.close();
});

test('CallCompletion runs each callback once; the DRC keeps its own copy', (t) => {
  const c = new CallCompletion();
  let n = 0;
  c.add(() => n++);
  c.run();
  c.run();
  t.is(n, 1);
  c.add(() => n++);
  t.is(n, 2, 'added after run: runs at once');

  const drc = new DuplicateRequestCache();
  const lent = Buffer.from('lent bytes');
  drc.begin('k');
  drc.complete('k', [Buffer.from('hdr '), lent]);
  lent.fill(0);
  const got = drc.begin('k');
  t.is(got.state, 'done');
  if (got.state === 'done') {
    t.is(got.reply.toString(), 'hdr lent bytes');
    t.is(got.reply.buffer.byteLength, got.reply.length, 'its own memory, not a pool slab');
  }
});
