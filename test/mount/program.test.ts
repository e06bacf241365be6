// MOUNT v3 over a real RPC server on loopback: MNT, DUMP, UMNT, UMNTALL, EXPORT and the limits.
import test from 'ava';
import { XdrReader, XdrWriter } from '@nfs-ts/xdr';
import { AUTH_NONE_CRED } from '../../src/rpc/auth.js';
import { createMountProgram, MOUNT_PROGRAM, MOUNTPROC3, mountstat3 } from '../../src/mount/program.js';
import { Dispatcher } from '../../src/rpc/dispatcher.js';
import { accept_stat, auth_flavor, decodeReplyHeader, encodeCallHeader } from '../../src/rpc/message.js';
import { createRpcServer } from '../../src/rpc/server.js';
import { RpcClient } from '../helpers/rpc-client.js';
import { replyBytes } from '../fixtures/rpc.js';
import { FsError } from '../../src/errors/fs-error.js';

const ROOT_FH = Buffer.from('0100000000000000000000010123456789abcdef0123456789abcdef', 'hex');
const SUB_FH = Buffer.from('0100000000000000000000020123456789abcdef0123456789abcdef', 'hex');

/** A two-level export: the root holds directory `sub` and file `file`. */
function resolve(components: readonly Buffer[]): Buffer {
  const path = components.map((c) => c.toString()).join('/');
  if (path === '') return ROOT_FH;
  if (path === 'sub') return SUB_FH;
  throw new FsError(path === 'file' || path.startsWith('file/') ? 'ENOTDIR' : 'ENOENT');
}

async function start() {
  const server = createRpcServer(new Dispatcher().register(createMountProgram({ resolve })));
  const port = await server.listenTcp('127.0.0.1', 0);
  const udp = await server.listenUdp('127.0.0.1', 0);
  return { server, port, udp };
}

function readDump(r: XdrReader): { host: string; dir: string }[] {
  const out = [];
  while (r.bool()) out.push({ host: r.string(255).toString(), dir: r.string(1024).toString() });
  r.done();
  return out;
}

test('MNT /union returns the root handle and AUTH_SYS, AUTH_NONE; DUMP lists it; UMNT removes it', async (t) => {
  const { server, port } = await start();
  const c = await RpcClient.connect('tcp', '127.0.0.1', port);
  await c.ok(MOUNT_PROGRAM, 3, MOUNTPROC3.NULL);
  for (const path of ['/union', '/union/']) {
    const r = await c.ok(MOUNT_PROGRAM, 3, MOUNTPROC3.MNT, (w) => w.string(path));
    t.is(r.enum(), mountstat3.MNT3_OK);
    t.deepEqual(Buffer.from(r.opaque(64)), ROOT_FH);
    t.is(r.arrayLength(8), 2);
    t.deepEqual([r.int32(), r.int32()], [auth_flavor.AUTH_SYS, auth_flavor.AUTH_NONE]);
    r.done();
  }
  t.deepEqual(readDump(await c.ok(MOUNT_PROGRAM, 3, MOUNTPROC3.DUMP)), [{ host: '127.0.0.1', dir: '/union' }]);
  (await c.ok(MOUNT_PROGRAM, 3, MOUNTPROC3.UMNT, (w) => w.string('/union'))).done();
  t.deepEqual(readDump(await c.ok(MOUNT_PROGRAM, 3, MOUNTPROC3.DUMP)), []);
  await c.ok(MOUNT_PROGRAM, 3, MOUNTPROC3.MNT, (w) => w.string('/union'));
  (await c.ok(MOUNT_PROGRAM, 3, MOUNTPROC3.UMNTALL)).done();
  t.deepEqual(readDump(await c.ok(MOUNT_PROGRAM, 3, MOUNTPROC3.DUMP)), []);
  c.close();
  await server.close();
});

test('MNT of an unknown path is MNT3ERR_NOENT; an over-long path is GARBAGE_ARGS', async (t) => {
  const { server, udp } = await start();
  const c = await RpcClient.connect('udp', '127.0.0.1', udp);
  for (const path of ['/', '/other', '/union/missing', '/union/../etc', '/union/./sub', '/unio', '/unionx', '']) {
    const r = await c.ok(MOUNT_PROGRAM, 3, MOUNTPROC3.MNT, (w) => w.string(path));
    t.is(r.enum(), mountstat3.MNT3ERR_NOENT, path);
    r.done();
  }
  t.is((await c.ok(MOUNT_PROGRAM, 3, MOUNTPROC3.MNT, (w) => w.string('/'.repeat(1024)))).enum(), mountstat3.MNT3ERR_NOENT);
  t.like((await c.call(MOUNT_PROGRAM, 3, MOUNTPROC3.MNT, (w) => w.string('/'.repeat(1025)))).header, { stat: accept_stat.GARBAGE_ARGS });
  t.like((await c.call(MOUNT_PROGRAM, 3, MOUNTPROC3.MNT)).header, { stat: accept_stat.GARBAGE_ARGS });
  t.like((await c.call(MOUNT_PROGRAM, 1, MOUNTPROC3.NULL)).header, { stat: accept_stat.PROG_MISMATCH, mismatch: { low: 3, high: 3 } });
  t.like((await c.call(MOUNT_PROGRAM, 3, 6)).header, { stat: accept_stat.PROC_UNAVAIL });
  c.close();
  await server.close();
});

test('MNT of a directory below the export returns its handle; errno failures map to mountstat3', async (t) => {
  const { server, port } = await start();
  const c = await RpcClient.connect('tcp', '127.0.0.1', port);
  const r = await c.ok(MOUNT_PROGRAM, 3, MOUNTPROC3.MNT, (w) => w.string('/union//sub/'));
  t.is(r.enum(), mountstat3.MNT3_OK);
  t.deepEqual(Buffer.from(r.opaque(64)), SUB_FH);
  t.is((await c.ok(MOUNT_PROGRAM, 3, MOUNTPROC3.MNT, (w) => w.string('/union/file'))).enum(), mountstat3.MNT3ERR_NOTDIR);
  t.is((await c.ok(MOUNT_PROGRAM, 3, MOUNTPROC3.MNT, (w) => w.string('/union/file/x'))).enum(), mountstat3.MNT3ERR_NOTDIR);
  c.close();
  await server.close();
});

test('EXPORT lists the one export with no group restriction', async (t) => {
  const server = createRpcServer(new Dispatcher().register(createMountProgram({ exportPath: '/data', resolve })));
  const c = await RpcClient.connect('tcp', '127.0.0.1', await server.listenTcp('127.0.0.1', 0));
  const r = await c.ok(MOUNT_PROGRAM, 3, MOUNTPROC3.EXPORT);
  t.true(r.bool());
  t.is(r.string(1024).toString(), '/data');
  t.false(r.bool(), 'no groups');
  t.false(r.bool(), 'no more exports');
  r.done();
  c.close();
  await server.close();
});

test('the mount list is bounded, oldest first out', async (t) => {
  const d = new Dispatcher().register(createMountProgram({ resolve, maxMounts: 2 }));
  const call = (proc: number, args?: (w: XdrWriter) => void) => {
    const w = encodeCallHeader(new XdrWriter(), 1, MOUNT_PROGRAM, 3, proc, AUTH_NONE_CRED);
    args?.(w);
    return w.toBuffer();
  };
  for (const address of ['10.0.0.1', '10.0.0.2', '10.0.0.3']) {
    await d.dispatch(call(MOUNTPROC3.MNT, (w) => w.string('/union')), { address, port: 700, transport: 'udp' });
  }
  const reply = new XdrReader(replyBytes(await d.dispatch(call(MOUNTPROC3.DUMP), { address: '10.0.0.9', port: 1, transport: 'udp' })));
  decodeReplyHeader(reply);
  t.deepEqual(readDump(reply).map((m) => m.host), ['10.0.0.2', '10.0.0.3']);
});
