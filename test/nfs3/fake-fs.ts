/**
 * An in-memory UnionFs for the NFSv3 procedure tests: one flat namespace of nodes, handles
 * 'FAKE' + u32 id, attributes with deterministic times. Only as much as the tests need; it
 * records the last call's arguments so tests can check what the procedures passed down.
 */
import { FsError } from '../../src/errors/fs-error.js';
import type {
  Attr, CreateHow, Cred, DirPage, FileType, FsStat, NodeId, SetAttr, StableHow, Time, UnionFs,
} from '../../src/vfs/types.js';

interface Node {
  id: NodeId;
  type: FileType;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  data: Buffer;
  target: Buffer;
  rdev: [number, number];
  parent: NodeId;
  children: Map<string, NodeId>;
  mtime: Time;
  ctime: Time;
}

const MAGIC = Buffer.from('FAKE');

export class FakeFs implements UnionFs {
  readOnly = false;
  readonly root: NodeId = 1;
  readonly writeVerifier = Buffer.from('0123456789abcdef', 'hex');
  /** Every call, in order: [method, ...args]. */
  readonly calls: unknown[][] = [];
  /** Stability the fake claims for writes; default: what was asked. */
  writeCommitted: StableHow | undefined;
  /** Thrown by the next call of the named method. */
  failNext: { method: string; err: unknown } | undefined;
  /** Overrides readdir's eof (to test the procedure's trimming). */
  dirVerifier = 0x1122334455667788n;
  private clock = 1_000_000;
  private nextId = 2;
  private readonly nodes = new Map<NodeId, Node>();

  constructor() {
    this.nodes.set(1, this.mk(1, 2, 0o755, 1));
  }

  private mk(id: NodeId, type: FileType, mode: number, parent: NodeId): Node {
    const t = this.tick();
    return {
      id, type, mode, uid: 0, gid: 0, nlink: type === 2 ? 2 : 1, data: Buffer.alloc(0),
      target: Buffer.alloc(0), rdev: [0, 0], parent, children: new Map(), mtime: t, ctime: t,
    };
  }

  private tick(): Time {
    this.clock += 1;
    return { sec: this.clock, nsec: 500 };
  }

  private check(method: string, ...args: unknown[]): void {
    this.calls.push([method, ...args]);
    if (this.failNext?.method === method) {
      const { err } = this.failNext;
      this.failNext = undefined;
      throw err;
    }
  }

  private node(id: NodeId): Node {
    const n = this.nodes.get(id);
    if (!n) throw new FsError('ESTALE');
    return n;
  }

  private dir(id: NodeId): Node {
    const n = this.node(id);
    if (n.type !== 2) throw new FsError('ENOTDIR');
    return n;
  }

  private touch(n: Node): void {
    n.mtime = this.tick();
    n.ctime = n.mtime;
  }

  /** Test setup: add an object directly. */
  add(parent: NodeId, name: string, type: FileType, content = ''): NodeId {
    const id = this.nextId++;
    const n = this.mk(id, type, type === 2 ? 0o755 : 0o644, parent);
    if (type === 1) n.data = Buffer.from(content);
    if (type === 5) n.target = Buffer.from(content);
    this.nodes.set(id, n);
    this.dir(parent).children.set(name, id);
    return id;
  }

  handleOf(id: NodeId): Buffer {
    const b = Buffer.alloc(8);
    MAGIC.copy(b);
    b.writeUInt32BE(id, 4);
    return b;
  }

  resolve(handle: Buffer): NodeId {
    this.check('resolve', handle);
    if (handle.length !== 8 || !handle.subarray(0, 4).equals(MAGIC)) throw new FsError('EBADHANDLE');
    const id = handle.readUInt32BE(4);
    this.node(id);
    return id;
  }

  getattr(id: NodeId): Attr {
    this.check('getattr', id);
    const n = this.node(id);
    return {
      type: n.type, mode: n.mode, nlink: n.nlink, uid: n.uid, gid: n.gid,
      size: n.type === 5 ? n.target.length : n.data.length, used: 4096,
      rdevMajor: n.rdev[0], rdevMinor: n.rdev[1], fsid: 7, fileid: n.id,
      atime: n.mtime, mtime: n.mtime, ctime: n.ctime,
    };
  }

  lookup(dir: NodeId, name: Buffer, cred: Cred): NodeId {
    this.check('lookup', dir, name, cred);
    const d = this.dir(dir);
    const s = name.toString('latin1');
    if (s === '.') return dir;
    if (s === '..') return d.parent;
    const id = d.children.get(s);
    if (id === undefined) throw new FsError('ENOENT');
    return id;
  }

  access(id: NodeId, mask: number, cred: Cred): number {
    this.check('access', id, mask, cred);
    this.node(id);
    return cred.uid === 0 ? mask : mask & 0x3;
  }

  readlink(id: NodeId): Buffer {
    this.check('readlink', id);
    const n = this.node(id);
    if (n.type !== 5) throw new FsError('EINVAL');
    return n.target;
  }

  async read(id: NodeId, offset: number, count: number, cred: Cred): Promise<{ data: Buffer; eof: boolean }> {
    this.check('read', id, offset, count, cred);
    const n = this.node(id);
    if (n.type === 2) throw new FsError('EISDIR');
    const data = n.data.subarray(offset, offset + count);
    return { data, eof: offset + data.length >= n.data.length };
  }

  async prefetch(): Promise<void> {
    // nothing to read ahead: everything is in memory
  }

  readdir(dir: NodeId, cookie: bigint, maxEntries: number, plus: boolean, cred: Cred): DirPage {
    this.check('readdir', dir, cookie, maxEntries, plus, cred);
    const d = this.dir(dir);
    const all = [...d.children.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const listed = [['.', dir], ['..', d.parent], ...all] as [string, NodeId][];
    const start = Number(cookie);
    const slice = listed.slice(start, start + maxEntries);
    return {
      entries: slice.map(([name, id], i) => ({
        fileid: id, name: Buffer.from(name, 'latin1'), cookie: BigInt(start + i + 1),
        ...(plus ? { attr: this.getattr(id) } : {}),
      })),
      eof: start + slice.length >= listed.length,
      verifier: this.dirVerifier,
    };
  }

  fsstat(id: NodeId): FsStat {
    this.check('fsstat', id);
    this.node(id);
    return { tbytes: 2 ** 40, fbytes: 2 ** 39, abytes: 2 ** 38, tfiles: 1000, ffiles: 500, afiles: 400 };
  }

  async setattr(id: NodeId, attr: SetAttr, cred: Cred): Promise<void> {
    this.check('setattr', id, attr, cred);
    const n = this.node(id);
    if (attr.mode !== undefined) n.mode = attr.mode;
    if (attr.uid !== undefined) n.uid = attr.uid;
    if (attr.gid !== undefined) n.gid = attr.gid;
    if (attr.size !== undefined) {
      const b = Buffer.alloc(attr.size);
      n.data.copy(b, 0, 0, Math.min(attr.size, n.data.length));
      n.data = b;
      n.mtime = this.tick();
    }
    n.ctime = this.tick();
  }

  async write(id: NodeId, offset: number, data: Buffer, stable: StableHow, cred: Cred): Promise<StableHow> {
    this.check('write', id, offset, Buffer.from(data), stable, cred);
    const n = this.node(id);
    const end = offset + data.length;
    if (end > n.data.length) {
      const b = Buffer.alloc(end);
      n.data.copy(b);
      n.data = b;
    }
    data.copy(n.data, offset);
    this.touch(n);
    return this.writeCommitted ?? stable;
  }

  async commit(id: NodeId, offset: number, count: number): Promise<void> {
    this.check('commit', id, offset, count);
    this.node(id);
  }

  private make(dir: NodeId, name: Buffer, type: FileType, exclusiveOk = false): NodeId {
    const d = this.dir(dir);
    const s = name.toString('latin1');
    const existing = d.children.get(s);
    if (existing !== undefined) {
      if (exclusiveOk) return existing;
      throw new FsError('EEXIST');
    }
    this.touch(d);
    return this.add(dir, s, type);
  }

  async create(dir: NodeId, name: Buffer, how: CreateHow, cred: Cred): Promise<NodeId> {
    this.check('create', dir, name, how, cred);
    return this.make(dir, name, 1, how.mode === 'unchecked');
  }

  async mkdir(dir: NodeId, name: Buffer, attr: SetAttr, cred: Cred): Promise<NodeId> {
    this.check('mkdir', dir, name, attr, cred);
    const id = this.make(dir, name, 2);
    if (attr.mode !== undefined) this.node(id).mode = attr.mode;
    return id;
  }

  async symlink(dir: NodeId, name: Buffer, target: Buffer, attr: SetAttr, cred: Cred): Promise<NodeId> {
    this.check('symlink', dir, name, target, attr, cred);
    const id = this.make(dir, name, 5);
    this.node(id).target = Buffer.from(target);
    return id;
  }

  async mknod(dir: NodeId, name: Buffer, type: FileType, attr: SetAttr, rdev: { major: number; minor: number }, cred: Cred): Promise<NodeId> {
    this.check('mknod', dir, name, type, attr, rdev, cred);
    const id = this.make(dir, name, type);
    this.node(id).rdev = [rdev.major, rdev.minor];
    return id;
  }

  private unlink(dir: NodeId, name: Buffer, wantDir: boolean): void {
    const d = this.dir(dir);
    const s = name.toString('latin1');
    const id = d.children.get(s);
    if (id === undefined) throw new FsError('ENOENT');
    const n = this.node(id);
    if (wantDir && n.type !== 2) throw new FsError('ENOTDIR');
    if (!wantDir && n.type === 2) throw new FsError('EISDIR');
    if (wantDir && n.children.size) throw new FsError('ENOTEMPTY');
    d.children.delete(s);
    this.touch(d);
    if (--n.nlink === 0 || wantDir) this.nodes.delete(id);
  }

  async remove(dir: NodeId, name: Buffer, cred: Cred): Promise<void> {
    this.check('remove', dir, name, cred);
    this.unlink(dir, name, false);
  }

  async rmdir(dir: NodeId, name: Buffer, cred: Cred): Promise<void> {
    this.check('rmdir', dir, name, cred);
    this.unlink(dir, name, true);
  }

  async rename(fromDir: NodeId, fromName: Buffer, toDir: NodeId, toName: Buffer, cred: Cred): Promise<void> {
    this.check('rename', fromDir, fromName, toDir, toName, cred);
    const f = this.dir(fromDir);
    const t = this.dir(toDir);
    const id = f.children.get(fromName.toString('latin1'));
    if (id === undefined) throw new FsError('ENOENT');
    f.children.delete(fromName.toString('latin1'));
    t.children.set(toName.toString('latin1'), id);
    this.touch(f);
    this.touch(t);
  }

  async link(id: NodeId, dir: NodeId, name: Buffer, cred: Cred): Promise<void> {
    this.check('link', id, dir, name, cred);
    const n = this.node(id);
    const d = this.dir(dir);
    if (d.children.has(name.toString('latin1'))) throw new FsError('EEXIST');
    d.children.set(name.toString('latin1'), id);
    n.nlink++;
    n.ctime = this.tick();
    this.touch(d);
  }

  usage(): { nodes: number; listingBytes: number; identityRecords: number } {
    return { nodes: 0, listingBytes: 0, identityRecords: 0 };
  }

  async close(): Promise<void> {}
}
