// Two real unions over one shared lower, served as two exports: handles route by fsid, every
// call is admitted by address and port, `ro` and squashing apply per client.
import * as fs from 'node:fs';
import * as path from 'node:path';
import test from 'ava';
import { XdrReader, XdrWriter } from '@nfs-ts/xdr';
import { byPrecedence, parseClientRules, resolveClientRules } from '../../src/exports/client-rules.js';
import { ExportTable } from '../../src/exports/export-table.js';
import { oneUnion } from '../../src/exports/union-source.js';
import { nfs3Program } from '../../src/nfs3/program.js';
import * as c from '../../src/nfs3/constants.js';
import { auth_flavor } from '../../src/rpc/message.js';
import type { Credential, Peer, ProgramVersion, RpcCall } from '../../src/rpc/types.js';
import { openUnion, type UnionFs } from '../../src/vfs/index.js';
import { buildLayer, mkTmp } from '../helpers/layers.js';
import { postOpAttr, postOpFh } from '../nfs3/decode.js';

const P = c.NFSPROC3;
const ROOT: Credential = { flavor: auth_flavor.AUTH_SYS, uid: 0, gid: 0, gids: [], machinename: 't' };
const USER: Credential = { flavor: auth_flavor.AUTH_SYS, uid: 1000, gid: 1000, gids: [], machinename: 't' };

interface Fleet {
  table: ExportTable;
  a: UnionFs;
  b: UnionFs;
  base: string;
  prog: ProgramVersion;
}

/**
 * /a: fsid 1, '10.0.0.0/24(rw) 10.0.0.9(ro) 10.0.1.1(rw,no_root_squash,insecure)'
 * /b: fsid 2, '*(rw,all_squash,anonuid=1000,anongid=1000,insecure)'
 * The shared lower holds root-owned file `f` (0644) and directory `d`.
 */
async function fleet(t: { teardown: (f: () => Promise<void>) => void }): Promise<Fleet> {
  const base = mkTmp('unfs-exports-');
  const lower = buildLayer(path.join(base, 'lower'), 'oci', [['f', 'file', 'lower data'], ['d', 'dir']]);
  const union = async (name: string, fsid: number) => {
    for (const d of ['upper', 'work']) fs.mkdirSync(path.join(base, name, d), { recursive: true });
    // The union's root is the upper's: world-writable, so squashed callers may create in it.
    fs.chmodSync(path.join(base, name, 'upper'), 0o1777);
    return openUnion({ lowers: [lower], upper: path.join(base, name, 'upper'), workdir: path.join(base, name, 'work'), whiteoutFormat: 'oci', fsid });
  };
  const a = await union('a', 1);
  const b = await union('b', 2);
  const rules = async (text: string) => byPrecedence(await resolveClientRules(parseClientRules(text)));
  const table = new ExportTable([
    { path: '/a', fsid: 1, unions: oneUnion(a, '/a'), clients: await rules('10.0.0.0/24(rw) 10.0.0.9(ro) 10.0.1.1(rw,no_root_squash,insecure)') },
    { path: '/b', fsid: 2, unions: oneUnion(b, '/b'), clients: await rules('*(rw,all_squash,anonuid=1000,anongid=1000,insecure)') },
  ]);
  t.teardown(async () => {
    await a.close();
    await b.close();
    fs.rmSync(base, { recursive: true, force: true });
  });
  return { table, a, b, base, prog: nfs3Program(table) };
}

async function call(prog: ProgramVersion, proc: number, build: (w: XdrWriter) => void, peer: Partial<Peer> = {}, cred: Credential = ROOT): Promise<XdrReader> {
  const w = new XdrWriter(64);
  build(w);
  const rpc: RpcCall = {
    xid: 1, prog: prog.prog, vers: prog.vers, proc, cred, args: new XdrReader(Buffer.from(w.toBuffer())),
    peer: { address: '10.0.0.5', port: 800, transport: 'tcp', ...peer },
  };
  const reply = new XdrWriter(64);
  await prog.procedures[proc]!(rpc, reply);
  return new XdrReader(Buffer.from(reply.toBuffer()));
}

const sattr = (w: XdrWriter, a: { mode?: number; uid?: number } = {}): XdrWriter => {
  if (a.mode === undefined) w.uint32(0); else w.uint32(1).uint32(a.mode);
  if (a.uid === undefined) w.uint32(0); else w.uint32(1).uint32(a.uid);
  return w.uint32(0).uint32(0).uint32(0).uint32(0);
};

/** CREATE (unchecked) of `name` in the root of `fh`'s export: [status, owner uid if made]. */
async function create(f: Fleet, fh: Buffer, name: string, peer: Partial<Peer>, cred: Credential, mode?: number): Promise<[number, number?]> {
  const r = await call(f.prog, P.CREATE, (w) => sattr(w.opaque(fh).string(name).uint32(c.UNCHECKED), mode === undefined ? {} : { mode }), peer, cred);
  const status = r.uint32();
  if (status !== c.NFS3_OK) return [status];
  postOpFh(r);
  return [status, postOpAttr(r)?.uid];
}

test('a handle goes to the export its fsid names; an fsid nobody serves is STALE, a forged one BADHANDLE', async (t) => {
  const f = await fleet(t);
  const ra = f.a.handleOf(f.a.root);
  const rb = f.b.handleOf(f.b.root);
  t.is(ra.readUIntBE(1, 3), 1);
  t.is(rb.readUIntBE(1, 3), 2);
  t.is(f.table.route(ra).path, '/a');
  t.is(f.table.route(rb).path, '/b');
  const getattr = async (fh: Buffer) => (await call(f.prog, P.GETATTR, (w) => w.opaque(fh))).uint32();
  t.is(await getattr(ra), c.NFS3_OK);
  const unknown = Buffer.from(ra);
  unknown.writeUIntBE(3, 1, 3);
  t.is(await getattr(unknown), c.NFS3ERR_STALE);
  // /a's handle relabelled as /b's: /b's MAC does not hold.
  const relabelled = Buffer.from(ra);
  relabelled.writeUIntBE(2, 1, 3);
  t.is(await getattr(relabelled), c.NFS3ERR_BADHANDLE);
  t.is(await getattr(Buffer.from('not a handle')), c.NFS3ERR_BADHANDLE);
  // A second handle of another export (RENAME's target directory) is STALE, and nothing moves.
  const rename = await call(f.prog, P.RENAME, (w) => w.opaque(ra).string('f').opaque(rb).string('g'));
  t.is(rename.uint32(), c.NFS3ERR_STALE);
  t.false(fs.existsSync(path.join(f.base, 'a/upper/.wh.f')));
  // Attributes tell the exports apart too (fattr3 fsid).
  t.not(f.a.getattr(f.a.root).fsid, f.b.getattr(f.b.root).fsid);
});

test('every call is admitted by the caller\'s address and port, with the failure body of the procedure', async (t) => {
  const f = await fleet(t);
  const ra = f.a.handleOf(f.a.root);
  // Not a client of /a: ACCES, with READDIR's one empty post_op_attr.
  let r = await call(f.prog, P.READDIR, (w) => w.opaque(ra).uint64(0n).uint64(0n).uint32(4096), { address: '192.168.0.1' });
  t.is(r.uint32(), c.NFS3ERR_ACCES);
  t.is(r.uint32(), 0);
  t.is(r.remaining, 0);
  // A client of /a (secure) from port 1024 and up: PERM, with RENAME's two empty wcc_data.
  r = await call(f.prog, P.RENAME, (w) => w.opaque(ra).string('f').opaque(ra).string('g'), { port: 1024 });
  t.is(r.uint32(), c.NFS3ERR_PERM);
  t.deepEqual([r.uint32(), r.uint32(), r.uint32(), r.uint32()], [0, 0, 0, 0]);
  t.is(r.remaining, 0);
  // ... and from port 1023, fine; `insecure` admits high ports.
  t.is((await call(f.prog, P.GETATTR, (w) => w.opaque(ra), { port: 1023 })).uint32(), c.NFS3_OK);
  t.is((await call(f.prog, P.GETATTR, (w) => w.opaque(ra), { address: '10.0.1.1', port: 40000 })).uint32(), c.NFS3_OK);
  // IPv4-mapped addresses are the same clients.
  t.is((await call(f.prog, P.GETATTR, (w) => w.opaque(ra), { address: '::ffff:10.0.0.77' })).uint32(), c.NFS3_OK);
  // NULL needs no export.
  t.is((await call(f.prog, P.NULL, () => undefined, { address: '192.168.0.1', port: 60000 })).remaining, 0);
  // Undecodable arguments stay GARBAGE_ARGS (an XdrError for the dispatcher), admitted or not.
  await t.throwsAsync(call(f.prog, P.GETATTR, (w) => w.uint32(65), { address: '192.168.0.1' }), { name: 'XdrError' });
});

test('ro clients get ROFS and never change the upper; rw clients of the same export write', async (t) => {
  const f = await fleet(t);
  const ra = f.a.handleOf(f.a.root);
  t.deepEqual(await create(f, ra, 'x', { address: '10.0.0.9' }, USER), [c.NFS3ERR_ROFS]);
  t.false(fs.existsSync(path.join(f.base, 'a/upper/x')));
  const access = await call(f.prog, P.ACCESS, (w) => w.opaque(ra).uint32(0x3f), { address: '10.0.0.9' });
  t.is(access.uint32(), c.NFS3_OK);
  postOpAttr(access);
  t.is(access.uint32() & (c.ACCESS3_MODIFY | c.ACCESS3_EXTEND | c.ACCESS3_DELETE), 0);
  t.deepEqual(await create(f, ra, 'x', { address: '10.0.0.8' }, ROOT), [c.NFS3_OK, 65534]);
});

test('root_squash: root creates as 65534 and cannot make devices, chown to root or set setuid on root\'s files', async (t) => {
  const f = await fleet(t);
  const ra = f.a.handleOf(f.a.root);
  t.deepEqual(await create(f, ra, 'mine', {}, ROOT, 0o4755), [c.NFS3_OK, 65534]);
  const st = fs.statSync(path.join(f.base, 'a/upper/mine'));
  t.is(st.uid, 65534);
  t.is(st.gid, 65534);
  const mknod = await call(f.prog, P.MKNOD, (w) => sattr(w.opaque(ra).string('sda').uint32(c.NF3BLK)).uint32(8).uint32(0));
  t.is(mknod.uint32(), c.NFS3ERR_PERM);
  t.false(fs.existsSync(path.join(f.base, 'a/upper/sda')));
  const lf = f.a.handleOf(f.a.lookup(f.a.root, Buffer.from('f'), ROOT));
  for (const a of [{ uid: 1000 }, { mode: 0o4755 }]) {
    const r = await call(f.prog, P.SETATTR, (w) => sattr(w.opaque(lf), a).uint32(0));
    t.is(r.uint32(), c.NFS3ERR_PERM, JSON.stringify(a));
  }
  const own = f.a.handleOf(f.a.lookup(f.a.root, Buffer.from('mine'), ROOT));
  t.is((await call(f.prog, P.SETATTR, (w) => sattr(w.opaque(own), { uid: 0 }).uint32(0))).uint32(), c.NFS3ERR_PERM);
  t.is(fs.statSync(path.join(f.base, 'a/upper/mine')).uid, 65534);
  // no_root_squash keeps root root, and it may make a device node.
  t.deepEqual(await create(f, ra, 'roots', { address: '10.0.1.1' }, ROOT), [c.NFS3_OK, 0]);
  const dev = await call(f.prog, P.MKNOD, (w) => sattr(w.opaque(ra).string('null').uint32(c.NF3CHR)).uint32(1).uint32(3), { address: '10.0.1.1' });
  t.is(dev.uint32(), c.NFS3_OK);
});

test('all_squash with anonuid: everyone acts as that user, in its own export only', async (t) => {
  const f = await fleet(t);
  const rb = f.b.handleOf(f.b.root);
  t.deepEqual(await create(f, rb, 'y', { address: '203.0.113.1', port: 50000 }, ROOT), [c.NFS3_OK, 1000]);
  t.deepEqual(await create(f, rb, 'z', { address: '10.0.0.5', port: 50000 }, { ...USER, uid: 4242 }), [c.NFS3_OK, 1000]);
  t.true(fs.existsSync(path.join(f.base, 'b/upper/y')));
  t.false(fs.existsSync(path.join(f.base, 'a/upper/y')));
});

test('MNT: the longest export path wins, the caller is admitted, and lookups run squashed', async (t) => {
  const f = await fleet(t);
  const peer = (address: string, port = 700): Peer => ({ address, port, transport: 'tcp' });
  t.deepEqual((await f.table.mnt(Buffer.from('/a'), peer('10.0.0.5'), ROOT)).fh, f.a.handleOf(f.a.root));
  t.deepEqual((await f.table.mnt(Buffer.from('/b/d'), peer('198.51.100.1', 5000), USER)).fh, f.b.handleOf(f.b.lookup(f.b.root, Buffer.from('d'), ROOT)));
  await t.throwsAsync(f.table.mnt(Buffer.from('/a'), peer('192.168.0.1'), ROOT), { code: 'EACCES' });
  await t.throwsAsync(f.table.mnt(Buffer.from('/a'), peer('10.0.0.5', 2000), ROOT), { code: 'EPERM' });
  await t.throwsAsync(f.table.mnt(Buffer.from('/c'), peer('10.0.0.5'), ROOT), { code: 'ENOENT' });
  await t.throwsAsync(f.table.mnt(Buffer.from('/ab'), peer('10.0.0.5'), ROOT), { code: 'ENOENT' });
  await t.throwsAsync(f.table.mnt(Buffer.from('/a/../b'), peer('10.0.0.5'), ROOT), { code: 'ENOENT' });
  await t.throwsAsync(f.table.mnt(Buffer.from('/a/f'), peer('10.0.0.5'), ROOT), { code: 'ENOTDIR' });
  t.deepEqual(f.table.list(), [{ path: '/a', groups: ['10.0.0.9', '10.0.1.1', '10.0.0.0/24'] }, { path: '/b', groups: ['*'] }]);
});

test('two exports may not share an fsid', async (t) => {
  const f = await fleet(t);
  t.throws(() => new ExportTable([{ path: '/x', fsid: 1, unions: oneUnion(f.a, '/x'), clients: [] }, { path: '/y', fsid: 1, unions: oneUnion(f.b, '/y'), clients: [] }]), { message: /share fsid 1/ });
});
