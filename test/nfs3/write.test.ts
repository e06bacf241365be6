import test from 'ava';
import { XdrError } from '@nfs-ts/xdr';
import { hex } from '../fixtures/hex.js';
import { nfs3Program } from '../../src/nfs3/program.js';
import * as c from '../../src/nfs3/constants.js';
import { FakeFs } from './fake-fs.js';
import { args, callProc, exportAll } from './call.js';
import { postOpAttr, wcc } from './decode.js';

function setup() {
  const fs = new FakeFs();
  const file = fs.add(1, 'f', 1, 'hello world');
  return { fs, file, prog: nfs3Program(exportAll(fs)) };
}

test('WRITE: annotated args, wcc, count, committed, verifier', async (t) => {
  const { fs, prog } = setup();
  const before = fs.getattr(2);
  const a = hex(`
    00000008 46414b45 00000002     # file: id 2
    00000000 00000006              # offset 6
    00000005                       # count 5
    00000000                       # UNSTABLE
    00000005 574f524c 44000000     # data "WORLD"
  `);
  const { bytes, r } = await callProc(prog, c.NFSPROC3.WRITE, a);
  t.is(r.uint32(), c.NFS3_OK);
  const w = wcc(r);
  t.deepEqual(w.before, { size: 11, mtime: [before.mtime.sec, before.mtime.nsec], ctime: [before.ctime.sec, before.ctime.nsec] });
  t.is(w.after?.size, 11);
  t.notDeepEqual(w.after?.mtime, w.before?.mtime);
  t.deepEqual(bytes.subarray(bytes.length - 16), hex(`
    00000005                       # count
    00000000                       # committed UNSTABLE
    01234567 89abcdef              # writeverf3
  `));
  t.is((await fs.read(2, 0, 100, { uid: 0, gid: 0, gids: [] })).data.toString(), 'hello WORLD');
});

test('WRITE: committed is never below the request', async (t) => {
  const { fs, prog } = setup();
  fs.writeCommitted = c.UNSTABLE as 0;
  const { bytes } = await callProc(prog, c.NFSPROC3.WRITE,
    args((w) => w.opaque(fs.handleOf(2)).uint64Number(0).uint32(1).uint32(c.FILE_SYNC).opaque(Buffer.from('x'))));
  t.is(bytes.readUInt32BE(bytes.length - 12), c.FILE_SYNC);
  t.true(fs.calls.some((x) => x[0] === 'commit'));
});

test('WRITE: count above the data is INVAL, below it writes count bytes', async (t) => {
  const { fs, prog } = setup();
  const over = await callProc(prog, c.NFSPROC3.WRITE,
    args((w) => w.opaque(fs.handleOf(2)).uint64Number(0).uint32(9).uint32(0).opaque(Buffer.from('abc'))));
  t.is(over.r.uint32(), c.NFS3ERR_INVAL);
  const under = await callProc(prog, c.NFSPROC3.WRITE,
    args((w) => w.opaque(fs.handleOf(2)).uint64Number(0).uint32(2).uint32(0).opaque(Buffer.from('XYZ'))));
  t.is(under.r.uint32(), c.NFS3_OK);
  t.is(fs.getattr(2).size, 11);
  const wr = fs.calls.filter((x) => x[0] === 'write');
  t.is(wr.length, 1);
  t.deepEqual(wr[0]![3], Buffer.from('XY'));
});

test('WRITE: to a directory is ISDIR; bad stable_how is XdrError', async (t) => {
  const { fs, prog } = setup();
  const dir = await callProc(prog, c.NFSPROC3.WRITE,
    args((w) => w.opaque(fs.handleOf(1)).uint64Number(0).uint32(1).uint32(0).opaque(Buffer.from('x'))));
  t.is(dir.r.uint32(), c.NFS3ERR_ISDIR);
  await t.throwsAsync(async () => callProc(prog, c.NFSPROC3.WRITE,
    args((w) => w.opaque(fs.handleOf(2)).uint64Number(0).uint32(1).uint32(3).opaque(Buffer.from('x')))), { instanceOf: XdrError });
});

test('COMMIT: same verifier as WRITE, wcc around', async (t) => {
  const { fs, prog } = setup();
  const { bytes, r } = await callProc(prog, c.NFSPROC3.COMMIT, args((w) => w.opaque(fs.handleOf(2)).uint64Number(0).uint32(0)));
  t.is(r.uint32(), c.NFS3_OK);
  const w = wcc(r);
  t.truthy(w.before);
  t.truthy(w.after);
  t.deepEqual(bytes.subarray(bytes.length - 8), fs.writeVerifier);
  t.is(r.remaining, 8);
});

test('READ: data, count, eof; count capped at 1 MiB', async (t) => {
  const { fs, prog } = setup();
  const a = hex(`
    00000008 46414b45 00000002     # file: id 2
    00000000 00000006              # offset 6
    00000010                       # count 16
  `);
  const { bytes, r } = await callProc(prog, c.NFSPROC3.READ, a);
  t.is(r.uint32(), c.NFS3_OK);
  t.is(postOpAttr(r)?.size, 11);
  t.deepEqual(bytes.subarray(4 + 88), hex(`
    00000005                       # count
    00000001                       # eof
    00000005 776f726c 64000000     # "world"
  `));
  await callProc(prog, c.NFSPROC3.READ, args((w) => w.opaque(fs.handleOf(2)).uint64Number(0).uint32(0xffffffff)));
  const rd = fs.calls.filter((x) => x[0] === 'read').at(-1)!;
  t.is(rd[3], 1024 * 1024);
});

test('READ over UDP is capped at 32 KiB so the reply fits one datagram; FSINFO advertises that', async (t) => {
  const { fs, prog } = setup();
  await callProc(prog, c.NFSPROC3.READ, args((w) => w.opaque(fs.handleOf(2)).uint64Number(0).uint32(1 << 20)), undefined, 'udp');
  t.is(fs.calls.filter((x) => x[0] === 'read').at(-1)![3], 32 * 1024);
  const { r } = await callProc(prog, c.NFSPROC3.FSINFO, args((w) => w.opaque(fs.handleOf(1))), undefined, 'udp');
  t.is(r.uint32(), c.NFS3_OK);
  postOpAttr(r);
  t.is(r.uint32(), 32 * 1024, 'rtmax');
});

test('READ: a directory is ISDIR with attributes', async (t) => {
  const { fs, prog } = setup();
  const { r } = await callProc(prog, c.NFSPROC3.READ, args((w) => w.opaque(fs.handleOf(1)).uint64Number(0).uint32(10)));
  t.is(r.uint32(), c.NFS3ERR_ISDIR);
  t.is(postOpAttr(r)?.fileid, 1);
  t.is(r.remaining, 0);
});

test('SETATTR: guard mismatch is NOT_SYNC and changes nothing', async (t) => {
  const { fs, prog } = setup();
  const before = fs.getattr(2);
  const a = hex(`
    00000008 46414b45 00000002     # object: id 2
    00000001 000001c0              # mode 0700
    00000000 00000000              # uid, gid unchanged
    00000000                       # size unchanged
    00000000 00000000              # atime, mtime DONT_CHANGE
    00000001 00000001 00000002     # guard: ctime {1, 2}
  `);
  const { r } = await callProc(prog, c.NFSPROC3.SETATTR, a);
  t.is(r.uint32(), c.NFS3ERR_NOT_SYNC);
  const w = wcc(r);
  t.deepEqual(w.before?.ctime, [before.ctime.sec, before.ctime.nsec]);
  t.is(w.after?.mode, 0o644);
  t.false(fs.calls.some((x) => x[0] === 'setattr'));
});

test('SETATTR: matching guard applies the change', async (t) => {
  const { fs, prog } = setup();
  const { ctime } = fs.getattr(2);
  const a = args((w) => {
    w.opaque(fs.handleOf(2));
    w.uint32(1).uint32(0o700).uint32(0).uint32(0).uint32(1).uint64Number(3).uint32(0).uint32(0);
    w.uint32(1).uint32(ctime.sec).uint32(ctime.nsec);
  });
  const { r } = await callProc(prog, c.NFSPROC3.SETATTR, a);
  t.is(r.uint32(), c.NFS3_OK);
  const w = wcc(r);
  t.is(w.before?.size, 11);
  t.is(w.after?.size, 3);
  t.is(w.after?.mode, 0o700);
  t.deepEqual(fs.calls.find((x) => x[0] === 'setattr')![2], { mode: 0o700, size: 3 });
});
