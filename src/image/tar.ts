/**
 * A streaming reader of tar archives as OCI image layers use them (POSIX ustar, pax extended
 * headers, GNU long names), yielding one entry at a time with its body as a stream, so a layer
 * of any size passes through a few buffers.
 *
 * Rule: names are raw bytes, carried as binary strings (latin1 of the bytes, as in src/vfs).
 * pax `path`, `linkpath`, `size`, `uid`, `gid`, `mtime` override the ustar fields, and
 * `SCHILY.xattr.NAME` records become the entry's extended attributes (what GNU tar, buildah,
 * umoci and the Go archive/tar writer emit). Numeric fields are octal or GNU base-256.
 * Sparse files ('S') and multi-volume parts are refused; unknown vendor types are refused too,
 * so a layer is never unpacked partly.
 * A header whose checksum is wrong is an error: a corrupt layer is found here even before its
 * digest is checked at the end.
 */
import { ImageError } from './errors.js';

export type EntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarEntry {
  /** Binary string, as written in the archive (leading './' and '/' not yet removed). */
  readonly path: string;
  readonly type: EntryType;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  /** Seconds since the epoch, with the fraction a pax header gives. */
  readonly mtime: number;
  /** Binary string: the target of a symlink, or the earlier entry a hard link names. */
  readonly linkname: string;
  readonly devmajor: number;
  readonly devminor: number;
  readonly xattrs: ReadonlyMap<string, Buffer>;
}

const BLOCK = 512;
const TYPES: Record<string, EntryType> = {
  '0': 'file', '\0': 'file', '7': 'file', '1': 'hardlink', '2': 'symlink', '3': 'char', '4': 'block', '5': 'dir', '6': 'fifo',
};

/** Pulls exact byte counts out of a stream of chunks. */
class ByteReader {
  private chunks: Buffer[] = [];
  private have = 0;
  private readonly it: AsyncIterator<Buffer>;
  private done = false;

  constructor(input: AsyncIterable<Buffer>) {
    this.it = input[Symbol.asyncIterator]();
  }

  private async fill(n: number): Promise<boolean> {
    while (this.have < n && !this.done) {
      const r = await this.it.next();
      if (r.done === true) this.done = true;
      else if (r.value.length > 0) {
        this.chunks.push(r.value);
        this.have += r.value.length;
      }
    }
    return this.have >= n;
  }

  /** Exactly n bytes, or null at a clean end of input (nothing buffered). */
  async take(n: number): Promise<Buffer | null> {
    if (!(await this.fill(n))) {
      if (this.have === 0) return null;
      throw new ImageError('the layer archive ends in the middle of a block (truncated)');
    }
    // Copy only when n spans chunks; a header inside one chunk is a view of it.
    let head = this.chunks[0]!;
    if (head.length < n) {
      let k = 1, len = head.length;
      while (len < n) len += this.chunks[k++]!.length;
      head = Buffer.concat(this.chunks.splice(0, k, Buffer.alloc(0)), len);
    }
    this.chunks[0] = head.subarray(n);
    if (this.chunks[0].length === 0) this.chunks.shift();
    this.have -= n;
    return head.subarray(0, n);
  }

  /** n bytes as they arrive, in pieces. */
  async *stream(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.have === 0 && !(await this.fill(1))) throw new ImageError('the layer archive ends inside a file (truncated)');
      const head = this.chunks[0]!;
      const piece = head.length <= left ? head : head.subarray(0, left);
      if (piece === head) this.chunks.shift();
      else this.chunks[0] = head.subarray(left);
      this.have -= piece.length;
      left -= piece.length;
      yield piece;
    }
  }

  async drain(): Promise<void> {
    this.chunks = [];
    this.have = 0;
    while (!this.done) if ((await this.it.next()).done === true) this.done = true;
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.stream(n)) { /* discard */ }
  }
}

function cstring(b: Buffer, at: number, len: number): string {
  const f = b.subarray(at, at + len);
  const end = f.indexOf(0);
  return f.subarray(0, end < 0 ? len : end).toString('latin1');
}

function numeric(b: Buffer, at: number, len: number): number {
  const f = b.subarray(at, at + len);
  if (f[0]! & 0x80) {
    // GNU base-256: big-endian two's complement with the top bit as the marker.
    let v = f[0]! & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + f[i]!;
    if (!Number.isSafeInteger(v)) throw new ImageError('a numeric tar field does not fit in 2^53');
    return v;
  }
  const s = cstring(b, at, len).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new ImageError(`a numeric tar field is not octal: '${s}'`);
  return parseInt(s, 8);
}

function checksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  return sum === numeric(h, 148, 8);
}

/** pax records: "LEN KEY=VALUE\n", LEN counting the whole record. Values are raw bytes. */
function parsePax(body: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let at = 0;
  while (at < body.length) {
    const sp = body.indexOf(0x20, at);
    const len = Number(body.subarray(at, sp).toString('latin1'));
    if (sp < 0 || !Number.isInteger(len) || len <= 0 || at + len > body.length) throw new ImageError('a pax extended header is malformed');
    const rec = body.subarray(sp + 1, at + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq < 0) throw new ImageError('a pax record has no =');
    out.set(rec.subarray(0, eq).toString('utf8'), rec.subarray(eq + 1));
    at += len;
  }
  return out;
}

/** The largest extended header (pax or GNU long name) accepted: names are bounded, this is too. */
const MAX_META = 1 << 20;

export async function* readTar(input: AsyncIterable<Buffer>): AsyncGenerator<{ entry: TarEntry; body: AsyncIterable<Buffer> }> {
  const r = new ByteReader(input);
  let global = new Map<string, Buffer>();
  let pax = new Map<string, Buffer>();
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    const h = await r.take(BLOCK);
    if (h === null) throw new ImageError('the layer archive ends without its end-of-archive blocks (truncated)');
    if (h.every((x) => x === 0)) {
      // End of archive. What follows (the second zero block, a writer's padding) is read
      // too, so that a digest taken of the input covers it all.
      await r.drain();
      return;
    }
    if (!checksumOk(h)) throw new ImageError('a tar header checksum is wrong (corrupt layer)');
    const flag = String.fromCharCode(h[156]!);
    const size = numeric(h, 124, 12);
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      if (size > MAX_META) throw new ImageError(`an extended tar header of ${size} bytes is larger than ${MAX_META}`);
      const body = (await r.take(padded)) ?? Buffer.alloc(0);
      const data = body.subarray(0, size);
      if (flag === 'x') pax = parsePax(data);
      else if (flag === 'g') global = new Map([...global, ...parsePax(data)]);
      else if (flag === 'L') longName = cstring(data, 0, data.length);
      else longLink = cstring(data, 0, data.length);
      continue;
    }
    const type = TYPES[flag];
    if (type === undefined) throw new ImageError(`tar entry type '${flag}' is not supported in a layer`);
    const ext = new Map([...global, ...pax]);
    const magic = h.subarray(257, 263).toString('latin1');
    const prefix = magic === 'ustar\0' ? cstring(h, 345, 155) : '';
    const ustarName = (prefix !== '' ? `${prefix}/` : '') + cstring(h, 0, 100);
    const num = (key: string, fallback: number): number => {
      const v = ext.get(key);
      if (v === undefined) return fallback;
      const n = Number(v.toString('latin1'));
      if (!Number.isFinite(n) || n < 0 || (key !== 'mtime' && !Number.isSafeInteger(n))) throw new ImageError(`pax ${key} '${v.toString('latin1')}' is not a number`);
      return n;
    };
    const xattrs = new Map<string, Buffer>();
    for (const [k, v] of ext) if (k.startsWith('SCHILY.xattr.')) xattrs.set(k.slice('SCHILY.xattr.'.length), v);
    const entry: TarEntry = {
      path: ext.get('path')?.toString('latin1') ?? longName ?? ustarName,
      type,
      mode: numeric(h, 100, 8) & 0o7777,
      uid: num('uid', numeric(h, 108, 8)),
      gid: num('gid', numeric(h, 116, 8)),
      size: type === 'file' ? num('size', size) : 0,
      mtime: num('mtime', numeric(h, 136, 12)),
      linkname: ext.get('linkpath')?.toString('latin1') ?? longLink ?? cstring(h, 157, 100),
      devmajor: numeric(h, 329, 8),
      devminor: numeric(h, 337, 8),
      xattrs,
    };
    pax = new Map();
    longName = longLink = undefined;
    const bodySize = num('size', size);
    let read = 0;
    const body = (async function* () {
      for await (const piece of r.stream(entry.size)) {
        read += piece.length;
        yield piece;
      }
    })();
    yield { entry, body };
    // Whatever of the body the consumer did not read (a link's size is data to skip, too),
    // then the padding to the block.
    await r.skip(bodySize - read);
    const pad = Math.ceil(bodySize / BLOCK) * BLOCK - bodySize;
    if (pad > 0) await r.skip(pad);
  }
}
