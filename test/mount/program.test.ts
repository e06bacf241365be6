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
import { FakeFs } from '../nfs3/fake-fs.js';
import { exportAll } from '../nfs3/call.js';
import { ExportTable } from '../../src/exports/export-table.js';
import { oneUnion } from '../../src/exports/union-source.js';
import { byPrecedence, parseClientRules, resolveClientRules } from '../../src/exports/client-rules.js';

/** A two-level export: the root holds directory `sub` and file `file`. */
const fs = new FakeFs();
const ROOT_CRED = { uid: 0, gid: 0, gids: [] };
const SUB_FH = fs.handleOf(await fs.mkdir(fs.root, Buffer.from('sub'), {}, ROOT_CRED));
await fs.create(fs.root, Buffer.from('file'), { mode: 'unchecked', attr: {} }, ROOT_CRED);
const ROOT_FH = fs.handleOf(fs.root);

function mountOf(table: ExportTable, o: { maxMounts?: number } = {}) {
  return createMountProgram({ exports: { mnt: async (dir, call) => (await table.mnt(dir, call.peer, call.cred)).fh, list: () => table.list() }, ...o });
}

async function start() {
  const server = createRpcServer(new Dispatcher().register(mountOf(exportAll(fs))));
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

test('EXPORT lists every export with the client specifications of its rules', async (t) => {
  const rules = async (text: string) => byPrecedence(await resolveClientRules(parseClientRules(text)));
  const table = new ExportTable([
    { path: '/data', fsid: 1, unions: oneUnion(fs, '/data'), clients: await rules('10.0.0.0/24(rw) 10.0.1.5') },
    { path: '/pub', fsid: 2, unions: oneUnion(fs, '/pub'), clients: await rules('*(ro)') },
  ]);
  const server = createRpcServer(new Dispatcher().register(mountOf(table)));
  const c = await RpcClient.connect('tcp', '127.0.0.1', await server.listenTcp('127.0.0.1', 0));
  const r = await c.ok(MOUNT_PROGRAM, 3, MOUNTPROC3.EXPORT);
  const list: [string, string[]][] = [];
  while (r.bool()) {
    const path = r.string(1024).toString();
    const groups: string[] = [];
    while (r.bool()) groups.push(r.string(255).toString());
    list.push([path, groups]);
  }
  r.done();
  // Host rules come first: the order in which they are matched.
  t.deepEqual(list, [['/data', ['10.0.1.5', '10.0.0.0/24']], ['/pub', ['*']]]);
  c.close();
  await server.close();
});

test('the mount list is bounded, oldest first out', async (t) => {
  const d = new Dispatcher().register(mountOf(exportAll(fs), { maxMounts: 2 }));
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
