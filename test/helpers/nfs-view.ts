/**
 * A scripted NFSv3 client for checking a tree as a client sees it, and for driving simple
 * changes: MNT, LOOKUP by path, READ of a whole file, CREATE, WRITE, COMMIT, REMOVE, RENAME.
 * Each change resolves to its nfsstat3 (0 = OK); a call that gets no reply rejects.
 */
import { RpcClient } from './rpc-client.js';
import { MOUNT_PROGRAM, MOUNTPROC3 } from '../../src/mount/program.js';
import { NFS_PROGRAM, NFSPROC3 } from '../../src/nfs3/constants.js';

export class NfsView {
  private constructor(readonly c: RpcClient, readonly root: Buffer) {}

  static async open(port: number, o: { exportPath?: string; timeoutMs?: number } = {}): Promise<NfsView> {
    return NfsView.mount(await RpcClient.connect('tcp', '127.0.0.1', port, { timeoutMs: o.timeoutMs ?? 30_000 }), o.exportPath);
  }

  /** A view over a connection of the caller's (its source address, its credential). */
  static async mount(c: RpcClient, exportPath = '/union'): Promise<NfsView> {
    const r = await c.ok(MOUNT_PROGRAM, 3, MOUNTPROC3.MNT, (w) => w.string(exportPath));
    const stat = r.enum();
    if (stat !== 0) throw new Error(`MNT ${exportPath}: ${stat}`);
    return new NfsView(c, Buffer.from(r.opaque(64)));
  }

  /** The handle of a path below the root, or undefined when a component does not exist. */
  async lookup(p: string): Promise<Buffer | undefined> {
    let fh = this.root;
    for (const n of p.split('/').filter(Boolean)) {
      const r = await this.c.ok(NFS_PROGRAM, 3, NFSPROC3.LOOKUP, (w) => w.opaque(fh).string(n));
      const stat = r.uint32();
      if (stat === 2) return undefined;
      if (stat !== 0) throw new Error(`LOOKUP ${p}: nfsstat3 ${stat}`);
      fh = Buffer.from(r.opaque(64));
    }
    return fh;
  }

  /** The whole file (read 1 MiB at a time). */
  async read(p: string): Promise<Buffer> {
    const fh = await this.lookup(p);
    if (fh === undefined) throw new Error(`${p} is gone`);
    const parts: Buffer[] = [];
    for (let off = 0n; ;) {
      const r = await this.c.ok(NFS_PROGRAM, 3, NFSPROC3.READ, (w) => w.opaque(fh).uint64(off).uint32(1 << 20));
      if (r.uint32() !== 0) throw new Error(`READ ${p}`);
      if (r.bool()) r.opaqueFixed(84);
      r.uint32();
      const eof = r.bool();
      const data = Buffer.from(r.opaque(1 << 20));
      parts.push(data);
      off += BigInt(data.length);
      if (eof || data.length === 0) break;
    }
    return Buffer.concat(parts);
  }

  /** The names in the root (READDIR, page by page). */
  async names(): Promise<Set<string>> {
    const out = new Set<string>();
    let cookie = 0n;
    let verf = Buffer.alloc(8);
    for (;;) {
      const r = await this.c.ok(NFS_PROGRAM, 3, NFSPROC3.READDIR, (w) => w.opaque(this.root).uint64(cookie).opaqueFixed(verf).uint32(1 << 20));
      if (r.uint32() !== 0) throw new Error('READDIR');
      if (r.bool()) r.opaqueFixed(84);
      verf = Buffer.from(r.opaqueFixed(8));
      while (r.bool()) {
        r.uint64();
        const name = r.string(255).toString('latin1');
        cookie = r.uint64();
        if (name !== '.' && name !== '..') out.add(name);
      }
      if (r.bool()) return out;
    }
  }

  /** CREATE (UNCHECKED, mode 0644) in the root: the status and the new handle. */
  async create(name: string): Promise<{ stat: number; fh?: Buffer }> {
    const r = await this.c.ok(NFS_PROGRAM, 3, NFSPROC3.CREATE, (w) => {
      w.opaque(this.root).string(name).enum(0);
      w.bool(true).uint32(0o644).bool(false).bool(false).bool(false).enum(0).enum(0);
    });
    const stat = r.uint32();
    if (stat !== 0 || !r.bool()) return { stat };
    return { stat, fh: Buffer.from(r.opaque(64)) };
  }

  /** WRITE at `offset`; how: 0 UNSTABLE, 1 DATA_SYNC, 2 FILE_SYNC. */
  async write(fh: Buffer, offset: number, data: Buffer, how: 0 | 1 | 2): Promise<number> {
    return (await this.c.ok(NFS_PROGRAM, 3, NFSPROC3.WRITE, (w) => w.opaque(fh).uint64(BigInt(offset)).uint32(data.length).enum(how).opaque(data))).uint32();
  }

  async commit(fh: Buffer): Promise<number> {
    return (await this.c.ok(NFS_PROGRAM, 3, NFSPROC3.COMMIT, (w) => w.opaque(fh).uint64(0n).uint32(0))).uint32();
  }

  /** REMOVE of a name in the root. */
  async remove(name: string): Promise<number> {
    return (await this.c.ok(NFS_PROGRAM, 3, NFSPROC3.REMOVE, (w) => w.opaque(this.root).string(name))).uint32();
  }

  /** RENAME within the root. */
  async rename(from: string, to: string): Promise<number> {
    return (await this.c.ok(NFS_PROGRAM, 3, NFSPROC3.RENAME, (w) => w.opaque(this.root).string(from).opaque(this.root).string(to))).uint32();
  }

  close(): void {
    this.c.close();
  }
}
