/**
 * Every procedure through the same table of valid arguments: truncated arguments are
 * GARBAGE_ARGS (XdrError, nothing written), failure bodies have RFC 1813's shape, a read-only
 * union refuses every modifying procedure with NFS3ERR_ROFS and wcc, and the modifying
 * procedures succeed with the right result shape.
 */
import test from 'ava';
import { XdrError, XdrReader, XdrWriter } from '@nfs-ts/xdr';
import { nfs3Program, NFS3_NON_IDEMPOTENT } from '../../src/nfs3/program.js';
import { FAILURE_ATTR_SLOTS } from '../../src/nfs3/context.js';
import * as c from '../../src/nfs3/constants.js';
import type { RpcCall } from '../../src/rpc/types.js';
import { FakeFs } from './fake-fs.js';
import { args, callProc, ROOT_CRED, exportAll } from './call.js';
import { postOpAttr, postOpFh, wcc } from './decode.js';
import { readOffset3 } from '../../src/nfs3/structs/offset.js';

const P = c.NFSPROC3;

interface Handles { root: Buffer; file: Buffer; link: Buffer }

function sattrNone(w: XdrWriter): XdrWriter {
  for (let i = 0; i < 6; i++) w.uint32(0);
  return w;
}

const ARGS: Record<number, (h: Handles) => Buffer> = {
  [P.GETATTR]: (h) => args((w) => w.opaque(h.file)),
  [P.SETATTR]: (h) => args((w) => sattrNone(w.opaque(h.file)).uint32(0)),
  [P.LOOKUP]: (h) => args((w) => w.opaque(h.root).string('f')),
  [P.ACCESS]: (h) => args((w) => w.opaque(h.file).uint32(0x3f)),
  [P.READLINK]: (h) => args((w) => w.opaque(h.link)),
  [P.READ]: (h) => args((w) => w.opaque(h.file).uint64Number(0).uint32(100)),
  [P.WRITE]: (h) => args((w) => w.opaque(h.file).uint64Number(0).uint32(1).uint32(0).opaque(Buffer.from('x'))),
  [P.CREATE]: (h) => args((w) => sattrNone(w.opaque(h.root).string('new').uint32(c.GUARDED))),
  [P.MKDIR]: (h) => args((w) => sattrNone(w.opaque(h.root).string('nd'))),
  [P.SYMLINK]: (h) => args((w) => sattrNone(w.opaque(h.root).string('ns')).string('target')),
  [P.MKNOD]: (h) => args((w) => sattrNone(w.opaque(h.root).string('nf').uint32(c.NF3CHR)).uint32(1).uint32(3)),
  [P.REMOVE]: (h) => args((w) => w.opaque(h.root).string('f')),
  [P.RMDIR]: (h) => args((w) => w.opaque(h.root).string('d')),
  [P.RENAME]: (h) => args((w) => w.opaque(h.root).string('f').opaque(h.root).string('g')),
  [P.LINK]: (h) => args((w) => w.opaque(h.file).opaque(h.root).string('hl')),
  [P.READDIR]: (h) => args((w) => w.opaque(h.root).uint64(0n).uint64(0n).uint32(4096)),
  [P.READDIRPLUS]: (h) => args((w) => w.opaque(h.root).uint64(0n).uint64(0n).uint32(4096).uint32(8192)),
  [P.FSSTAT]: (h) => args((w) => w.opaque(h.root)),
  [P.FSINFO]: (h) => args((w) => w.opaque(h.root)),
  [P.PATHCONF]: (h) => args((w) => w.opaque(h.root)),
  [P.COMMIT]: (h) => args((w) => w.opaque(h.file).uint64Number(0).uint32(0)),
};

const MODIFYING = [P.SETATTR, P.WRITE, P.CREATE, P.MKDIR, P.SYMLINK, P.MKNOD, P.REMOVE, P.RMDIR,
  P.RENAME, P.LINK, P.COMMIT];
const MUTATORS = ['setattr', 'write', 'commit', 'create', 'mkdir', 'symlink', 'mknod', 'remove', 'rmdir', 'rename', 'link'];

/** readOnly: a union without an upper layer, or a read-write union and a client rule `ro`. */
function setup(readOnly?: 'union' | 'client rule') {
  const fs = new FakeFs();
  const file = fs.add(1, 'f', 1, 'data');
  const link = fs.add(1, 'l', 5, 'f');
  fs.add(1, 'd', 2);
  fs.readOnly = readOnly === 'union';
  const h: Handles = { root: fs.handleOf(1), file: fs.handleOf(file), link: fs.handleOf(link) };
  return { fs, h, prog: nfs3Program(exportAll(fs, { rw: readOnly !== 'client rule' })) };
}

/** Decodes a result body whatever the status, by procedure; returns the status. */
function decodeBody(proc: number, r: XdrReader): number {
  const status = r.uint32();
  const ok = status === c.NFS3_OK;
  switch (proc) {
    case P.GETATTR: if (ok) postOpAttrFollow(r); break;
    case P.LOOKUP: if (ok) { r.opaque(64); postOpAttr(r); } postOpAttr(r); break;
    case P.ACCESS: postOpAttr(r); if (ok) r.uint32(); break;
    case P.READLINK: postOpAttr(r); if (ok) r.string(4096); break;
    case P.READ: postOpAttr(r); if (ok) { r.uint32(); r.bool(); r.opaque(1 << 20); } break;
    case P.SETATTR: case P.REMOVE: case P.RMDIR: wcc(r); break;
    case P.WRITE: wcc(r); if (ok) { r.uint32(); r.uint32(); r.opaqueFixed(8); } break;
    case P.COMMIT: wcc(r); if (ok) r.opaqueFixed(8); break;
    case P.CREATE: case P.MKDIR: case P.SYMLINK: case P.MKNOD:
      if (ok) { postOpFh(r); postOpAttr(r); } wcc(r); break;
    case P.RENAME: wcc(r); wcc(r); break;
    case P.LINK: postOpAttr(r); wcc(r); break;
    case P.READDIR: case P.READDIRPLUS:
      postOpAttr(r);
      if (ok) {
        r.uint64();
        while (r.bool()) { r.uint64(); r.string(255); r.uint64(); if (proc === P.READDIRPLUS) { postOpAttr(r); postOpFh(r); } }
        r.bool();
      }
      break;
    case P.FSSTAT: postOpAttr(r); if (ok) { for (let i = 0; i < 6; i++) r.uint64(); r.uint32(); } break;
    case P.FSINFO: postOpAttr(r); if (ok) { for (let i = 0; i < 7; i++) r.uint32(); r.uint64(); r.uint32(); r.uint32(); r.uint32(); } break;
    case P.PATHCONF: postOpAttr(r); if (ok) { r.uint32(); r.uint32(); r.bool(); r.bool(); r.bool(); r.bool(); } break;
    default: throw new Error(`proc ${proc}`);
  }
  if (r.remaining !== 0) throw new Error(`proc ${proc}: ${r.remaining} trailing bytes`);
  return status;
}

function postOpAttrFollow(r: XdrReader): void {
  // GETATTR3resok is a bare fattr3: 84 bytes.
  r.opaqueFixed(84);
}

test('the program: number, version, 22 procedures, non-idempotent set', (t) => {
  const prog = nfs3Program(exportAll(new FakeFs()));
  t.is(prog.prog, 100003);
  t.is(prog.vers, 3);
  t.is(prog.procedures.length, 22);
  t.true(prog.procedures.every((p) => typeof p === 'function'));
  t.deepEqual([...NFS3_NON_IDEMPOTENT].sort((a, b) => a - b),
    [P.SETATTR, P.CREATE, P.MKDIR, P.SYMLINK, P.MKNOD, P.REMOVE, P.RMDIR, P.RENAME, P.LINK]);
  t.is(prog.nonIdempotent, NFS3_NON_IDEMPOTENT);
});

for (const [procStr, build] of Object.entries(ARGS)) {
  const proc = Number(procStr);
  test(`proc ${proc}: every truncation of valid args is XdrError and writes nothing`, async (t) => {
    const { h, prog } = setup();
    const full = build(h);
    for (let n = 0; n < full.length; n++) {
      const w = new XdrWriter(16);
      const call: RpcCall = {
        xid: 1, prog: 100003, vers: 3, proc, cred: ROOT_CRED, args: new XdrReader(full.subarray(0, n)),
        peer: { address: '127.0.0.1', port: 1, transport: 'udp' },
      };
      await t.throwsAsync(async () => prog.procedures[proc]!(call, w), { instanceOf: XdrError }, `prefix ${n}`);
      t.is(w.length, 0);
    }
  });

  test(`proc ${proc}: a bad handle is BADHANDLE with the failure body of ${FAILURE_ATTR_SLOTS[proc]} empty attribute slots`, async (t) => {
    const { prog } = setup();
    const bad = Buffer.from('bad!');
    const { bytes, r } = await callProc(prog, proc, build({ root: bad, file: bad, link: bad }));
    t.is(decodeBody(proc, r), c.NFS3ERR_BADHANDLE);
    const expected = Buffer.alloc(4 + 4 * FAILURE_ATTR_SLOTS[proc]!);
    expected.writeUInt32BE(c.NFS3ERR_BADHANDLE, 0);
    t.deepEqual(bytes, expected);
  });

  test(`proc ${proc}: valid args decode to a well-formed reply`, async (t) => {
    const { h, prog } = setup();
    const { r } = await callProc(prog, proc, build(h));
    const status = decodeBody(proc, r);
    t.is(status, c.NFS3_OK);
  });

  if (MODIFYING.includes(proc as never)) for (const readOnly of ['union', 'client rule'] as const) {
    test(`proc ${proc}: read-only ${readOnly} answers ROFS with wcc and never mutates`, async (t) => {
      const { fs, h, prog } = setup(readOnly);
      const { r } = await callProc(prog, proc, build(h));
      t.is(r.uint32(), c.NFS3ERR_ROFS);
      const shapes: Record<number, () => void> = {
        [P.RENAME]: () => { checkWcc(t, r); checkWcc(t, r); },
        [P.LINK]: () => { t.truthy(postOpAttr(r)); checkWcc(t, r); },
      };
      (shapes[proc] ?? (() => checkWcc(t, r)))();
      t.is(r.remaining, 0);
      t.false(fs.calls.some((x) => MUTATORS.includes(x[0] as string)));
    });
  }
}

function checkWcc(t: { truthy: (v: unknown) => void }, r: XdrReader): void {
  const w = wcc(r);
  t.truthy(w.before);
  t.truthy(w.after);
}

test('CREATE/MKDIR/SYMLINK/MKNOD return the new handle, its attributes and the dir wcc', async (t) => {
  const { fs, h, prog } = setup();
  for (const proc of [P.CREATE, P.MKDIR, P.SYMLINK, P.MKNOD]) {
    const before = fs.getattr(1);
    const { r } = await callProc(prog, proc, ARGS[proc]!(h));
    t.is(r.uint32(), c.NFS3_OK);
    const fh = postOpFh(r);
    const a = postOpAttr(r);
    t.truthy(fh);
    t.is(fs.resolve(fh!), a!.fileid);
    const d = wcc(r);
    t.deepEqual(d.before?.mtime, [before.mtime.sec, before.mtime.nsec]);
    t.notDeepEqual(d.after?.mtime, d.before?.mtime);
  }
  const mk = fs.calls.find((x) => x[0] === 'mknod')!;
  t.is(mk[3], c.NF3CHR);
  t.deepEqual(mk[5], { major: 1, minor: 3 });
  const sl = fs.calls.find((x) => x[0] === 'symlink')!;
  t.deepEqual(sl[3], Buffer.from('target'));
  const cr = fs.calls.find((x) => x[0] === 'create')!;
  t.deepEqual(cr[3], { mode: 'guarded', attr: {} });
});

test('CREATE EXCLUSIVE passes the 8-byte verifier; GUARDED on an existing name is EXIST', async (t) => {
  const { fs, h, prog } = setup();
  const verf = Buffer.from('0102030405060708', 'hex');
  const ex = await callProc(prog, P.CREATE, args((w) => w.opaque(h.root).string('x').uint32(c.EXCLUSIVE).opaqueFixed(verf)));
  t.is(ex.r.uint32(), c.NFS3_OK);
  const how = fs.calls.find((x) => x[0] === 'create')![3] as { mode: string; verifier: Buffer };
  t.is(how.mode, 'exclusive');
  t.deepEqual(Buffer.from(how.verifier), verf);
  const dup = await callProc(prog, P.CREATE, args((w) => sattrNone(w.opaque(h.root).string('f').uint32(c.GUARDED))));
  t.is(decodeBody(P.CREATE, dup.r), c.NFS3ERR_EXIST);
  await t.throwsAsync(async () => callProc(prog, P.CREATE, args((w) => w.opaque(h.root).string('y').uint32(3))), { instanceOf: XdrError });
});

test('MKNOD of a regular file, directory or unknown type is BADTYPE', async (t) => {
  const { fs, h, prog } = setup();
  for (const type of [c.NF3REG, c.NF3DIR, c.NF3LNK, 0, 99]) {
    const { r } = await callProc(prog, P.MKNOD, args((w) => w.opaque(h.root).string('n').uint32(type)));
    t.is(decodeBody(P.MKNOD, r), c.NFS3ERR_BADTYPE);
  }
  t.false(fs.calls.some((x) => x[0] === 'mknod'));
});

test('REMOVE, RMDIR, RENAME, LINK do what they say, with wcc', async (t) => {
  const { fs, h, prog } = setup();
  const link = await callProc(prog, P.LINK, ARGS[P.LINK]!(h));
  t.is(link.r.uint32(), c.NFS3_OK);
  t.is(postOpAttr(link.r)?.nlink, 2);
  checkWcc(t, link.r);
  const ren = await callProc(prog, P.RENAME, ARGS[P.RENAME]!(h));
  t.is(decodeBody(P.RENAME, ren.r), c.NFS3_OK);
  t.throws(() => fs.lookup(1, Buffer.from('f'), ROOT_CRED));
  t.is(fs.lookup(1, Buffer.from('g'), ROOT_CRED), fs.lookup(1, Buffer.from('hl'), ROOT_CRED));
  const rm = await callProc(prog, P.REMOVE, args((w) => w.opaque(h.root).string('g')));
  t.is(decodeBody(P.REMOVE, rm.r), c.NFS3_OK);
  const rmAgain = await callProc(prog, P.REMOVE, args((w) => w.opaque(h.root).string('g')));
  t.is(decodeBody(P.REMOVE, rmAgain.r), c.NFS3ERR_NOENT);
  const rmdirFile = await callProc(prog, P.RMDIR, args((w) => w.opaque(h.root).string('hl')));
  t.is(decodeBody(P.RMDIR, rmdirFile.r), c.NFS3ERR_NOTDIR);
  const rmdir = await callProc(prog, P.RMDIR, ARGS[P.RMDIR]!(h));
  t.is(decodeBody(P.RMDIR, rmdir.r), c.NFS3_OK);
});

test('names with a slash are refused before reaching the VFS, with wcc', async (t) => {
  const { fs, h, prog } = setup();
  const { r } = await callProc(prog, P.MKDIR, args((w) => sattrNone(w.opaque(h.root).string('../x'))));
  t.is(r.uint32(), c.NFS3ERR_ACCES);
  checkWcc(t, r);
  t.false(fs.calls.some((x) => x[0] === 'mkdir'));
});

test('offset3/size3 of 2^53 or more decode to Infinity (refused or past the end), never to a nearby smaller value', (t) => {
  for (const [v, want] of [[2n ** 53n - 1n, 2 ** 53 - 1], [2n ** 53n, Infinity], [2n ** 64n - 1n, Infinity], [0n, 0]] as const) {
    t.is(readOffset3(new XdrReader(new XdrWriter(8).uint64(v).toBuffer())), want, String(v));
  }
});
