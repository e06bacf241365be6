/**
 * The persistent identity store: id -> (type, backing key, origin key, names), in an
 * append-only log of our own format.
 *
 * Rule: every object a client has seen has a record; ids come from a counter whose blocks are
 * reserved with an fsynced RESERVE record before any id of the block is handed out, so an id
 * is never reused, even after a crash. Root is id 1 and has no record.
 * Why our own log and not an embedded DB: the data is tiny and append-mostly, a record is one
 * write(2), the format is 60 lines, and no native dependency is needed (LevelDB/SQLite would be).
 *
 * Layout of <state>/ (mode 0700):
 *   key           32 random bytes, the handle HMAC key (0600), written tmp+fsync+rename
 *   identity.log  "UNFSID1\n" then records: u32 BE payload length, u32 BE CRC-32 of payload,
 *                 payload = u8 kind then
 *                   kind 1 PUT: u64 id, u8 type, key(u8 layer,u64 dev,u64 ino), origin(same),
 *                               u16 n, n x (u64 parent, u16 len, name bytes)   (full state)
 *                   kind 2 DEL: u64 id                                          (tombstone)
 *                   kind 3 RESERVE: u64 limit (ids < limit may be handed out)
 * Compaction at open writes identity.log.tmp (live PUTs + RESERVE), fsyncs, renames it over.
 * Reading stops at the first short or CRC-failing record (torn tail ignored and cut off). When
 * the damage is not at the very end, records after it may include RESERVEs, so the counter is
 * moved 2^32 ids forward to stay clear of anything handed out. A missing log with a present
 * key rotates the key: old handles then fail their HMAC instead of naming new objects.
 * Example: lookup of lower /a/f -> PUT{id 7, REG, key 2:2049:1234, origin same, names [(1,'a')]}
 * Races: records are written synchronously (write(2), survives SIGKILL); fdatasync is batched
 * (at most 100 ms later, on the thread pool; COMMIT waits for one) except for RESERVE, which
 * is fsynced before use.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { child } from '../log.js';
import type { FileType } from './types.js';

const log = child('vfs');
const MAGIC = Buffer.from('UNFSID1\n');
const BLOCK = 4096;
const K_PUT = 1, K_DEL = 2, K_RESERVE = 3;

export interface Key { layer: number; dev: bigint; ino: bigint }
export interface NameRef { parent: number; name: string }
export interface IdRecord {
  id: number;
  type: FileType;
  key: Key;
  origin: Key;
  names: NameRef[];
}

export function keyEq(a: Key, b: Key): boolean {
  return a === b || (a.ino === b.ino && a.dev === b.dev && a.layer === b.layer);
}

/** One bigint per device number (every record of a layer shares it). */
const devs = new Map<bigint, bigint>();
function internDev(d: bigint): bigint {
  const v = devs.get(d);
  if (v !== undefined) return v;
  devs.set(d, d);
  return d;
}

/**
 * A record as kept in memory: one flat object (~100 B) instead of a record, two keys, a names
 * array and a name object (~210 B), since a server holds one per object ever seen. The origin
 * fields are the key's own values when the two are equal (no copy-up).
 */
class Packed {
  constructor(
    readonly type: FileType,
    readonly kLayer: number, readonly kDev: bigint, readonly kIno: bigint,
    readonly oLayer: number, readonly oDev: bigint, readonly oIno: bigint,
    /** The primary name; `more` holds the others (hard links), usually none. */
    readonly parent: number, readonly name: string, readonly more: readonly NameRef[] | undefined,
  ) {}

  /** The object's handle MAC once computed this run (Union.macOf). Never written to the log. */
  mac: string | undefined = undefined;

  static of(r: IdRecord): Packed {
    const k = r.key, o = r.origin;
    const [first, ...rest] = r.names;
    return new Packed(r.type, k.layer, internDev(k.dev), k.ino, o.layer, keyEq(k, o) ? internDev(k.dev) : internDev(o.dev), keyEq(k, o) ? k.ino : o.ino,
      first?.parent ?? 0, first?.name ?? '', rest.length > 0 ? rest : undefined);
  }

  names(): NameRef[] {
    if (this.name === '' && this.parent === 0) return [];
    const first = { parent: this.parent, name: this.name };
    return this.more === undefined ? [first] : [first, ...this.more];
  }

  record(id: number): IdRecord {
    const key = { layer: this.kLayer, dev: this.kDev, ino: this.kIno };
    const sameOrigin = this.oIno === this.kIno && this.oDev === this.kDev && this.oLayer === this.kLayer;
    return { id, type: this.type, key, origin: sameOrigin ? key : { layer: this.oLayer, dev: this.oDev, ino: this.oIno }, names: this.names() };
  }

  has(k: Key): boolean {
    return (k.ino === this.kIno && k.dev === this.kDev && k.layer === this.kLayer) || (k.ino === this.oIno && k.dev === this.oDev && k.layer === this.oLayer);
  }
}

export class IdentityStore {
  private readonly records = new Map<number, Packed>();
  /**
   * parent -> name -> id. Indexes are kept small (about 100 B a record less than string keys
   * like `${parent}/${name}`): names are the records' own strings, inodes their own bigints.
   */
  private readonly byName = new Map<number, Map<string, number>>();
  /**
   * ino of a key or origin -> id, or ids when several records share an ino (other layer/dev).
   * Only hard links need it (idByKey), so it is built on the first such question and kept up
   * to date from then on; until then it is null and costs nothing.
   */
  private byIno: Map<bigint, number | number[]> | null = null;
  hmacKey!: Buffer;
  private next = 2;
  private limit = 2;
  private fd = -1;
  private pending: Buffer[] = [];
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;
  /** fdatasyncs in flight (close waits for them before closing the fd). */
  private readonly syncing = new Set<Promise<void>>();

  constructor(readonly dir: string) {}

  /** Records held. */
  get size(): number {
    return this.records.size;
  }

  open(): void {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const logPath = path.join(this.dir, 'identity.log');
    const keyPath = path.join(this.dir, 'key');
    const haveLog = fs.existsSync(logPath);
    let key: Buffer | undefined;
    try { key = fs.readFileSync(keyPath); } catch { /* created below */ }
    if (key === undefined || key.length !== 32 || !haveLog) {
      if (key !== undefined && !haveLog) log.warn('identity log missing: rotating handle key, old handles become stale');
      key = randomBytes(32);
      writeFileDurable(keyPath, key, 0o600);
      for (const f of [logPath]) { try { fs.unlinkSync(f); } catch { /* none */ } }
    }
    this.hmacKey = key;
    if (fs.existsSync(logPath)) this.load(fs.readFileSync(logPath));
    this.compact(logPath);
    this.fd = fs.openSync(logPath, fs.constants.O_WRONLY | fs.constants.O_APPEND);
  }

  private load(buf: Buffer): void {
    if (buf.length < MAGIC.length || !buf.subarray(0, MAGIC.length).equals(MAGIC)) {
      log.error('identity log has a bad header: starting empty, old handles become stale');
      this.next = this.limit = 2 ** 32;
      return;
    }
    let off = MAGIC.length;
    let maxId = 1;
    while (off < buf.length) {
      if (off + 8 > buf.length) break;
      const len = buf.readUInt32BE(off);
      const crc = buf.readUInt32BE(off + 4);
      if (len === 0 || off + 8 + len > buf.length) break;
      const payload = buf.subarray(off + 8, off + 8 + len);
      if (crc32(payload) !== crc) break;
      try {
        const r = decode(payload);
        if (r.kind === K_PUT) { this.apply(r.rec); maxId = Math.max(maxId, r.rec.id); }
        else if (r.kind === K_DEL) { this.drop(r.id); maxId = Math.max(maxId, r.id); }
        else this.limit = Math.max(this.limit, r.limit);
      } catch {
        break;
      }
      off += 8 + len;
    }
    this.next = Math.max(this.limit, maxId + 1);
    if (off < buf.length) {
      const tail = buf.length - off;
      log.warn('identity log: damaged record ignored', { offset: off, bytesIgnored: tail });
      // Damage could have eaten RESERVE records: move far past anything handed out.
      this.next += 2 ** 32;
    }
    this.limit = this.next;
  }

  private compact(logPath: string): void {
    const tmp = logPath + '.tmp';
    const parts: Buffer[] = [MAGIC];
    for (const [id, p] of this.records) parts.push(frame(encodePut(p.record(id))));
    this.limit = this.next + BLOCK;
    parts.push(frame(encodeReserve(this.limit)));
    writeFileDurable(tmp, Buffer.concat(parts), 0o600);
    fs.renameSync(tmp, logPath);
    fsyncDir(this.dir);
  }

  /** A new id, never handed out before. */
  alloc(): number {
    if (this.next >= this.limit) {
      this.limit = this.next + BLOCK;
      this.flush();
      fs.writeSync(this.fd, frame(encodeReserve(this.limit)));
      fs.fsyncSync(this.fd);
    }
    return this.next++;
  }

  /** The record of id (a fresh object: changing it changes nothing until put). */
  get(id: number): IdRecord | undefined {
    return this.records.get(id)?.record(id);
  }

  /** The handle MAC remembered for id (Packed.mac), if any. */
  macOf(id: number): string | undefined {
    return this.records.get(id)?.mac;
  }

  rememberMac(id: number, mac: string): void {
    const p = this.records.get(id);
    if (p !== undefined) p.mac = mac;
  }

  /** The id recorded under (parent, name). */
  idByName(parent: number, name: string): number | undefined {
    return this.byName.get(parent)?.get(name);
  }

  /** The id whose key or origin is k. */
  idByKey(k: Key): number | undefined {
    const v = this.inoIndex().get(k.ino);
    if (v === undefined) return undefined;
    for (const id of typeof v === 'number' ? [v] : v) {
      if (this.records.get(id)?.has(k) === true) return id;
    }
    return undefined;
  }

  put(rec: IdRecord): void {
    this.apply(rec);
    this.append(frame(encodePut(rec)));
  }

  del(id: number): void {
    if (!this.records.has(id)) return;
    this.drop(id);
    this.append(frame(encodeDel(id)));
  }

  private apply(rec: IdRecord): void {
    const old = this.records.get(rec.id);
    if (old !== undefined) this.unindex(rec.id, old);
    const p = Packed.of(rec);
    this.records.set(rec.id, p);
    for (const n of rec.names) {
      let m = this.byName.get(n.parent);
      if (m === undefined) this.byName.set(n.parent, m = new Map());
      m.set(n.name, rec.id);
    }
    if (this.byIno !== null) this.inoIndexAdd(this.byIno, rec.id, p);
  }

  private inoIndex(): Map<bigint, number | number[]> {
    if (this.byIno === null) {
      const m = new Map<bigint, number | number[]>();
      for (const [id, p] of this.records) this.inoIndexAdd(m, id, p);
      this.byIno = m;
    }
    return this.byIno;
  }

  private inoIndexAdd(m: Map<bigint, number | number[]>, id: number, p: Packed): void {
    inoAdd(m, p.kIno, id);
    if (p.oIno !== p.kIno) inoAdd(m, p.oIno, id);
  }

  private drop(id: number): void {
    const old = this.records.get(id);
    if (old === undefined) return;
    this.unindex(id, old);
    this.records.delete(id);
  }

  private unindex(id: number, p: Packed): void {
    for (const n of p.names()) {
      const m = this.byName.get(n.parent);
      if (m?.get(n.name) === id) {
        m.delete(n.name);
        if (m.size === 0) this.byName.delete(n.parent);
      }
    }
    if (this.byIno !== null) {
      inoDel(this.byIno, p.kIno, id);
      inoDel(this.byIno, p.oIno, id);
    }
  }

  private append(b: Buffer): void {
    this.pending.push(b);
    if (this.pending.length >= 256) this.flush();
  }

  /** Write buffered records (write(2): survives a process kill). */
  flush(): void {
    if (this.pending.length === 0 || this.fd < 0) return;
    const b = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    this.pending = [];
    fs.writeSync(this.fd, b);
    if (!this.dirty) {
      this.dirty = true;
      this.timer = setTimeout(() => void this.sync(), 100);
      this.timer.unref();
    }
  }

  /**
   * Make every record written so far durable. fdatasync runs on the thread pool: on a disk it
   * takes milliseconds, and on the event loop it stalled every client each 100 ms under writes.
   * A failure is logged, not thrown (the records stay in the page cache; the next sync retries).
   */
  async sync(): Promise<void> {
    this.flush();
    if (!this.dirty || this.fd < 0) return;
    this.dirty = false;
    if (this.timer) clearTimeout(this.timer);
    const fd = this.fd;
    const p = new Promise<void>((resolve) => fs.fdatasync(fd, (e) => {
      if (e) {
        log.error('identity log: fdatasync failed', { code: e.code });
        this.dirty = true;
      }
      resolve();
    }));
    this.syncing.add(p);
    try { await p; } finally { this.syncing.delete(p); }
  }

  async close(): Promise<void> {
    if (this.fd < 0) return;
    await this.sync();
    await Promise.all([...this.syncing]);
    fs.closeSync(this.fd);
    this.fd = -1;
  }
}

function inoAdd(m: Map<bigint, number | number[]>, ino: bigint, id: number): void {
  const v = m.get(ino);
  if (v === undefined) m.set(ino, id);
  else if (typeof v === 'number') { if (v !== id) m.set(ino, [v, id]); }
  else if (!v.includes(id)) v.push(id);
}

function inoDel(m: Map<bigint, number | number[]>, ino: bigint, id: number): void {
  const v = m.get(ino);
  if (v === undefined) return;
  if (typeof v === 'number') { if (v === id) m.delete(ino); return; }
  const rest = v.filter((x) => x !== id);
  if (rest.length === 0) m.delete(ino);
  else m.set(ino, rest.length === 1 ? rest[0]! : rest);
}

function frame(payload: Buffer): Buffer {
  const h = Buffer.allocUnsafe(8);
  h.writeUInt32BE(payload.length, 0);
  h.writeUInt32BE(crc32(payload), 4);
  return Buffer.concat([h, payload]);
}

function encodePut(r: IdRecord): Buffer {
  let size = 1 + 8 + 1 + 17 + 17 + 2;
  const names = r.names.map((n) => Buffer.from(n.name, 'latin1'));
  for (const n of names) size += 8 + 2 + n.length;
  const b = Buffer.allocUnsafe(size);
  let o = 0;
  b[o++] = K_PUT;
  b.writeBigUInt64BE(BigInt(r.id), o); o += 8;
  b[o++] = r.type;
  for (const k of [r.key, r.origin]) {
    b[o++] = k.layer;
    b.writeBigUInt64BE(k.dev, o); o += 8;
    b.writeBigUInt64BE(k.ino, o); o += 8;
  }
  b.writeUInt16BE(names.length, o); o += 2;
  r.names.forEach((n, i) => {
    b.writeBigUInt64BE(BigInt(n.parent), o); o += 8;
    b.writeUInt16BE(names[i]!.length, o); o += 2;
    o += names[i]!.copy(b, o);
  });
  return b;
}

function encodeDel(id: number): Buffer {
  const b = Buffer.allocUnsafe(9);
  b[0] = K_DEL;
  b.writeBigUInt64BE(BigInt(id), 1);
  return b;
}

function encodeReserve(limit: number): Buffer {
  const b = Buffer.allocUnsafe(9);
  b[0] = K_RESERVE;
  b.writeBigUInt64BE(BigInt(limit), 1);
  return b;
}

type Decoded = { kind: 1; rec: IdRecord } | { kind: 2; id: number } | { kind: 3; limit: number };

function decode(b: Buffer): Decoded {
  const kind = b[0];
  if (kind === K_DEL) return { kind: 2, id: Number(b.readBigUInt64BE(1)) };
  if (kind === K_RESERVE) return { kind: 3, limit: Number(b.readBigUInt64BE(1)) };
  if (kind !== K_PUT) throw new Error('bad kind');
  let o = 1;
  const id = Number(b.readBigUInt64BE(o)); o += 8;
  const type = b[o++] as FileType;
  const keys: Key[] = [];
  for (let i = 0; i < 2; i++) {
    const layer = b[o++]!;
    const dev = b.readBigUInt64BE(o); o += 8;
    const ino = b.readBigUInt64BE(o); o += 8;
    keys.push({ layer, dev, ino });
  }
  const n = b.readUInt16BE(o); o += 2;
  const names: NameRef[] = [];
  for (let i = 0; i < n; i++) {
    const parent = Number(b.readBigUInt64BE(o)); o += 8;
    const len = b.readUInt16BE(o); o += 2;
    if (o + len > b.length) throw new Error('short');
    names.push({ parent, name: b.toString('latin1', o, o + len) });
    o += len;
  }
  if (o !== b.length) throw new Error('trailing bytes');
  return { kind: 1, rec: { id, type, key: keys[0]!, origin: keys[1]!, names } };
}

/** Replaces `p` with `data`, durably: a temporary of its own (two writers never share one), fsync, rename, fsync of the directory. */
export function writeFileDurable(p: string, data: Buffer, mode: number): void {
  const tmp = `${p}.${randomBytes(4).toString('hex')}.new`;
  const fd = fs.openSync(tmp, 'w', mode);
  try {
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, p);
  fsyncDir(path.dirname(p));
}

export function fsyncDir(d: string): void {
  const fd = fs.openSync(d, 'r');
  try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
}
