/**
 * link-index: copied-up lower hard links (overlayfs index=on, its `index/` directory).
 *
 * Rule: a copy-up of a lower non-directory with st_nlink > 1 also links the copy at
 * <workdir>/union-nfsd/index/<lower dev>.<lower ino> (enter), so every name of that lower
 * inode, upper or lower-only, seen before or not, resolves to the one copy (find). Its link
 * count is the union's: the lower nlink at copy-up, +1 per LINK, -1 per name removed or
 * renamed over, kept as an offset from the index inode's st_nlink in `<entry>.n` (decimal),
 * next to the entry (setOff). The entry goes with the last name (settle).
 * Example: lower a, b (one inode, nlink 2), WRITE a -> upper a, index/2049.77 (same inode,
 * nlink 2, offset 0): the union counts 2; b resolves to the copy.
 * Races: an entry is made before the copy is renamed into place, so a crash between the two
 * leaves an entry no name uses yet, which the next copy-up of the inode replaces; the offset
 * file is replaced whole (a rename). Callers commit INDEX_MARK (metadata-sync.ts) with their
 * change.
 */
import * as fs from 'node:fs';
import type { Node } from './node.js';
import { FileType } from './types.js';
import { pathBuf } from './names.js';
import { lstatQuiet, single, type Found } from './namei.js';
import type { LStat } from './lstat.js';
import type { Key } from './store/index.js';

export class LinkIndex {
  /**
   * dir: the index directory (binary string), '' without an upper layer (no index). The host
   * names temporaries, commits the index with the change that made it (INDEX_MARK) and closes
   * the cached fds of an object whose entry goes.
   */
  constructor(readonly dir: string, private readonly host: { tmpName(): string; changed(): void; gone(n: Node): void }) {}

  get enabled(): boolean {
    return this.dir !== '';
  }

  /** The entry of the lower inode dev.ino. */
  path(dev: bigint, ino: bigint): Buffer {
    return pathBuf(`${this.dir}/${dev}.${ino}`);
  }

  /** A lower non-directory with more than one link that was copied up: its upper copy. */
  find(found: Found): Found | null {
    if (!this.enabled || found.layer === 0 || found.type === FileType.DIR || found.st.nlink < 2n) return null;
    const ist = lstatQuiet(this.path(found.st.dev, found.st.ino));
    if (ist === undefined) return null;
    return { type: found.type, layer: 0, st: ist, stack: single(0) };
  }

  /** The entry an upper object (lstat st) whose origin is the lower `origin` lives at, if it does. */
  entryOf(origin: Key, st: LStat): { index: Buffer; nlinkOff: number } | undefined {
    if (!this.enabled || origin.layer === 0) return undefined;
    const ip = this.path(origin.dev, origin.ino);
    const ist = lstatQuiet(ip);
    if (ist === undefined || ist.ino !== st.ino || ist.dev !== st.dev) return undefined;
    return { index: ip, nlinkOff: readOff(ip) };
  }

  /**
   * Index the copy `tmp` of the lower inode `lower` (nlink > 1) before it is renamed into
   * place: the union count stays the lower one (index + upper name = 2 links now).
   */
  enter(tmp: Buffer, lower: LStat): { index: Buffer; nlinkOff: number } {
    const ip = this.path(lower.dev, lower.ino);
    const off = Number(lower.nlink) - 2;
    this.writeOff(ip, off);
    fs.linkSync(tmp, ip);
    return { index: ip, nlinkOff: off };
  }

  /** An entry made for a copy-up that failed. */
  discard(ip: Buffer): void {
    fs.rmSync(ip, { force: true });
    fs.rmSync(offPath(ip), { force: true });
  }

  /**
   * Set the union link count of an indexed object to its index inode's st_nlink + off (a
   * lower-only name whited out: one less; a lower-only name given an upper link: one less).
   */
  setOff(n: Node, off: number): void {
    if (n.index === undefined) return;
    n.nlinkOff = off;
    this.writeOff(n.index, off);
    this.host.changed();
    n.attr = null;
  }

  /** The union link count of an indexed object: drops the entry when it reaches 0. */
  settle(n: Node): void {
    if (n.index === undefined) return;
    const ist = lstatQuiet(n.index);
    if (ist === undefined || Number(ist.nlink) + (n.nlinkOff ?? 0) > 0) return;
    this.host.gone(n);
    this.discard(n.index);
    this.host.changed();
  }

  private writeOff(ip: Buffer, off: number): void {
    const tmp = pathBuf(this.host.tmpName());
    fs.writeFileSync(tmp, String(off));
    fs.renameSync(tmp, offPath(ip));
  }
}

function offPath(ip: Buffer): Buffer {
  return Buffer.concat([ip, Buffer.from('.n')]);
}

function readOff(ip: Buffer): number {
  try {
    const v = Number.parseInt(fs.readFileSync(offPath(ip), 'latin1'), 10);
    return Number.isFinite(v) ? v : 0;
  } catch {
    return 0;
  }
}
