import test from 'ava';
import { XdrError, XdrReader, XdrWriter } from '@nfs-ts/xdr';
import { hex } from '../fixtures/hex.js';
import type { Attr } from '../../src/vfs/types.js';
import { writeFattr3, writePostOpAttr, writeWcc, FATTR3_SIZE } from '../../src/nfs3/structs/attr.js';
import { readSattr3, readSattrguard3 } from '../../src/nfs3/structs/sattr3.js';
import { readFh, writePostOpFh } from '../../src/nfs3/structs/fh.js';
import { checkFilename, checkPath } from '../../src/nfs3/structs/names.js';
import * as c from '../../src/nfs3/constants.js';
import { fattr3 } from './decode.js';

const attr: Attr = {
  type: 1, mode: 0o100644 /* type bits must not leak */, nlink: 2, uid: 1000, gid: 100,
  size: 0x1_0000_0005, used: 8192, rdevMajor: 0, rdevMinor: 0, fsid: 7, fileid: 42,
  atime: { sec: 1, nsec: 2 }, mtime: { sec: 3, nsec: 4 }, ctime: { sec: 5, nsec: 6 },
};

const FATTR3_HEX = `
  00000001                 # type NF3REG
  000001a4                 # mode 0644
  00000002                 # nlink
  000003e8 00000064        # uid 1000, gid 100
  00000001 00000005        # size 2^32 + 5
  00000000 00002000        # used 8192
  00000000 00000000        # rdev
  00000000 00000007        # fsid
  00000000 0000002a        # fileid 42
  00000001 00000002        # atime
  00000003 00000004        # mtime
  00000005 00000006        # ctime
`;

test('fattr3: generate, parse, size', (t) => {
  const w = new XdrWriter();
  writeFattr3(w, attr);
  const b = w.toBuffer();
  t.deepEqual(b, hex(FATTR3_HEX));
  t.is(b.length, FATTR3_SIZE);
  const d = fattr3(new XdrReader(b));
  t.is(d.size, attr.size);
  t.is(d.mode, 0o644);
  t.is(d.fileid, 42);
});

test('post_op_attr and wcc_data', (t) => {
  const w = new XdrWriter();
  writePostOpAttr(w, undefined);
  writeWcc(w, attr, undefined);
  t.deepEqual(w.toBuffer(), hex(`
    00000000                       # post_op_attr: no attributes
    00000001                       # pre_op_attr follows
    00000001 00000005              #   size
    00000003 00000004              #   mtime
    00000005 00000006              #   ctime
    00000000                       # post_op_attr: no attributes
  `));
});

test('sattr3: every field set', (t) => {
  const r = new XdrReader(hex(`
    00000001 000001ed              # mode 0755
    00000001 000003e8              # uid 1000
    00000001 00000064              # gid 100
    00000001 00000000 00001000     # size 4096
    00000001                       # atime SET_TO_SERVER_TIME
    00000002 0000000a 0000000b     # mtime SET_TO_CLIENT_TIME {10, 11}
    00000001 00000005 00000006     # guard: ctime {5, 6}
  `));
  t.deepEqual(readSattr3(r), {
    mode: 0o755, uid: 1000, gid: 100, size: 4096,
    atime: { how: 'server' }, mtime: { how: 'client', time: { sec: 10, nsec: 11 } },
  });
  t.deepEqual(readSattrguard3(r), { sec: 5, nsec: 6 });
  t.is(r.remaining, 0);
});

test('sattr3: nothing set gives an empty object', (t) => {
  const r = new XdrReader(hex('00000000 00000000 00000000 00000000 00000000 00000000 00000000'));
  t.deepEqual(readSattr3(r), {});
  t.is(readSattrguard3(r), undefined);
});

test('sattr3: time_how out of range is XdrError', (t) => {
  const r = new XdrReader(hex('00000000 00000000 00000000 00000000 00000003 00000000'));
  t.throws(() => readSattr3(r), { instanceOf: XdrError });
});

test('nfs_fh3: 64 bytes decode, 65 are XdrError', (t) => {
  const ok = new XdrWriter().opaque(Buffer.alloc(64, 1)).toBuffer();
  t.is(readFh(new XdrReader(ok)).length, 64);
  const bad = new XdrWriter().opaque(Buffer.alloc(65, 1)).toBuffer();
  t.throws(() => readFh(new XdrReader(bad)), { instanceOf: XdrError });
});

test('post_op_fh3', (t) => {
  const w = new XdrWriter();
  writePostOpFh(w, Buffer.from([1, 2, 3, 4, 5]));
  writePostOpFh(w, undefined);
  t.deepEqual(w.toBuffer(), hex('00000001 00000005 0102030405000000 00000000'));
});

test('filename checks', (t) => {
  t.is(checkFilename(Buffer.from('a')), c.NFS3_OK);
  t.is(checkFilename(Buffer.from('..')), c.NFS3_OK);
  t.is(checkFilename(Buffer.alloc(0)), c.NFS3ERR_ACCES);
  t.is(checkFilename(Buffer.from('a/b')), c.NFS3ERR_ACCES);
  t.is(checkFilename(Buffer.from('a\0b')), c.NFS3ERR_ACCES);
  t.is(checkFilename(Buffer.alloc(255, 0x61)), c.NFS3_OK);
  t.is(checkFilename(Buffer.alloc(256, 0x61)), c.NFS3ERR_NAMETOOLONG);
  t.is(checkPath(Buffer.from('../../etc/passwd')), c.NFS3_OK);
  t.is(checkPath(Buffer.alloc(4096, 0x61)), c.NFS3ERR_NAMETOOLONG);
});
