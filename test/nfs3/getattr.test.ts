import test from 'ava';
import { XdrError } from '@nfs-ts/xdr';
import { hex } from '../fixtures/hex.js';
import { nfs3Program } from '../../src/nfs3/program.js';
import * as c from '../../src/nfs3/constants.js';
import { FakeFs } from './fake-fs.js';
import { callProc, exportAll } from './call.js';

const ROOT_FH_ARGS = hex(`
  00000008 46414b45 00000001      # nfs_fh3: 8 bytes, "FAKE" id 1
`);

test('GETATTR of the root: annotated reply', async (t) => {
  const { bytes } = await callProc(nfs3Program(exportAll(new FakeFs())), c.NFSPROC3.GETATTR, ROOT_FH_ARGS);
  t.deepEqual(bytes, hex(`
    00000000                   # NFS3_OK
    00000002                   # NF3DIR
    000001ed                   # mode 0755
    00000002                   # nlink
    00000000 00000000          # uid, gid
    00000000 00000000          # size 0
    00000000 00001000          # used 4096
    00000000 00000000          # rdev
    00000000 00000007          # fsid
    00000000 00000001          # fileid 1
    000f4241 000001f4          # atime {1000001, 500}
    000f4241 000001f4          # mtime
    000f4241 000001f4          # ctime
  `));
});

test('GETATTR: a handle that is not ours is BADHANDLE, a gone object STALE; bodies are empty', async (t) => {
  const prog = nfs3Program(exportAll(new FakeFs()));
  const bad = await callProc(prog, c.NFSPROC3.GETATTR, hex('00000004 01020304'));
  t.deepEqual(bad.bytes, hex('00002711'));
  const gone = await callProc(prog, c.NFSPROC3.GETATTR, hex('00000008 46414b45 00000063'));
  t.deepEqual(gone.bytes, hex('00000046'));
});

test('GETATTR: an oversized handle is XdrError (GARBAGE_ARGS)', async (t) => {
  const prog = nfs3Program(exportAll(new FakeFs()));
  const args = Buffer.concat([hex('00000044'), Buffer.alloc(68)]);
  await t.throwsAsync(async () => callProc(prog, c.NFSPROC3.GETATTR, args), { instanceOf: XdrError });
});

test('GETATTR: a bug in the VFS is SERVERFAULT', async (t) => {
  const fs = new FakeFs();
  fs.failNext = { method: 'getattr', err: new TypeError('boom') };
  const { bytes } = await callProc(nfs3Program(exportAll(fs)), c.NFSPROC3.GETATTR, ROOT_FH_ARGS);
  t.deepEqual(bytes, hex('00002716'));
});

test('NULL: empty reply', async (t) => {
  const { bytes } = await callProc(nfs3Program(exportAll(new FakeFs())), c.NFSPROC3.NULL, Buffer.alloc(0));
  t.is(bytes.length, 0);
});
