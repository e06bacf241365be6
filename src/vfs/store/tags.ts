/**
 * Tags of the identity tables (bucket-table.ts): 64 bits as (hi, lo) u32s, never (0, 0).
 *
 * Rule: an id's tag is the id with its low 32 bits rotated right by RUN_BITS, and an inode's
 * tag keeps its low 32 bits so rotated: a table picks pages by a tag's low bits, so 128 ids
 * handed out one after the other (or a directory's inodes, mostly allocated together) go to
 * one page, and a checkpoint sweeps pages in order instead of touching every page for every
 * few records. A name's tag is a hash of (parent, name) seeded from the store's secret key,
 * so a client cannot choose names that all land in one page (a page
 * that cannot split stops indexing) or share a tag; two names with one tag are taken as the
 * same name by the name table (the later replaces the earlier; the earlier's object then gets
 * a new id on its next lookup: at 10^7 names the chance of any such pair is about 10^-5).
 * An inode's tag hashes (dev, high bits of ino) into its high word; entries are checked
 * against the record, so tags may clash.
 */

export type Tag = [hi: number, lo: number];

/** log2 of the run of consecutive ids (or inodes) that share a page: half a page's slots. */
const RUN_BITS = 7;

export function idTag(id: number): Tag {
  return [Math.floor(id / 0x100000000), rotr(id >>> 0)];
}

function rotr(x: number): number {
  return ((x >>> RUN_BITS) | (x << (32 - RUN_BITS))) >>> 0;
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
  let a = Math.imul(seed[2]! ^ Number(dev & 0xffffffffn), 0xcc9e2d51);
  a = Math.imul(a ^ Number((dev >> 32n) & 0xffffffffn), 0x1b873593);
  a = Math.imul(a ^ Number((ino >> 32n) & 0xffffffffn), 0xcc9e2d51);
  return nonzero([fmix((a ^ seed[3]!) >>> 0), rotr(Number(ino & 0xffffffffn))]);
}
