/**
 * Tags of the identity tables (bucket-table.ts): 64 bits as (hi, lo) u32s, never (0, 0).
 *
 * Rule: an id is its own tag. A name's tag is a hash of (parent, name) seeded from the
 * store's secret key, so a client cannot choose names that all land in one page (a page
 * that cannot split stops indexing) or share a tag; two names with one tag are taken as the
 * same name by the name table (the later replaces the earlier; the earlier's object then gets
 * a new id on its next lookup: at 10^7 names the chance of any such pair is about 10^-5).
 * An inode's tag hashes (dev, ino); entries are checked against the record, so tags may clash.
 */

export type Tag = [hi: number, lo: number];

export function idTag(id: number): Tag {
  return [Math.floor(id / 0x100000000), id >>> 0];
}

function fmix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function nonzero(t: Tag): Tag {
  if (t[0] === 0 && t[1] === 0) t[1] = 1;
  return t;
}

/** Seeds of a store: four u32s of its key. */
export function seedsOf(key: Buffer): Uint32Array {
  return new Uint32Array([key.readUInt32LE(0), key.readUInt32LE(4), key.readUInt32LE(8), key.readUInt32LE(12)]);
}

/** Two 32-bit lanes (multiply-xor, as FNV and murmur), crossed and finalized. */
export function nameTag(seed: Uint32Array, parent: number, name: string): Tag {
  let a = Math.imul(seed[0]! ^ (parent >>> 0), 0xcc9e2d51);
  let b = Math.imul(seed[1]! ^ Math.floor(parent / 0x100000000), 0x1b873593);
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul((b ^ c) + (b >>> 15), 0x5bd1e995);
  }
  a = fmix((a ^ name.length ^ seed[2]!) >>> 0);
  b = fmix((b + a + seed[3]!) >>> 0);
  return nonzero([a, b]);
}

export function inoTag(seed: Uint32Array, dev: bigint, ino: bigint): Tag {
  const w = [Number(dev & 0xffffffffn), Number((dev >> 32n) & 0xffffffffn), Number(ino & 0xffffffffn), Number((ino >> 32n) & 0xffffffffn)];
  let a = seed[2]!, b = seed[3]!;
  for (const x of w) {
    a = Math.imul(a ^ x, 0xcc9e2d51);
    b = Math.imul((b ^ x) + (b >>> 15), 0x1b873593);
  }
  a = fmix(a >>> 0);
  b = fmix((b + a) >>> 0);
  return nonzero([a, b]);
}
