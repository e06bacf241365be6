/**
 * Unpacks one layer blob into an empty directory, keeping the layer as a layer: its OCI
 * whiteouts (`.wh.NAME`) and opaque markers (`.wh..wh..opq`) stay files, which the union
 * reads as whiteouts in any lower (src/vfs/whiteout.ts). So the order of entries in the tar
 * does not matter: a marker written after its siblings hides only what the layers below hold,
 * as the image spec says, and one unpacked layer serves every image that contains it.
 *
 * Rule: the blob was checked against its digest before (source.ts); the tar is checked against
 * the diff_id as it passes, and a mismatch fails the unpack (the caller discards the directory).
 * Paths are relative to the layer (leading '/' and './' dropped); '..' is refused. Everything
 * is created by this code in a fresh directory, so a parent is always a directory made here:
 * an entry below a symlink or file is refused, never followed. A later entry for the same path
 * replaces the earlier one (tar semantics). Owners are kept when running as root, as are
 * modes (setuid bits after the chown), times (directories' after their contents), device
 * nodes, FIFOs and extended attributes (vfs/special.ts: mknod(2), lsetxattr(2), which Node
 * lacks); without root, owners and device nodes cannot be made, and without CAP_SETFCAP file
 * capabilities cannot be set: those are skipped with one warning per layer.
 * `trusted.overlay.*` attributes in a layer are dropped: they would change the meaning of the
 * union's own markers.
 * Calls: the file system calls are synchronous. Each is a few microseconds on a local disk,
 * and the loop gets control back between the chunks of the archive, so a pull during a reload
 * delays other clients' calls by about a chunk's worth of entries; as promises through the
 * thread pool they made unpacking a Debian root three times slower (7 s against 2.4 s).
 */
import * as fs from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Decompress } from 'fzstd';
import { ImageError } from './errors.js';
import { Verifier } from './digest.js';
import type { LayerDescriptor } from './manifest.js';
import type { Progress } from './progress.js';
import { readTar, type TarEntry } from './tar.js';
import { makeNode, setXattr } from '../vfs/special.js';
import { FileType } from '../vfs/types.js';

export interface UnpackStats {
  entries: number;
  bytes: number;
  /** What could not be made without root (owners, device nodes, privileged xattrs). */
  skipped: string[];
}

/** Passes bytes through, feeding a verifier or a progress counter. */
function tap(see: { update(b: Buffer): void } | Progress): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      if ('update' in see) see.update(chunk);
      else see.add(chunk.length);
      cb(null, chunk);
    },
  });
}

function zstd(): Transform {
  let out: Transform;
  const d = new Decompress((chunk) => out.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length)));
  out = new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      try {
        d.push(chunk);
        cb();
      } catch (err) {
        cb(new ImageError(`zstd: ${(err as Error).message}`));
      }
    },
    flush(cb: TransformCallback) {
      try {
        d.push(new Uint8Array(0), true);
        cb();
      } catch (err) {
        cb(new ImageError(`zstd: ${(err as Error).message}`));
      }
    },
  });
  return out;
}

/** A tar path as a layer-relative path ('' for the layer's root), or an error. */
export function layerPath(raw: string): string {
  const parts = raw.split('/').filter((c) => c !== '' && c !== '.');
  if (parts.includes('..')) throw new ImageError(`entry '${raw}' leaves the layer (..)`);
  return parts.join('/');
}

function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

interface DirMeta {
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
}

class Unpacker {
  /** Directories made here (layer-relative); every parent must be one of them. */
  private readonly dirs = new Map<string, DirMeta | undefined>([['', undefined]]);
  readonly stats: UnpackStats = { entries: 0, bytes: 0, skipped: [] };
  private readonly root = process.getuid?.() === 0;

  constructor(private readonly into: string) {}

  private abs(rel: string): Buffer {
    return Buffer.from(rel === '' ? this.into : `${this.into}/${rel}`, 'latin1');
  }

  private skip(what: string): void {
    if (this.stats.skipped.length < 10) this.stats.skipped.push(what);
  }

  /** Make the parents of `rel` that the tar did not list (as tar does: 0755). */
  private parents(rel: string): void {
    const parent = parentOf(rel);
    if (this.dirs.has(parent)) return;
    this.parents(parent);
    try {
      fs.mkdirSync(this.abs(parent), 0o755);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new ImageError(`entry '${rel}' lies below '${parent}', which is not a directory in this layer`);
      throw err;
    }
    this.dirs.set(parent, undefined);
  }

  /** Clears the way for a new entry at `rel`: tar semantics, the later entry wins. */
  private clear(rel: string, keepDir: boolean): boolean {
    const st = fs.lstatSync(this.abs(rel), { throwIfNoEntry: false });
    if (st === undefined) return false;
    if (st.isDirectory() && keepDir) return true;
    fs.rmSync(this.abs(rel), { recursive: true, force: true });
    if (st.isDirectory()) for (const d of [...this.dirs.keys()]) if (d === rel || d.startsWith(`${rel}/`)) this.dirs.delete(d);
    return false;
  }

  async apply(e: TarEntry, body: AsyncIterable<Buffer>): Promise<void> {
    const rel = layerPath(e.path);
    this.stats.entries++;
    if (rel === '') {
      if (e.type !== 'dir') throw new ImageError(`the layer's root entry '${e.path}' is not a directory`);
      this.dirs.set('', { mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime });
      return;
    }
    this.parents(rel);
    const p = this.abs(rel);
    if (e.type === 'dir') {
      if (!this.clear(rel, true)) fs.mkdirSync(p, 0o700);
      this.dirs.set(rel, { mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime });
      await this.xattrs(rel, e);
      return;
    }
    this.clear(rel, false);
    switch (e.type) {
      case 'file': {
        const fd = fs.openSync(p, 'wx', 0o600);
        try {
          for await (const piece of body) {
            fs.writeSync(fd, piece);
            this.stats.bytes += piece.length;
          }
        } finally {
          fs.closeSync(fd);
        }
        break;
      }
      case 'symlink':
        fs.symlinkSync(Buffer.from(e.linkname, 'latin1'), p);
        break;
      case 'hardlink': {
        const target = layerPath(e.linkname);
        if (target === '' || this.dirs.has(target) || !this.dirs.has(parentOf(target))) {
          throw new ImageError(`hard link '${e.path}' names '${e.linkname}', which is not a file made earlier in this layer`);
        }
        try {
          fs.linkSync(this.abs(target), p);
        } catch (err) {
          throw (err as NodeJS.ErrnoException).code === 'ENOENT' ? new ImageError(`hard link '${e.path}' names '${e.linkname}', which is not in this layer`) : err;
        }
        // A hard link shares its target's inode: owner, mode and times are the target's.
        return;
      }
      case 'fifo':
        await makeNode(p, FileType.FIFO, 0, 0);
        break;
      case 'char':
      case 'block':
        if (!this.root) {
          this.skip(`device ${e.path}`);
          return;
        }
        await makeNode(p, e.type === 'char' ? FileType.CHR : FileType.BLK, e.devmajor, e.devminor);
        break;
    }
    if (this.root) fs.lchownSync(p, e.uid, e.gid);
    else if (e.uid !== process.getuid?.()) this.skip(`owner of ${e.path}`);
    if (e.type !== 'symlink') fs.chmodSync(p, e.mode);
    await this.xattrs(rel, e);
    fs.lutimesSync(p, e.mtime, e.mtime);
  }

  private async xattrs(rel: string, e: TarEntry): Promise<void> {
    for (const [name, value] of e.xattrs) {
      if (name.startsWith('trusted.overlay.')) {
        this.skip(`${name} on ${e.path}`);
        continue;
      }
      if (!this.root && !name.startsWith('user.')) {
        this.skip(`${name} on ${e.path}`);
        continue;
      }
      try {
        await setXattr(this.abs(rel), name, value);
      } catch {
        // security.capability needs CAP_SETFCAP, which a hardened unit may not grant.
        this.skip(`${name} on ${e.path}`);
      }
    }
  }

  /** Directories' owners, modes and times, deepest first so a parent's time is kept. */
  finish(): void {
    const dirs = [...this.dirs.entries()].sort((a, b) => b[0].length - a[0].length);
    for (const [rel, meta] of dirs) {
      const p = this.abs(rel);
      if (meta === undefined) {
        fs.chmodSync(p, 0o755);
        continue;
      }
      if (this.root) fs.lchownSync(p, meta.uid, meta.gid);
      fs.chmodSync(p, meta.mode);
      fs.utimesSync(p, meta.mtime, meta.mtime);
    }
  }
}

/**
 * Unpack `file` (the verified blob of `layer`) into `into`, an empty directory. Throws
 * ImageError when its tar does not match the diff_id or is not a layer we unpack.
 */
export async function unpackLayer(file: string, layer: LayerDescriptor, into: string, progress: Progress): Promise<UnpackStats> {
  const tar = new Verifier(layer.diffId);
  const stages: Transform[] = [tap(progress)];
  if (layer.compression === 'gzip') stages.push(createGunzip());
  else if (layer.compression === 'zstd') stages.push(zstd());
  stages.push(tap(tar));
  const u = new Unpacker(into);
  const source = fs.createReadStream(file);
  const tail = stages[stages.length - 1]!;
  const flowing = pipeline(source, ...stages as [Transform]).catch((err: unknown) => {
    throw err instanceof ImageError ? err : new ImageError((err as Error).message);
  });
  // Its error, if any, is taken below; until then it must not count as unhandled.
  flowing.catch(() => undefined);
  try {
    for await (const { entry, body } of readTar(tail as AsyncIterable<Buffer>)) await u.apply(entry, body);
    await flowing;
  } catch (err) {
    source.destroy();
    if (err instanceof ImageError) throw new ImageError(`layer ${layer.digest.text}: ${err.message}`);
    throw err;
  }
  tar.check(`layer ${layer.digest.text} (uncompressed, diff_id)`);
  u.finish();
  return u.stats;
}
