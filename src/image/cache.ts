/**
 * The layer cache: every layer unpacked once, keyed by its diff_id (the digest of its
 * uncompressed tar), shared by every export and union of the server and by every image that
 * contains the layer, whatever registry or layout it came from.
 *
 *   <cache>/layers/sha256/<hex>/   an unpacked layer: a lower directory, never written again
 *   <cache>/blobs/sha256/<hex>     a downloaded blob, deleted once unpacked (.partial: resumable)
 *   <cache>/tmp/<pid>-<hex>/       an unpack in progress
 *   <cache>/in-use/<pid>           the diff_ids a running server serves, one per line
 *   <cache>/refs/<sha256 of ref>   the layers a registry reference named at its last pull
 *
 * Rule: a layer is unpacked into tmp/, flushed to disk (syncfs), then renamed into layers/
 * (and the rename made durable), so a layer directory that exists is whole: a crash or a
 * refused digest leaves only tmp/, which no server reads and `--image-gc` removes. Two unions
 * asking for one layer share its unpack; two servers racing on one cache each unpack and the
 * second rename finds the first's layer and drops its own.
 * GC keeps the layers the in-use files of live processes list and removes the others, the
 * unpacks of dead processes, and (when no server runs) the downloads left behind. refs/
 * stays: a record whose layers are gone is not used.
 */
import { promises as fsp } from 'node:fs';
import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { FsError } from '../errors/fs-error.js';
import { sys } from '../vfs/syscalls.js';
import { child } from '../log.js';
import { stateHome } from '../state-dir.js';
import { parseDigest } from './digest.js';
import type { LayerDescriptor } from './manifest.js';
import { Progress } from './progress.js';
import type { ImageSource } from './source.js';
import { unpackLayer } from './unpack.js';

const log = child('image');

function short(text: string): string {
  return text.slice(0, 'sha256:'.length + 12);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function fsyncDir(path: string): Promise<void> {
  const fh = await fsp.open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * What was written under path, on disk: syncfs(2) of its file system on the thread pool (the
 * syscalls addon), no child process. Node has no syncfs: without the addon each file and
 * directory under path is fsynced.
 */
async function syncFileSystem(path: string): Promise<void> {
  if (sys !== undefined) {
    const [code] = await sys.syncfsFds([fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY)]);
    if (code != null) throw new FsError(code, `syncfs of ${path}`);
    return;
  }
  for (const e of await fsp.readdir(path, { recursive: true, withFileTypes: true })) {
    if (e.isFile() || e.isDirectory()) await fsyncDir(join(e.parentPath ?? e.path, e.name));
  }
  await fsyncDir(path);
}

/** The cache when none is configured: beside the server's other state. */
export function defaultCacheDir(): string {
  return join(stateHome(), 'images');
}

export class LayerCache {
  private readonly pending = new Map<string, Promise<string>>();
  private readonly used = new Set<string>();

  constructor(readonly dir: string) {}

  get blobsDir(): string {
    return join(this.dir, 'blobs');
  }

  layerDir(layer: LayerDescriptor): string {
    return join(this.dir, 'layers', layer.diffId.algorithm, layer.diffId.hex);
  }

  /** The layer's directory, unpacked from `source` unless the cache has it. */
  layer(layer: LayerDescriptor, source: ImageSource): Promise<string> {
    const key = layer.diffId.text;
    let p = this.pending.get(key);
    if (p === undefined) {
      p = this.fill(layer, source).finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    return p;
  }

  private async fill(layer: LayerDescriptor, source: ImageSource): Promise<string> {
    const dir = this.layerDir(layer);
    if (await fsp.stat(dir).then((s) => s.isDirectory(), () => false)) return dir;
    const label = `${source.what}: layer ${short(layer.digest.text)}`;
    const started = Date.now();
    log.info(`${label}: fetching and unpacking ${(layer.size / 1e6).toFixed(1)} MB (${layer.compression})`);
    const fetching = new Progress(`${label} fetch`, layer.size);
    const file = await source.blobFile(layer, fetching);
    fetching.end();
    const tmp = join(this.dir, 'tmp', `${process.pid}-${layer.diffId.hex}`);
    await fsp.rm(tmp, { recursive: true, force: true });
    await fsp.mkdir(tmp, { recursive: true });
    try {
      const unpacking = new Progress(`${label} unpack`, layer.size);
      const stats = await unpackLayer(file, layer, tmp, unpacking);
      unpacking.end();
      if (stats.skipped.length > 0) log.warn(`${label}: without the privilege to make them (root; CAP_SETFCAP for file capabilities), these and any like them were not kept: ${stats.skipped.join(', ')}`);
      // Whole on disk before it becomes visible under layers/.
      await syncFileSystem(tmp);
      await fsp.mkdir(join(this.dir, 'layers', layer.diffId.algorithm), { recursive: true });
      try {
        await fsp.rename(tmp, dir);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw err;
        // Another server on this cache unpacked it first; theirs is as good.
      }
      await fsyncDir(join(this.dir, 'layers', layer.diffId.algorithm));
      log.info(`${label}: unpacked ${stats.entries} entries, ${(stats.bytes / 1e6).toFixed(1)} MB of files, in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    } finally {
      await fsp.rm(tmp, { recursive: true, force: true });
    }
    await source.release(layer);
    return dir;
  }

  private refFile(ref: string): string {
    return join(this.dir, 'refs', createHash('sha256').update(ref).digest('hex'));
  }

  /** Remember what `ref` resolved to, for a start when its registry cannot be reached. */
  async remember(ref: string, layers: readonly LayerDescriptor[]): Promise<void> {
    const file = this.refFile(ref);
    await fsp.mkdir(join(this.dir, 'refs'), { recursive: true });
    const record = { ref, at: new Date().toISOString(), layers: layers.map((l) => ({ ...l, digest: l.digest.text, diffId: l.diffId.text })) };
    await fsp.writeFile(`${file}.tmp`, JSON.stringify(record));
    await fsp.rename(`${file}.tmp`, file);
  }

  /** What `ref` resolved to at its last pull, when every one of those layers is still here. */
  async recall(ref: string): Promise<{ at: string; layers: LayerDescriptor[] } | undefined> {
    try {
      const record = JSON.parse(await fsp.readFile(this.refFile(ref), 'utf8')) as { ref: string; at: string; layers: (Omit<LayerDescriptor, 'digest' | 'diffId'> & { digest: string; diffId: string })[] };
      if (record.ref !== ref) return undefined;
      const layers = record.layers.map((l) => ({ ...l, digest: parseDigest(l.digest, ref), diffId: parseDigest(l.diffId, ref) }));
      for (const l of layers) if (!(await fsp.stat(this.layerDir(l)).then((st) => st.isDirectory(), () => false))) return undefined;
      return { at: record.at, layers };
    } catch {
      return undefined;
    }
  }

  /** Record that this process serves these layers, so a GC run elsewhere keeps them. */
  async markInUse(layers: readonly LayerDescriptor[]): Promise<void> {
    const before = this.used.size;
    for (const l of layers) this.used.add(l.diffId.text);
    if (this.used.size === before) return;
    const dir = join(this.dir, 'in-use');
    await fsp.mkdir(dir, { recursive: true });
    const tmp = join(dir, `.${process.pid}`);
    await fsp.writeFile(tmp, [...this.used].join('\n') + '\n');
    await fsp.rename(tmp, join(dir, String(process.pid)));
  }

  async unmark(): Promise<void> {
    await fsp.rm(join(this.dir, 'in-use', String(process.pid)), { force: true });
  }

  /** Remove what no live server uses. Returns the paths removed. */
  async gc(): Promise<string[]> {
    const keep = new Set<string>();
    const live = new Set<string>();
    const inUse = join(this.dir, 'in-use');
    for (const name of await fsp.readdir(inUse).catch(() => [] as string[])) {
      const pid = Number(name);
      if (!Number.isInteger(pid) || !alive(pid)) {
        await fsp.rm(join(inUse, name), { force: true });
        continue;
      }
      live.add(name);
      for (const line of (await fsp.readFile(join(inUse, name), 'utf8')).split('\n')) if (line !== '') keep.add(line);
    }
    const removed: string[] = [];
    const sweep = async (sub: string, keepName: (alg: string, name: string) => boolean): Promise<void> => {
      for (const alg of await fsp.readdir(join(this.dir, sub)).catch(() => [] as string[])) {
        for (const name of await fsp.readdir(join(this.dir, sub, alg)).catch(() => [] as string[])) {
          if (keepName(alg, name)) continue;
          const path = join(this.dir, sub, alg, name);
          await fsp.rm(path, { recursive: true, force: true });
          removed.push(path);
        }
      }
    };
    await sweep('layers', (alg, hex) => keep.has(`${alg}:${hex}`));
    // Blobs are deleted once unpacked: one still here is a pull that stopped, or one a live
    // server is downloading right now, so they go only when no server runs.
    await sweep('blobs', () => live.size > 0);
    for (const name of await fsp.readdir(join(this.dir, 'tmp')).catch(() => [] as string[])) {
      if (live.has(name.split('-')[0]!)) continue;
      await fsp.rm(join(this.dir, 'tmp', name), { recursive: true, force: true });
      removed.push(join(this.dir, 'tmp', name));
    }
    return removed;
  }
}
