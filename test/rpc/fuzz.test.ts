// Hostile bytes cannot stop the server: >100,000 generated malformed messages over TCP and UDP
// (truncated records, lengths past the end, 2 GiB fragment headers, garbage arguments, unknown
// programs, versions and procedures, bad credentials), then the server must still answer, with
// heap growth bounded. Deterministic cases have their exact RPC answer asserted. Seeded, so a
// failure reproduces.
import test from 'ava';
import net from 'node:net';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { XdrReader, XdrWriter } from '@nfs-ts/xdr';
import { logger } from '../../src/log.js';
import { AUTH_NONE_CRED, encodeAuthSys } from '../../src/rpc/auth.js';
import { Dispatcher } from '../../src/rpc/dispatcher.js';
import { accept_stat, auth_stat, decodeReplyHeader, encodeCallHeader, type OpaqueAuth, type ReplyHeader } from '../../src/rpc/message.js';
import { encodeRecordMark, RecordDecoder } from '../../src/rpc/record-marking.js';
import { createRpcServer } from '../../src/rpc/server.js';
import { RpcClient } from '../helpers/rpc-client.js';
import { TOY, TOY_PROG, toyProgram } from '../fixtures/toy-program.js';
import { rng } from '../fixtures/rng.js';

v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const SEED = Number(process.env['FUZZ_SEED'] ?? 0x5eed1234);
const SYS = encodeAuthSys({ uid: 1000, gid: 1000, gids: [4, 24, 27], machinename: 'fuzzer' });
const INTERESTING = [0, 1, 2, 3, 4, 5, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffe, 400, 401, 1024, 1025, 100003, 100005, TOY_PROG];


function call(xid: number, prog: number, vers: number, proc: number, args?: (w: XdrWriter) => void, cred: OpaqueAuth = SYS, rpcvers = 2): Buffer {
  const w = encodeCallHeader(new XdrWriter(), xid, prog, vers, proc, cred);
  if (rpcvers !== 2) w.patchUint32(8, rpcvers);
  args?.(w);
  return w.toBuffer();
}

type Expect = { kind: 'accepted'; stat: number; mismatch?: { low: number; high: number } } | { kind: 'rpc_mismatch' } | { kind: 'auth_error'; why: number };

/** A call whose answer is fixed by the RFC, with that answer. */
function deterministic(next: () => number, xid: number): { msg: Buffer; expect: Expect } {
  switch (next() % 8) {
    case 0:
      return { msg: call(xid, TOY_PROG, next() % 2 ? 2 : 4, 0), expect: { kind: 'accepted', stat: accept_stat.PROG_MISMATCH, mismatch: { low: 3, high: 3 } } };
    case 1:
      return { msg: call(xid, TOY_PROG, 3, TOY.HOLE + (next() % 2 ? 0 : 2 + (next() % 100000))), expect: { kind: 'accepted', stat: accept_stat.PROC_UNAVAIL } };
    case 2:
      return { msg: call(xid, TOY_PROG, 3, 0, undefined, SYS, next() % 2 ? 3 : next() || 1), expect: { kind: 'rpc_mismatch' } };
    case 3:
      return { msg: call(xid, TOY_PROG, 3, TOY.ECHO, (w) => w.uint32(1025 + (next() % 0x7fffffff))), expect: { kind: 'accepted', stat: accept_stat.GARBAGE_ARGS } };
    case 4:
      return { msg: call(xid, TOY_PROG, 3, TOY.NULL, (w) => w.uint32(next())), expect: { kind: 'accepted', stat: accept_stat.GARBAGE_ARGS } };
    case 5:
      return { msg: call(xid, next() % 2 ? 100227 : 0x4000_0000 + (next() % 1000), 3, 0), expect: { kind: 'accepted', stat: accept_stat.PROG_UNAVAIL } };
    case 6:
      return {
        msg: call(xid, TOY_PROG, 3, 0, undefined, { flavor: 1, body: SYS.body.subarray(0, next() % SYS.body.length) }),
        expect: { kind: 'auth_error', why: auth_stat.AUTH_BADCRED },
      };
    default:
      return { msg: call(xid, TOY_PROG, 3, 0, undefined, { flavor: 6, body: Buffer.alloc(next() % 400) }), expect: { kind: 'auth_error', why: auth_stat.AUTH_TOOWEAK } };
  }
}

/**
 * A valid call broken at random. With `headerIntact` only its arguments are damaged (the answer
 * is GARBAGE_ARGS or a result, and a TCP connection must survive it); otherwise anything goes.
 * The xid has the top bit set, apart from what a mutation hits.
 */
function malformed(next: () => number, xid: number, headerIntact: boolean): Buffer {
  const argsOf = [
    () => Buffer.alloc(0),
    () => new XdrWriter().opaque(Buffer.alloc(next() % 64, 0x41)).toBuffer(),
    () => Buffer.alloc(0),
    () => new XdrWriter().uint32(next() % 3).toBuffer(),
    () => new XdrWriter().uint32(next() % 2048).toBuffer(),
  ];
  const proc = next() % argsOf.length;
  const header = call(xid, TOY_PROG, 3, proc, undefined, next() % 2 ? SYS : AUTH_NONE_CRED);
  const msg = Buffer.concat([header, argsOf[proc]!()]);
  const from = headerIntact ? header.length : 4;
  const kind = next() % 5;
  if (kind === 0 && !headerIntact) {
    const b = Buffer.allocUnsafe(next() % 160);
    for (let i = 0; i < b.length; i++) b[i] = next() & 0xff;
    return b;
  }
  if (kind === 0 || msg.length - from < 4) {
    const garbage = Buffer.allocUnsafe(1 + (next() % 64));
    for (let i = 0; i < garbage.length; i++) garbage[i] = next() & 0xff;
    return Buffer.concat([msg, garbage]);
  }
  switch (kind) {
    case 1:
      return msg.subarray(0, from + (next() % (msg.length - from)));
    case 2:
      for (let n = 1 + (next() % 4); n > 0; n--) msg[from + (next() % (msg.length - from))] = next() & 0xff;
      return msg;
    case 3:
      msg.writeUInt32BE(INTERESTING[next() % INTERESTING.length]!, from + 4 * (next() % Math.floor((msg.length - from) / 4)));
      return msg;
    default:
      return Buffer.concat([msg, Buffer.alloc(1 + (next() % 64), next() & 0xff)]);
  }
}

function matches(h: ReplyHeader, e: Expect): boolean {
  if (h.kind !== e.kind) return false;
  if (h.kind === 'accepted' && e.kind === 'accepted') return h.stat === e.stat && (!e.mismatch || (h.mismatch?.low === e.mismatch.low && h.mismatch?.high === e.mismatch.high));
  if (h.kind === 'rpc_mismatch') return h.low === 2 && h.high === 2;
  return h.kind === 'auth_error' && e.kind === 'auth_error' && h.why === e.why;
}

/** A raw TCP connection that collects reply headers by xid. */
async function rawConnection(port: number) {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  const replies = new Map<number, ReplyHeader>();
  const waiters = new Map<number, () => void>();
  const decoder = new RecordDecoder((record) => {
    const h = decodeReplyHeader(new XdrReader(record));
    replies.set(h.xid, h);
    waiters.get(h.xid)?.();
  }, 4 * 1024 * 1024);
  socket.on('data', (c: Buffer) => decoder.push(c));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  return {
    socket,
    replies,
    closed,
    waitFor: (xid: number) => new Promise<void>((resolve, reject) => {
      if (replies.has(xid)) return resolve();
      const timer = setTimeout(() => reject(new Error(`no reply for sentinel ${xid}`)), 20_000);
      waiters.set(xid, () => {
        clearTimeout(timer);
        resolve();
      });
    }),
  };
}

test('100,000+ malformed messages over TCP and UDP; the server keeps answering with bounded memory', async (t) => {
  t.timeout(120_000);
  logger.silent = true;
  const started = Date.now();
  const next = rng(SEED);
  const server = createRpcServer(new Dispatcher().register(toyProgram({ maxDelayMs: 2, maxBig: 4096 }).pv));
  const port = await server.listenTcp('127.0.0.1', 0);
  const udpPort = await server.listenUdp('127.0.0.1', 0);
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  let sent = 0;

  // 1. One TCP stream per round of well-framed records: deterministic calls asserted; calls with
  //    damaged arguments (some split into two fragments) must leave the connection working.
  let xid = 1;
  const expectations = new Map<number, Expect>();
  for (let round = 0; round < 6; round++) {
    const conn = await rawConnection(port);
    for (let batch = 0; batch < 20; batch++) {
      const parts: Buffer[] = [];
      for (let i = 0; i < 500; i++) {
        let msg: Buffer;
        if (next() % 4 === 0) {
          const d = deterministic(next, xid);
          expectations.set(xid++, d.expect);
          msg = d.msg;
        } else {
          msg = malformed(next, (0x8000_0000 | next()) >>> 0, true);
        }
        if (msg.length > 8 && next() % 8 === 0) {
          const cut = 1 + (next() % (msg.length - 1));
          parts.push(encodeRecordMark(cut, false), msg.subarray(0, cut), encodeRecordMark(msg.length - cut), msg.subarray(cut));
        } else {
          parts.push(encodeRecordMark(msg.length), msg);
        }
        sent++;
      }
      const sentinel = xid++;
      parts.push(...[call(sentinel, TOY_PROG, 3, TOY.NULL)].flatMap((m) => [encodeRecordMark(m.length), m]));
      conn.socket.write(Buffer.concat(parts));
      await conn.waitFor(sentinel);
    }
    for (const [x, e] of expectations) {
      const h = conn.replies.get(x);
      if (!h || !matches(h, e)) t.fail(`xid ${x}: expected ${JSON.stringify(e)}, got ${JSON.stringify(h)}`);
    }
    expectations.clear();
    conn.socket.destroy();
  }

  // 2. Connection killers: 2 GiB and just-oversized fragment headers, records cut short by a
  //    close, lengths past the end, call headers cut short inside a complete record. Each costs
  //    its own connection (the server must close it), never the server.
  const killers = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) {
      const conn = await rawConnection(port);
      const valid = call(xid++, TOY_PROG, 3, TOY.NULL);
      switch (next() % 5) {
        case 0:
          conn.socket.end(Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]));
          break;
        case 1:
          conn.socket.end(Buffer.concat([encodeRecordMark(1024 * 1024 + 64 * 1024 + 1 + (next() % 1000)), valid]));
          break;
        case 2:
          conn.socket.end(Buffer.concat([encodeRecordMark(valid.length + 1 + (next() % 100)), valid]));
          break;
        case 3:
          conn.socket.end(Buffer.concat([encodeRecordMark(40, false), valid.subarray(0, 40), encodeRecordMark(0x7fffffff - 30)]));
          break;
        default: {
          // Left open by us: only the server can end this one.
          const cut = next() % valid.length;
          conn.socket.write(Buffer.concat([encodeRecordMark(cut), valid.subarray(0, cut)]));
        }
      }
      await conn.closed;
      sent++;
    }
  };
  await Promise.all(Array.from({ length: 8 }, () => killers(250)));

  // 3. UDP datagrams, paced by a sentinel round trip so the socket buffers do not drop most of
  //    them (the sentinel itself may be dropped, hence the retries).
  const udp = await RpcClient.connect('udp', '127.0.0.1', udpPort, { timeoutMs: 500 });
  for (let batch = 0; batch < 800; batch++) {
    for (let i = 0; i < 100; i++) {
      udp.sendRaw(next() % 4 === 0 ? deterministic(next, (0x8000_0000 | next()) >>> 0).msg : malformed(next, (0x8000_0000 | next()) >>> 0, false));
      sent++;
    }
    for (let attempt = 0; ; attempt++) {
      try {
        await udp.ok(TOY_PROG, 3, TOY.NULL);
        break;
      } catch (e) {
        if (attempt >= 10) throw e;
      }
    }
  }
  udp.close();

  t.true(sent >= 100_000, `sent ${sent}`);
  const elapsed = Date.now() - started;
  t.log(`${sent} malformed messages in ${elapsed} ms (seed ${SEED})`);
  t.true(elapsed < 60_000, `took ${elapsed} ms`);

  // Still serving, on both transports, for a fresh client.
  for (const [transport, p] of [['tcp', port], ['udp', udpPort]] as const) {
    const c = await RpcClient.connect(transport, '127.0.0.1', p);
    await t.notThrowsAsync(c.ok(TOY_PROG, 3, TOY.NULL));
    const echo = await c.ok(TOY_PROG, 3, TOY.ECHO, (w) => w.opaque(Buffer.from('still here')));
    t.is(echo.opaque(64).toString(), 'still here');
    t.like((await c.call(TOY_PROG, 4, 0)).header, { stat: accept_stat.PROG_MISMATCH, mismatch: { low: 3, high: 3 } });
    c.close();
  }
  t.true(server.dispatcher.drc.size <= 4096);

  gc();
  const growth = process.memoryUsage().heapUsed - heapBefore;
  t.log(`heap growth ${(growth / 1048576).toFixed(1)} MiB`);
  t.true(growth < 64 * 1024 * 1024, `heap grew by ${growth} bytes`);
  await server.close();
  logger.silent = false;
});
