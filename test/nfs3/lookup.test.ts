import test from 'ava';
import { hex } from '../fixtures/hex.js';
import { nfs3Program } from '../../src/nfs3/program.js';
import * as c from '../../src/nfs3/constants.js';
import { FakeFs } from './fake-fs.js';
import { args, callProc, ROOT_CRED, exportAll } from './call.js';
import { postOpAttr } from './decode.js';

function setup() {
  const fs = new FakeFs();
  const file = fs.add(1, 'hello', 1, 'hi');
  return { fs, file, prog: nfs3Program(exportAll(fs)) };
}

test('LOOKUP: found', async (t) => {
  const { fs, file, prog } = setup();
  const a = hex(`
    00000008 46414b45 00000001     # dir: root
    00000005 68656c6c 6f000000     # name "hello"
  `);
  const { r } = await callProc(prog, c.NFSPROC3.LOOKUP, a);
  t.is(r.uint32(), c.NFS3_OK);
  t.deepEqual(Buffer.from(r.opaque(64)), fs.handleOf(file));
  t.is(postOpAttr(r)?.fileid, file);
  t.is(postOpAttr(r)?.fileid, 1);
  t.is(r.remaining, 0);
  const lookupCall = fs.calls.find((x) => x[0] === 'lookup')!;
  t.is(lookupCall[3], ROOT_CRED);
});

test('LOOKUP: NOENT carries the directory attributes', async (t) => {
  const { prog } = setup();
  const { r } = await callProc(prog, c.NFSPROC3.LOOKUP, args((w) => w.opaque(Buffer.from('FAKE\0\0\0\x01', 'latin1')).string('nope')));
  t.is(r.uint32(), c.NFS3ERR_NOENT);
  t.is(postOpAttr(r)?.fileid, 1);
  t.is(r.remaining, 0);
});

test('LOOKUP: bad names never reach the VFS', async (t) => {
  const { fs, prog } = setup();
  const cases: [Buffer, number][] = [
    [Buffer.from('a/b'), c.NFS3ERR_ACCES],
    [Buffer.from('a\0'), c.NFS3ERR_ACCES],
    [Buffer.alloc(0), c.NFS3ERR_ACCES],
    [Buffer.alloc(256, 0x61), c.NFS3ERR_NAMETOOLONG],
  ];
  for (const [name, stat] of cases) {
    const { r } = await callProc(prog, c.NFSPROC3.LOOKUP, args((w) => w.opaque(fs.handleOf(1)).opaque(name)));
    t.is(r.uint32(), stat);
    t.is(postOpAttr(r)?.fileid, 1);
  }
  t.false(fs.calls.some((x) => x[0] === 'lookup'));
});

test('LOOKUP: bad directory handle gives no attributes', async (t) => {
  const { prog } = setup();
  const { r } = await callProc(prog, c.NFSPROC3.LOOKUP, args((w) => w.opaque(Buffer.from('xx')).string('a')));
  t.is(r.uint32(), c.NFS3ERR_BADHANDLE);
  t.is(postOpAttr(r), undefined);
  t.is(r.remaining, 0);
});

test('ACCESS: granted bits come from the VFS and the caller', async (t) => {
  const { fs, prog } = setup();
  const a = args((w) => w.opaque(fs.handleOf(1)).uint32(0x3f));
  const root = await callProc(prog, c.NFSPROC3.ACCESS, a);
  t.is(root.r.uint32(), c.NFS3_OK);
  t.truthy(postOpAttr(root.r));
  t.is(root.r.uint32(), 0x3f);
  const user = await callProc(prog, c.NFSPROC3.ACCESS, a, { flavor: 1, uid: 1000, gid: 1000, gids: [], machinename: 'x' });
  t.is(user.r.uint32(), c.NFS3_OK);
  postOpAttr(user.r);
  t.is(user.r.uint32(), c.ACCESS3_READ | c.ACCESS3_LOOKUP);
});

test('READLINK: target bytes, and INVAL on a non-symlink', async (t) => {
  const { fs, prog } = setup();
  const link = fs.add(1, 'ln', 5, '../../etc/passwd');
  const ok = await callProc(prog, c.NFSPROC3.READLINK, args((w) => w.opaque(fs.handleOf(link))));
  t.is(ok.r.uint32(), c.NFS3_OK);
  t.is(postOpAttr(ok.r)?.type, c.NF3LNK);
  t.is(ok.r.string(4096).toString(), '../../etc/passwd');
  const bad = await callProc(prog, c.NFSPROC3.READLINK, args((w) => w.opaque(fs.handleOf(1))));
  t.is(bad.r.uint32(), c.NFS3ERR_INVAL);
  t.is(postOpAttr(bad.r)?.type, c.NF3DIR);
});

test('FSINFO and PATHCONF advertise the chosen limits', async (t) => {
  const { fs, prog } = setup();
  const fi = await callProc(prog, c.NFSPROC3.FSINFO, args((w) => w.opaque(fs.handleOf(1))));
  t.is(fi.r.uint32(), c.NFS3_OK);
  t.truthy(postOpAttr(fi.r));
  t.deepEqual(fi.bytes.subarray(4 + 88), hex(`
    00100000 00100000 00001000     # rtmax, rtpref 1 MiB, rtmult 4096
    00100000 00100000 00001000     # wtmax, wtpref 1 MiB, wtmult 4096
    00010000                       # dtpref 64 KiB
    001fffff ffffffff              # maxfilesize 2^53-1
    00000000 00000001              # time_delta {0, 1}
    0000001b                       # LINK | SYMLINK | HOMOGENEOUS | CANSETTIME
  `));
  const pc = await callProc(prog, c.NFSPROC3.PATHCONF, args((w) => w.opaque(fs.handleOf(1))));
  t.is(pc.r.uint32(), c.NFS3_OK);
  t.truthy(postOpAttr(pc.r));
  t.deepEqual(pc.bytes.subarray(4 + 88), hex(`
    0000fde8                       # linkmax 65000
    000000ff                       # name_max 255
    00000001 00000001              # no_trunc, chown_restricted
    00000000 00000001              # case_insensitive false, case_preserving true
  `));
});

test('FSSTAT', async (t) => {
  const { fs, prog } = setup();
  const { r } = await callProc(prog, c.NFSPROC3.FSSTAT, args((w) => w.opaque(fs.handleOf(1))));
  t.is(r.uint32(), c.NFS3_OK);
  t.truthy(postOpAttr(r));
  t.deepEqual([r.uint64Number(), r.uint64Number(), r.uint64Number(), r.uint64Number(), r.uint64Number(), r.uint64Number(), r.uint32()],
    [2 ** 40, 2 ** 39, 2 ** 38, 1000, 500, 400, 0]);
  t.is(r.remaining, 0);
});

test('ACCESS: a read-only union, or a client rule ro, withholds MODIFY, EXTEND and DELETE', async (t) => {
  const { fs, file } = setup();
  const ro = new FakeFs();
  ro.readOnly = true;
  ro.add(1, 'f', 1, 'data');
  for (const [prog, id] of [[nfs3Program(exportAll(fs, { rw: false })), 1], [nfs3Program(exportAll(fs, { rw: false })), file],
    [nfs3Program(exportAll(ro)), 1], [nfs3Program(exportAll(ro)), file]] as const) {
    const { r } = await callProc(prog, c.NFSPROC3.ACCESS, args((w) => w.opaque(fs.handleOf(id)).uint32(0x3f)));
    t.is(r.uint32(), c.NFS3_OK);
    postOpAttr(r);
    t.is(r.uint32(), c.ACCESS3_READ | c.ACCESS3_LOOKUP | c.ACCESS3_EXECUTE);
  }
});
