// READ over TCP with pooled data buffers, against a real union: concurrent READs of different
// files on one connection whose client reads slowly get intact data (a buffer is not reused
// before its reply is written), and buffers are reused once replies are out.
import test from 'ava';
import net from 'node:net';
import * as path from 'node:path';
import { XdrReader, XdrWriter } from '@nfs-ts/xdr';
import { openUnion } from '../../src/vfs/index.js';
import type { UnionFs } from '../../src/vfs/types.js';
import { exportAll } from './call.js';
import { nfs3Program } from '../../src/nfs3/program.js';
import { NFSPROC3, NFS3_OK } from '../../src/nfs3/constants.js';
import { BufferPool } from '../../src/rpc/buffer-pool.js';
import { Dispatcher } from '../../src/rpc/dispatcher.js';
import { createRpcServer } from '../../src/rpc/server.js';
import { encodeAuthSys } from '../../src/rpc/auth.js';
import { accept_stat, decodeReplyHeader, encodeCallHeader } from '../../src/rpc/message.js';
import { encodeRecordMark, RecordDecoder } from '../../src/rpc/record-marking.js';
import { makeLayers } from '../helpers/layers.js';
import { postOpAttr } from './decode.js';

const MiB = 1 << 20;
const ROOT = { uid: 0, gid: 0, gids: [] };

test('concurrent READs of different files over one slow connection: intact data, buffers reused after', async (t) => {
  const A = Buffer.alloc(24 * MiB, 0xa1);
  const B = Buffer.alloc(24 * MiB, 0xb2);
  const L = makeLayers('oci', [[['a', 'file', A], ['b', 'file', B]]]);
  const u = await openUnion({ lowers: L.lowers, whiteoutFormat: 'oci', state: path.join(L.base, 'state') });
  // Records every buffer the procedure asked the union to read into.
  const targets: (Buffer | undefined)[] = [];
  const spy = new Proxy(u, {
    get(target, p) {
      if (p === 'read') {
        return (id: number, off: number, n: number, cred: typeof ROOT, into?: Buffer) => {
          targets.push(into);
          return target.read(id, off, n, cred, into);
        };
      }
      const v = Reflect.get(target, p) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as UnionFs;
  const pool = new BufferPool({ maxSize: MiB, maxFreeBytes: 64 * MiB });
  const server = createRpcServer(new Dispatcher().register(nfs3Program(exportAll(spy), { readBuffers: pool })));
  const port = await server.listenTcp('127.0.0.1', 0);
  const fh = (name: string): Buffer => u.handleOf(u.lookup(u.root, Buffer.from(name), ROOT));
  const fa = fh('a');
  const fb = fh('b');

  const sock = net.connect(port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  const replies = new Map<number, Buffer>();
  const dec = new RecordDecoder((rec) => replies.set(rec.readUInt32BE(0), Buffer.from(rec)), 64 * MiB);
  sock.on('data', (c: Buffer) => dec.push(c));
  const cred = encodeAuthSys({ uid: 0, gid: 0, machinename: 't' });
  const read = (xid: number, h: Buffer, off: number): void => {
    const w = encodeCallHeader(new XdrWriter(), xid, 100003, 3, NFSPROC3.READ, cred);
    w.opaque(h).uint64Number(off).uint32(MiB);
    const m = w.toBuffer();
    sock.write(Buffer.concat([encodeRecordMark(m.length), m]));
  };
  const waitFor = async (n: number): Promise<void> => {
    for (let i = 0; i < 500 && replies.size < n; i++) await new Promise((r) => setTimeout(r, 10));
  };

  sock.pause();
  // 48 MiB of replies: more than loopback socket buffers absorb (tcp_rmem max is often 32 MiB).
  const N = 48;
  for (let i = 0; i < N; i++) {
    read(i + 1, i % 2 ? fb : fa, (i >> 1) * MiB);
    await new Promise((r) => setTimeout(r, 15)); // each READ runs after the previous reply was queued
  }
  // Replies are still queued in the server (the peer reads nothing): their buffers are out.
  // (Node copies what a partial write leaves over, so the wire data alone would not always
  // show an early reuse; the pool's books do.)
  const distinct = (): number => new Set(targets.map((b) => b?.buffer)).size;
  t.true(pool.freeBytes < distinct() * MiB, 'buffers of queued replies are not back in the pool');
  sock.resume();
  await waitFor(N);
  t.is(replies.size, N);
  for (let i = 0; i < N; i++) {
    const r = new XdrReader(replies.get(i + 1) as Buffer);
    const h = decodeReplyHeader(r);
    t.like(h, { kind: 'accepted', stat: accept_stat.SUCCESS });
    t.is(r.uint32(), NFS3_OK);
    postOpAttr(r);
    t.is(r.uint32(), MiB);
    r.bool();
    const data = r.opaque(MiB);
    const want = i % 2 ? 0xb2 : 0xa1;
    t.true(data.length === MiB && data.every((x) => x === want), `READ ${i + 1} intact`);
  }
  t.true(targets.every((b) => b !== undefined && b.length >= MiB), 'every READ used a pooled buffer');
  const used = new Set(targets.map((b) => b?.buffer));
  // Sequential READs now: no buffer is new.
  for (let i = 0; i < 3; i++) {
    read(100 + i, fa, 0);
    await waitFor(N + i + 1);
  }
  t.is(replies.size, N + 3);
  await new Promise((r) => setTimeout(r, 50));
  t.is(pool.freeBytes, distinct() * MiB, 'every buffer is back once its reply was written');
  t.true(targets.slice(N).every((b) => used.has(b?.buffer)), 'buffers given back after the replies were written are reused');
  sock.destroy();
  await server.close();
  L.cleanup();
});
