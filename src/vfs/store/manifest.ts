/**
 * The identity manifest: what the last checkpoint made durable, in one small file replaced
 * atomically (durable.ts).
 *
 * Rule: written after the heap and the tables are fdatasynced, so every page and record it
 * names is on disk; the rotated log is removed only after it. `limit` is the counter's
 * reservation at that time: no id at or above it was handed out before.
 * Layout, little-endian: "UNFSMF1\n", u32 CRC-32 of the rest, f64 limit, f64 records
 * (live ids in the id table; after a crash in a checkpoint, low by what that checkpoint had
 * added, which its replay finds already there), then the states of the id, name and inode tables
 * (bucket-table.ts encodeState).
 */
import * as fs from 'node:fs';
import { crc32 } from 'node:zlib';
import { decodeState, encodeState, stateBytes, type TableState } from './bucket-table.js';

const MAGIC = Buffer.from('UNFSMF1\n');

export interface Manifest {
  limit: number;
  records: number;
  tables: [TableState, TableState, TableState];
}

export function encodeManifest(m: Manifest): Buffer {
  const b = Buffer.alloc(MAGIC.length + 4 + 16 + m.tables.reduce((s, t) => s + stateBytes(t), 0));
  MAGIC.copy(b);
  let o = MAGIC.length + 4;
  b.writeDoubleLE(m.limit, o);
  b.writeDoubleLE(m.records, o + 8);
  o += 16;
  for (const t of m.tables) o = encodeState(t, b, o);
  b.writeUInt32LE(crc32(b.subarray(MAGIC.length + 4)), MAGIC.length);
  return b;
}

/** The manifest at `path`: undefined when there is none; throws when it is damaged. */
export function readManifest(path: string): Manifest | undefined {
  let b: Buffer;
  try { b = fs.readFileSync(path); } catch { return undefined; }
  if (b.length < MAGIC.length + 20 || !b.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error('identity manifest: bad header');
  if (crc32(b.subarray(MAGIC.length + 4)) !== b.readUInt32LE(MAGIC.length)) throw new Error('identity manifest: checksum mismatch');
  let o = MAGIC.length + 4;
  const limit = b.readDoubleLE(o), records = b.readDoubleLE(o + 8);
  o += 16;
  const tables: TableState[] = [];
  for (let i = 0; i < 3; i++) {
    const d = decodeState(b, o);
    tables.push(d.state);
    o = d.end;
  }
  if (o !== b.length) throw new Error('identity manifest: trailing bytes');
  return { limit, records, tables: tables as Manifest['tables'] };
}
