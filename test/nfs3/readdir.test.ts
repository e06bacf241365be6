import test from 'ava';
import type { XdrReader } from '@nfs-ts/xdr';
import { hex } from '../fixtures/hex.js';
import { nfs3Program } from '../../src/nfs3/program.js';
import * as c from '../../src/nfs3/constants.js';
import { FakeFs } from './fake-fs.js';
import { args, callProc, exportAll } from './call.js';
import { postOpAttr, postOpFh } from './decode.js';

// Root listing in the fake: '.', '..', 'a', 'bb', 'ccccc' with cookies 1..5.
function setup(opts = {}) {
  const fs = new FakeFs();
  fs.add(1, 'a', 1);
  fs.add(1, 'bb', 1);
  fs.add(1, 'ccccc', 2);
  return { fs, prog: nfs3Program(exportAll(fs), opts) };
}

const FIXED = 88 + 8 + 4 + 4; // dir post_op_attr + cookieverf + end of list + eof
const E = [28, 28, 28, 28, 32]; // entry3 sizes of '.', '..', 'a', 'bb', 'ccccc'
const ALL = FIXED + E.reduce((a, b) => a + b, 0);

function readdirArgs(count: number, cookie = 0n): Buffer {
  return args((w) => w.opaque(Buffer.from('FAKE\0\0\0\x01', 'latin1')).uint64(cookie).uint64(0xdeadn).uint32(count));
}

function decodeList(r: XdrReader, plus: boolean) {
  const names: string[] = [];
  const cookies: bigint[] = [];
  while (r.bool()) {
    r.uint64Number();
    names.push(r.string(255).toString());
    cookies.push(r.uint64());
    if (plus) {
      postOpAttr(r);
      postOpFh(r);
    }
  }
  return { names, cookies, eof: r.bool() };
}

test('READDIR: annotated reply of a one-entry page', async (t) => {
  const { prog } = setup();
  const { bytes } = await callProc(prog, c.NFSPROC3.READDIR, readdirArgs(FIXED + 28, 2n));
  t.deepEqual(bytes.subarray(4 + 88), hex(`
    11223344 55667788              # cookieverf: the VFS's, echoed
    00000001                       # value_follows
    00000000 00000002              #   fileid 2
    00000001 61000000              #   name "a"
    00000000 00000003              #   cookie 3
    00000000                       # no more entries
    00000000                       # eof false
  `));
});

test('READDIR: count fits everything exactly -> all entries and eof', async (t) => {
  const { prog } = setup();
  const { bytes, r } = await callProc(prog, c.NFSPROC3.READDIR, readdirArgs(ALL));
  t.is(bytes.length - 4, ALL);
  t.is(r.uint32(), c.NFS3_OK);
  t.truthy(postOpAttr(r));
  r.uint64();
  const l = decodeList(r, false);
  t.deepEqual(l.names, ['.', '..', 'a', 'bb', 'ccccc']);
  t.deepEqual(l.cookies, [1n, 2n, 3n, 4n, 5n]);
  t.true(l.eof);
});

test('READDIR: one byte short drops the last entry and clears eof', async (t) => {
  const { prog } = setup();
  const { bytes, r } = await callProc(prog, c.NFSPROC3.READDIR, readdirArgs(ALL - 1));
  t.true(bytes.length - 4 <= ALL - 1);
  r.uint32();
  postOpAttr(r);
  r.uint64();
  const l = decodeList(r, false);
  t.deepEqual(l.names, ['.', '..', 'a', 'bb']);
  t.false(l.eof);
});

test('READDIR: the reply never exceeds count, for every count', async (t) => {
  const { prog } = setup();
  for (let count = FIXED + 28; count <= ALL + 8; count++) {
    const { bytes, r } = await callProc(prog, c.NFSPROC3.READDIR, readdirArgs(count));
    t.is(r.uint32(), c.NFS3_OK);
    t.true(bytes.length - 4 <= count, `count ${count}`);
  }
});

test('READDIR: not even one entry fits -> TOOSMALL with directory attributes', async (t) => {
  const { prog } = setup();
  const { r } = await callProc(prog, c.NFSPROC3.READDIR, readdirArgs(FIXED + 27));
  t.is(r.uint32(), c.NFS3ERR_TOOSMALL);
  t.is(postOpAttr(r)?.fileid, 1);
  t.is(r.remaining, 0);
});

test('READDIR: past the end is an empty page with eof, not TOOSMALL', async (t) => {
  const { prog } = setup();
  const { r } = await callProc(prog, c.NFSPROC3.READDIR, readdirArgs(FIXED, 5n));
  t.is(r.uint32(), c.NFS3_OK);
  postOpAttr(r);
  r.uint64();
  t.deepEqual(decodeList(r, false), { names: [], cookies: [], eof: true });
});

test('READDIR: eof is false when the VFS has more, even if its page fit', async (t) => {
  const { prog } = setup({ maxDirEntries: 2 });
  const { r } = await callProc(prog, c.NFSPROC3.READDIR, readdirArgs(8192));
  r.uint32();
  postOpAttr(r);
  r.uint64();
  const l = decodeList(r, false);
  t.deepEqual(l.names, ['.', '..']);
  t.false(l.eof);
});

test('READDIR: any client verifier is accepted; not a directory -> NOTDIR', async (t) => {
  const { fs, prog } = setup();
  const file = fs.add(1, 'f', 1);
  const { r } = await callProc(prog, c.NFSPROC3.READDIR,
    args((w) => w.opaque(fs.handleOf(file)).uint64(0n).uint64(0n).uint32(4096)));
  t.is(r.uint32(), c.NFS3ERR_NOTDIR);
  t.is(postOpAttr(r)?.fileid, file);
});

// READDIRPLUS: each entry adds post_op_attr (88) + post_op_fh3 of an 8-byte handle (16).
const P = E.map((x) => x + 88 + 16);
const ALLPLUS = FIXED + P.reduce((a, b) => a + b, 0);
const DIRALL = E.reduce((a, b) => a + b, 0);

function plusArgs(dircount: number, maxcount: number): Buffer {
  return args((w) => w.opaque(Buffer.from('FAKE\0\0\0\x01', 'latin1')).uint64(0n).uint64(0n).uint32(dircount).uint32(maxcount));
}

async function plus(prog: ReturnType<typeof setup>['prog'], dircount: number, maxcount: number) {
  const { bytes, r } = await callProc(prog, c.NFSPROC3.READDIRPLUS, plusArgs(dircount, maxcount));
  const status = r.uint32();
  postOpAttr(r);
  if (status !== c.NFS3_OK) return { status, size: bytes.length - 4, names: [] as string[], eof: false };
  r.uint64();
  const l = decodeList(r, true);
  t_remaining(r);
  return { status, size: bytes.length - 4, names: l.names, eof: l.eof };
}

function t_remaining(r: XdrReader): void {
  if (r.remaining !== 0) throw new Error('trailing bytes in reply');
}

test('READDIRPLUS: exact fit of both limits -> everything, eof', async (t) => {
  const { prog } = setup();
  const res = await plus(prog, DIRALL, ALLPLUS);
  t.is(res.size, ALLPLUS);
  t.deepEqual(res.names, ['.', '..', 'a', 'bb', 'ccccc']);
  t.true(res.eof);
});

test('READDIRPLUS: maxcount one short drops one entry', async (t) => {
  const { prog } = setup();
  const res = await plus(prog, DIRALL, ALLPLUS - 1);
  t.deepEqual(res.names, ['.', '..', 'a', 'bb']);
  t.false(res.eof);
  t.true(res.size <= ALLPLUS - 1);
});

test('READDIRPLUS: dircount one short drops one entry; dircount 0 is no limit', async (t) => {
  const { prog } = setup();
  const res = await plus(prog, DIRALL - 1, 1 << 20);
  t.deepEqual(res.names, ['.', '..', 'a', 'bb']);
  t.false(res.eof);
  const unlimited = await plus(prog, 0, 1 << 20);
  t.is(unlimited.names.length, 5);
  t.true(unlimited.eof);
});

test('READDIRPLUS: TOOSMALL by dircount and by maxcount', async (t) => {
  const { prog } = setup();
  t.is((await plus(prog, 27, 1 << 20)).status, c.NFS3ERR_TOOSMALL);
  t.is((await plus(prog, 4096, FIXED + P[0]! - 1)).status, c.NFS3ERR_TOOSMALL);
  t.is((await plus(prog, 28, FIXED + P[0]!)).names.length, 1);
});

test('READDIRPLUS: entries carry attributes and their handles', async (t) => {
  const { fs, prog } = setup();
  const { r } = await callProc(prog, c.NFSPROC3.READDIRPLUS, plusArgs(4096, 8192));
  r.uint32();
  postOpAttr(r);
  r.uint64();
  const seen: [string, number, Buffer | undefined][] = [];
  while (r.bool()) {
    const fileid = r.uint64Number();
    const name = r.string(255).toString();
    r.uint64();
    const a = postOpAttr(r);
    const fh = postOpFh(r);
    t.is(a?.fileid, fileid);
    seen.push([name, fileid, fh]);
  }
  for (const [, id, fh] of seen) t.deepEqual(fh, fs.handleOf(id));
});
