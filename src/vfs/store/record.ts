/**
 * Identity records: what the store knows of one object id, in memory and in bytes.
 *
 * Rule: a record is the object's type, its backing key (layer, dev, ino of its current copy),
 * its origin key (the lower inode it was copied up from; the key itself when it was not) and
 * its names (parent id, name). The same payload bytes are used in the log and the heap:
 *   u8 kind then
 *     kind 1 PUT: u64 id, u8 type, key(u8 layer,u64 dev,u64 ino), origin(same),
 *                 u16 n, n x (u64 parent, u16 len, name bytes)   (full state)
 *     kind 2 DEL: u64 id                                          (tombstone)
 *     kind 3 RESERVE: u64 limit (ids < limit may be handed out)
 * framed as u32 BE payload length, u32 BE CRC-32 of the payload.
 * Example: lookup of lower /a/f -> PUT{id 7, REG, key 2:2049:1234, origin same, names [(1,'a')]}
 */
import { crc32 } from 'node:zlib';
import type { FileType } from '../types.js';

export const K_PUT = 1, K_DEL = 2, K_RESERVE = 3;

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
 * array and a name object (~210 B). The origin fields are the key's own values when the two
 * are equal (no copy-up). Immutable: a change is a new Packed (the store compares identities
 * to know whether what it wrote to disk is still the latest).
 */
export class Packed {
  constructor(
    readonly type: FileType,
    readonly kLayer: number, readonly kDev: bigint, readonly kIno: bigint,
    readonly oLayer: number, readonly oDev: bigint, readonly oIno: bigint,
    /** The primary name; `more` holds the others (hard links), usually none. */
    readonly parent: number, readonly name: string, readonly more: readonly NameRef[] | undefined,
  ) {}

  /** Its framed PUT record, from the put that logged it until a checkpoint wrote it to the heap. */
  framed: Buffer | undefined = undefined;

  static of(r: IdRecord): Packed {
    const k = r.key, o = r.origin;
    const same = keyEq(k, o);
    const [first, ...rest] = r.names;
    return new Packed(r.type, k.layer, internDev(k.dev), k.ino, o.layer, same ? internDev(k.dev) : internDev(o.dev), same ? k.ino : o.ino,
      first?.parent ?? 0, first?.name ?? '', rest.length > 0 ? rest : undefined);
  }

  names(): NameRef[] {
    if (this.name === '' && this.parent === 0) return [];
    const first = { parent: this.parent, name: this.name };
    return this.more === undefined ? [first] : [first, ...this.more];
  }

  hasName(parent: number, name: string): boolean {
    if (this.parent === parent && this.name === name) return true;
    return this.more !== undefined && this.more.some((n) => n.parent === parent && n.name === name);
  }

  record(id: number): IdRecord {
    const key = { layer: this.kLayer, dev: this.kDev, ino: this.kIno };
    return { id, type: this.type, key, origin: this.sameOrigin() ? key : { layer: this.oLayer, dev: this.oDev, ino: this.oIno }, names: this.names() };
  }

  sameOrigin(): boolean {
    return this.oIno === this.kIno && this.oDev === this.kDev && this.oLayer === this.kLayer;
  }

  has(k: Key): boolean {
    return (k.ino === this.kIno && k.dev === this.kDev && k.layer === this.kLayer) || (k.ino === this.oIno && k.dev === this.oDev && k.layer === this.oLayer);
  }
}

export function frame(payload: Buffer): Buffer {
  const h = Buffer.allocUnsafe(8);
  h.writeUInt32BE(payload.length, 0);
  h.writeUInt32BE(crc32(payload), 4);
  return Buffer.concat([h, payload]);
}

/** The payload of the frame at buf[off..], or undefined when it is short or its CRC fails. */
export function unframe(buf: Buffer, off: number): Buffer | undefined {
  if (off + 8 > buf.length) return undefined;
  const len = buf.readUInt32BE(off);
  if (len === 0 || off + 8 + len > buf.length) return undefined;
  const payload = buf.subarray(off + 8, off + 8 + len);
  return crc32(payload) === buf.readUInt32BE(off + 4) ? payload : undefined;
}

export function encodePut(id: number, p: Packed): Buffer {
  return writePut(id, p, 0);
}

/** A PUT record framed (frame), written in one buffer. */
export function framedPut(id: number, p: Packed): Buffer {
  const b = writePut(id, p, 8);
  const payload = b.subarray(8);
  b.writeUInt32BE(payload.length, 0);
  b.writeUInt32BE(crc32(payload), 4);
  return b;
}

/** A PUT payload at `at` of a new buffer (names are latin1 strings: one byte per char). */
function writePut(id: number, p: Packed, at: number): Buffer {
  const names = p.names();
  let size = at + 1 + 8 + 1 + 17 + 17 + 2;
  for (const n of names) size += 8 + 2 + n.name.length;
  const b = Buffer.allocUnsafe(size);
  let o = at;
  b[o++] = K_PUT;
  o = writeU64(b, id, o);
  b[o++] = p.type;
  for (const [layer, dev, ino] of [[p.kLayer, p.kDev, p.kIno], [p.oLayer, p.oDev, p.oIno]] as const) {
    b[o++] = layer;
    b.writeBigUInt64BE(dev, o); o += 8;
    b.writeBigUInt64BE(ino, o); o += 8;
  }
  b.writeUInt16BE(names.length, o); o += 2;
  for (const n of names) {
    o = writeU64(b, n.parent, o);
    b.writeUInt16BE(n.name.length, o); o += 2;
    o += b.write(n.name, o, 'latin1');
  }
  return b;
}

/** A safe integer as u64 BE, without a BigInt. */
function writeU64(b: Buffer, v: number, o: number): number {
  b.writeUInt32BE(Math.floor(v / 0x100000000), o);
  b.writeUInt32BE(v >>> 0, o + 4);
  return o + 8;
}

export function encodeDel(id: number): Buffer {
  const b = Buffer.allocUnsafe(9);
  b[0] = K_DEL;
  b.writeBigUInt64BE(BigInt(id), 1);
  return b;
}

export function encodeReserve(limit: number): Buffer {
  const b = Buffer.allocUnsafe(9);
  b[0] = K_RESERVE;
  b.writeBigUInt64BE(BigInt(limit), 1);
  return b;
}

export type Decoded = { kind: 1; id: number; rec: Packed } | { kind: 2; id: number } | { kind: 3; limit: number };

/** A payload's content; throws on anything malformed. */
export function decode(b: Buffer): Decoded {
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
  return { kind: 1, id, rec: Packed.of({ id, type, key: keys[0]!, origin: keys[1]!, names }) };
}
