/**
 * The persistent identity store: id -> (type, backing key, origin key, names), for every
 * object a client has reached, with a resident cost that does not grow with their number.
 *
 * Rule: a change is appended to the log (log.ts) before the reply that depends on it, and
 * kept in memory ("dirty") until a checkpoint has written it to the heap (heap.ts) and the
 * three on-disk tables (bucket-table.ts): id -> heap offset, (parent, name) -> id and
 * (dev, ino) of a non-directory's key and origin -> id. Reads look in memory first, then on
 * disk (pread, so the records' pages stay in the kernel's page cache, not in this process),
 * and keep what they read as a bounded cache ("clean", dropped oldest first). A checkpoint
 * starts when a quarter of the resident bound is dirty: the log rotates, the dirty records are
 * applied a chunk per event-loop turn, the files are fdatasynced, the manifest is replaced
 * (manifest.ts) and the rotated log removed. Opening reads the manifest and replays at most
 * two logs' worth of records, whatever the store's size.
 * Ids come from a counter whose blocks are reserved with an fsynced RESERVE record before any
 * id of the block is handed out, so an id is never reused, even after a crash. Root is id 1
 * and has no record.
 * Why our own format and not an embedded database: the store's reads must not count in the
 * server's memory (an mmap'ed B-tree such as LMDB puts every page it touches in the process's
 * RSS) and it needs no native code; the format is a log, a heap and a hash table.
 *
 * Layout of <state>/ (mode 0700):
 *   key               32 random bytes, the handle HMAC key (0600), written tmp+fsync+rename
 *   identity.log      changes since the last checkpoint (log.ts); .old while one runs
 *   identity.heap     records (heap.ts)
 *   identity.ids, identity.names, identity.inodes   tables (bucket-table.ts)
 *   identity.manifest the last checkpoint (manifest.ts)
 * A missing log with a present key rotates the key (and drops the rest): old handles then
 * fail their HMAC instead of naming new objects. So does a damaged manifest. Damage inside a
 * log keeps what comes before it and moves the counter 2^32 ids forward, clear of anything
 * the lost records could have handed out.
 * Example: lookup of lower /a/f -> PUT{id 7, REG, key 2:2049:1234, origin same, names [(1,'a')]}
 * Races: the store runs on the event loop; a checkpoint's chunks interleave with calls, which
 * is safe because every record it is writing stays dirty (read from memory) until it ends.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { child } from '../../log.js';
import { fsyncDir, writeFileDurable, writeFileDurableAsync } from '../../durable.js';
import { FileType } from '../types.js';
import { encodeDel, encodePut, encodeReserve, frame, framedPut, Packed, type IdRecord, type Key } from './record.js';
import { fdatasync, IdentityLog, LOG_MAGIC, readLog } from './log.js';
import { Heap } from './heap.js';
import { BucketTable } from './bucket-table.js';
import { encodeManifest, readManifest, type Manifest } from './manifest.js';
import { idTag, inoTag, nameTag, seedsOf } from './tags.js';

export { keyEq, type IdRecord, type Key, type NameRef } from './record.js';

const log = child('vfs');
const BLOCK = 4096;
/**
 * The bound of records in memory, dirty and clean together: clean records fill what the
 * dirty ones leave (a directory of 100k entries listed again stays in memory), and are
 * dropped oldest first when new ones come. A checkpoint starts at a quarter dirty and writes
 * at least twice as fast as records change, so the dirty ones stay near a quarter plus what
 * changes while a checkpoint fsyncs.
 */
export const RESIDENT_RECORDS = 131_072;
/**
 * Dirty records a checkpoint writes per event-loop turn, at least (about 0.5 ms of work: a
 * call that arrives meanwhile waits no longer than that; more when records change faster).
 */
const CHUNK = 256;
/** Pages each table keeps in memory (4 KiB each): 7 MiB; ids are sequential and need few. */
const CACHE_PAGES = { ids: 256, names: 1024, inodes: 512 } as const;
const TABLES = ['ids', 'names', 'inodes'] as const;

export class IdentityStore {
  hmacKey!: Buffer;
  /** Records in memory: dirty (not yet checkpointed) and clean; null: deleted, not yet checkpointed. */
  private readonly resident = new Map<number, Packed | null>();
  private readonly dirty = new Set<number>();
  /**
   * parent -> name -> id over resident records. Names are the records' own strings, so an
   * index entry costs about 100 B less than a string key like `${parent}/${name}`.
   */
  private readonly byName = new Map<number, Map<string, number>>();
  /**
   * ino of a resident key or origin -> id(s). Only hard links need it (idByKey), so it is
   * built on the first such question and kept up to date from then on.
   */
  private byIno: Map<bigint, number | number[]> | null = null;
  private next = 2;
  private limit = 2;
  private seed!: Uint32Array;
  private wal!: IdentityLog;
  private heap!: Heap;
  private tables!: Record<(typeof TABLES)[number], BucketTable>;
  private fds: number[] = [];
  /** Live ids in the id table. */
  private onDisk = 0;
  /**
   * Ids below `openLimit` (the manifest's) or up to `appliedMax` (this run's checkpoints) may
   * have a record on disk; a newer one has none, so applying it needs no read of the old.
   */
  private openLimit = 0;
  private appliedMax = 0;
  private checkpointing: Promise<void> | undefined;
  /** After a failed checkpoint (a full disk), none starts by itself before this time (ms). */
  private retryAt = 0;
  private fullWarned = false;
  private readonly checkpointAt: number;
  /** Changes made (put, del): a checkpoint's chunks keep pace with them. */
  private changes = 0;

  constructor(readonly dir: string, private readonly residentMax = RESIDENT_RECORDS) {
    this.checkpointAt = Math.max(1, residentMax >> 2);
  }

  /** Records known: on disk at the last checkpoint plus those changed since (an upper bound). */
  get size(): number {
    return this.onDisk + this.dirty.size;
  }

  /** Records held in memory (dirty and clean). */
  get residentSize(): number {
    return this.resident.size;
  }

  private file(name: string): string {
    return path.join(this.dir, name);
  }

  open(): void {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const logPath = this.file('identity.log');
    const keyPath = this.file('key');
    const haveLog = fs.existsSync(logPath) || fs.existsSync(logPath + '.old');
    let key: Buffer | undefined;
    try { key = fs.readFileSync(keyPath); } catch { /* created below */ }
    let manifest: Manifest | undefined;
    let fresh = key === undefined || key.length !== 32 || !haveLog;
    if (!fresh) {
      try {
        manifest = readManifest(this.file('identity.manifest'));
      } catch (e) {
        log.error(`${(e as Error).message}: starting empty with a new handle key, old handles become stale`);
        fresh = true;
      }
    }
    if (fresh) {
      if (key !== undefined && !haveLog) log.warn('identity log missing: rotating handle key, old handles become stale');
      key = randomBytes(32);
      writeFileDurable(keyPath, key, 0o600);
      for (const f of ['identity.log', 'identity.log.old', 'identity.manifest']) fs.rmSync(this.file(f), { force: true });
    }
    this.hmacKey = key!;
    this.seed = seedsOf(this.hmacKey);
    if (manifest === undefined) {
      // Without a manifest the heap and tables name nothing: start them afresh.
      for (const f of ['identity.heap', ...TABLES.map((t) => `identity.${t}`)]) fs.rmSync(this.file(f), { force: true });
    } else {
      this.onDisk = manifest.records;
      this.limit = this.next = Math.max(2, manifest.limit);
      this.openLimit = this.limit;
    }
    const open = (name: string): number => {
      const fd = fs.openSync(this.file(name), fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
      this.fds.push(fd);
      return fd;
    };
    this.heap = new Heap(open('identity.heap'));
    this.tables = {
      ids: new BucketTable(open('identity.ids'), manifest?.tables[0], CACHE_PAGES.ids),
      names: new BucketTable(open('identity.names'), manifest?.tables[1], CACHE_PAGES.names),
      inodes: new BucketTable(open('identity.inodes'), manifest?.tables[2], CACHE_PAGES.inodes),
    };
    this.replay([logPath + '.old', logPath]);
    this.compact(logPath);
    this.wal = new IdentityLog(logPath, this.dir);
    this.maybeCheckpoint();
  }

  /** The logs' records back into memory, as dirty: what the manifest may not cover. */
  private replay(paths: string[]): void {
    let maxId = 1;
    let damaged = false;
    for (const p of paths) {
      const c = readLog(p);
      if (c === undefined) continue;
      if (c.badHeader) {
        log.error('identity log has a bad header: its records are lost, old handles may become stale', { path: p });
      }
      for (const e of c.entries) {
        if (e.kind === 1) { this.setResident(e.id, e.rec); this.dirty.add(e.id); maxId = Math.max(maxId, e.id); }
        else if (e.kind === 2) { this.setResident(e.id, null); this.dirty.add(e.id); maxId = Math.max(maxId, e.id); }
        else this.limit = Math.max(this.limit, e.limit);
      }
      if (c.damaged > 0) {
        log.warn('identity log: damaged record ignored', { path: p, bytesIgnored: c.damaged });
        damaged = true;
      }
    }
    this.next = Math.max(this.limit, maxId + 1);
    // Damage could have eaten RESERVE records: move far past anything handed out.
    if (damaged) this.next += 2 ** 32;
    this.limit = this.next;
  }

  /** One log with what memory holds and a fresh reservation; the rotated one goes. */
  private compact(logPath: string): void {
    const parts: Buffer[] = [LOG_MAGIC];
    const frames: Buffer[] = [];
    for (const id of this.dirty) {
      const p = this.resident.get(id);
      frames.push(p === null || p === undefined ? encodeDel(id) : encodePut(id, p));
    }
    this.limit = this.next + BLOCK;
    frames.push(encodeReserve(this.limit));
    for (const f of frames) parts.push(frame(f));
    writeFileDurable(logPath, Buffer.concat(parts), 0o600);
    fs.rmSync(logPath + '.old', { force: true });
    fsyncDir(this.dir);
  }

  /** A new id, never handed out before. */
  alloc(): number {
    if (this.next >= this.limit) {
      this.limit = this.next + BLOCK;
      this.wal.appendDurable(encodeReserve(this.limit));
    }
    return this.next++;
  }

  /** The record of id (a fresh object: changing it changes nothing until put). */
  get(id: number): IdRecord | undefined {
    return this.packed(id)?.record(id);
  }

  /** The id recorded under (parent, name). */
  idByName(parent: number, name: string): number | undefined {
    const id = this.byName.get(parent)?.get(name);
    if (id !== undefined) return id;
    const [hi, lo] = nameTag(this.seed, parent, name);
    for (const v of this.tables.names.find(hi, lo)) {
      if (this.packed(v)?.hasName(parent, name) === true) return v;
    }
    return undefined;
  }

  /** The id whose key or origin is k. */
  idByKey(k: Key): number | undefined {
    const v = this.inoIndex().get(k.ino);
    if (v !== undefined) {
      for (const id of typeof v === 'number' ? [v] : v) {
        if (this.resident.get(id)?.has(k) === true) return id;
      }
    }
    const [hi, lo] = inoTag(this.seed, k.dev, k.ino);
    for (const id of this.tables.inodes.find(hi, lo)) {
      if (this.packed(id)?.has(k) === true) return id;
    }
    return undefined;
  }

  put(rec: IdRecord): void {
    const p = Packed.of(rec);
    this.setResident(rec.id, p);
    this.dirty.add(rec.id);
    p.framed = framedPut(rec.id, p);
    this.wal.append(p.framed);
    this.changes++;
    this.evictClean();
    this.maybeCheckpoint();
  }

  del(id: number): void {
    if (this.packed(id) === undefined) return;
    this.setResident(id, null);
    this.dirty.add(id);
    this.wal.append(frame(encodeDel(id)));
    this.changes++;
    this.maybeCheckpoint();
  }

  /** Write buffered log records (write(2): survives a process kill). */
  flush(): void {
    this.wal.flush();
  }

  /** Make every record written so far durable (fdatasync on the thread pool). */
  sync(): Promise<void> {
    return this.wal.sync();
  }

  /** Wait for a checkpoint in flight; `all`: then checkpoint whatever is dirty. */
  async checkpoint(all = true): Promise<void> {
    await this.checkpointing;
    if (all && this.dirty.size > 0) await this.startCheckpoint();
  }

  async close(): Promise<void> {
    if (this.fds.length === 0) return;
    await this.checkpoint(true);
    await this.wal.close();
    for (const fd of this.fds) fs.closeSync(fd);
    this.fds = [];
  }

  // ---- memory ----------------------------------------------------------------------------

  /** The record of id: from memory, else from disk (then kept, clean). */
  private packed(id: number): Packed | undefined {
    const r = this.resident.get(id);
    if (r !== undefined) return r ?? undefined;
    const p = this.readDisk(id);
    if (p !== undefined) {
      this.setResident(id, p);
      this.evictClean();
    }
    return p;
  }

  private readDisk(id: number): Packed | undefined {
    const [hi, lo] = idTag(id);
    const off = this.tables.ids.find(hi, lo)[0];
    return off === undefined ? undefined : this.heap.read(off, id);
  }

  private setResident(id: number, p: Packed | null): void {
    const old = this.resident.get(id);
    if (old) this.unindex(id, old);
    this.resident.delete(id);
    this.resident.set(id, p);
    if (p === null) return;
    for (const n of p.names()) {
      let m = this.byName.get(n.parent);
      if (m === undefined) this.byName.set(n.parent, m = new Map());
      m.set(n.name, id);
    }
    if (this.byIno !== null) inoIndexAdd(this.byIno, id, p);
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

  private inoIndex(): Map<bigint, number | number[]> {
    if (this.byIno === null) {
      const m = new Map<bigint, number | number[]>();
      for (const [id, p] of this.resident) if (p) inoIndexAdd(m, id, p);
      this.byIno = m;
    }
    return this.byIno;
  }

  /** Keep the records within the bound: drop the oldest clean ones (they are on disk). */
  private evictClean(): void {
    const over = this.resident.size - this.residentMax;
    if (over <= 0) return;
    // a sixteenth more, so that this scan runs once per so many records, not for each
    let excess = over + (this.residentMax >> 4);
    for (const [id, p] of this.resident) {
      if (excess <= 0) break;
      if (this.dirty.has(id)) continue;
      if (p) this.unindex(id, p);
      this.resident.delete(id);
      excess--;
    }
  }

  // ---- checkpoints -----------------------------------------------------------------------

  private maybeCheckpoint(): void {
    if (this.checkpointing === undefined && this.dirty.size >= this.checkpointAt && this.wal !== undefined && Date.now() >= this.retryAt) {
      void this.startCheckpoint();
    }
  }

  private startCheckpoint(): Promise<void> {
    const p = this.runCheckpoint()
      .catch((e: Error) => { log.error('identity store: checkpoint failed', { error: e.message }); })
      .finally(() => { this.checkpointing = undefined; });
    this.checkpointing = p;
    return p;
  }

  private async runCheckpoint(): Promise<void> {
    const snap: [number, Packed | null][] = [];
    for (const id of this.dirty) snap.push([id, this.resident.get(id) ?? null]);
    this.wal.rotate(encodeReserve(this.limit));
    try {
      let seen = this.changes;
      for (let i = 0; i < snap.length;) {
        // never inside the call that started the checkpoint, and a turn for calls between chunks
        await new Promise<void>((resolve) => setImmediate(resolve));
        const n = Math.max(CHUNK, 2 * (this.changes - seen));
        seen = this.changes;
        for (const end = Math.min(snap.length, i + n); i < end; i++) this.apply(...snap[i]!);
        // changed table pages stay in the tables' caches until the end (a read finds them
        // there; one evicted meanwhile is written then)
        this.heap.flush();
      }
      this.writeOut();
      const synced = await Promise.all(this.fds.map((fd) => fdatasync(fd)));
      if (synced.includes(false)) throw new Error('identity store: fdatasync failed');
      const states = [this.tables.ids.state(), this.tables.names.state(), this.tables.inodes.state()] as Manifest['tables'];
      await writeFileDurableAsync(this.file('identity.manifest'), encodeManifest({ limit: this.limit, records: this.onDisk, tables: states }), 0o600);
      TABLES.forEach((t, i) => this.tables[t].durable(states[i]!));
      await this.wal.dropOld();
    } catch (e) {
      log.error('identity store: checkpoint failed; its records stay in the log, the next try in 10 s', { error: (e as Error).message });
      this.retryAt = Date.now() + 10_000;
      const keep: Buffer[] = [];
      for (const [id] of snap) {
        const p = this.resident.get(id);
        keep.push(p === null || p === undefined ? encodeDel(id) : encodePut(id, p));
      }
      await this.wal.foldOld(keep);
      return;
    }
    for (const [id, p] of snap) {
      if (this.resident.get(id) !== p) continue;
      this.dirty.delete(id);
      if (p === null) this.resident.delete(id);
    }
    this.evictClean();
  }

  private writeOut(): void {
    this.heap.flush();
    for (const t of TABLES) this.tables[t].flush();
  }

  /** One record's latest state onto the heap and tables (null: deleted). */
  private apply(id: number, p: Packed | null): void {
    const [hi, lo] = idTag(id);
    const ids = this.tables.ids;
    const off = id < this.openLimit || id <= this.appliedMax ? ids.find(hi, lo)[0] : undefined;
    const old = off === undefined ? undefined : this.heap.read(off, id);
    if (id > this.appliedMax) this.appliedMax = id;
    if (p === null) {
      if (ids.remove(hi, lo)) this.onDisk--;
    } else {
      const r = ids.put(hi, lo, this.heap.append(p.framed ?? framedPut(id, p)), true);
      p.framed = undefined;
      if (r === 'inserted') this.onDisk++;
      this.indexed(r);
    }
    if (old !== undefined) {
      for (const n of old.names()) {
        if (p?.hasName(n.parent, n.name) === true) continue;
        const [nh, nl] = nameTag(this.seed, n.parent, n.name);
        this.tables.names.remove(nh, nl, id);
      }
      for (const [dev, ino] of inodesOf(old)) {
        if (p !== null && inodesOf(p).some(([d, i]) => d === dev && i === ino)) continue;
        const [ih, il] = inoTag(this.seed, dev, ino);
        this.tables.inodes.remove(ih, il, id);
      }
    }
    if (p === null) return;
    for (const n of p.names()) {
      const [nh, nl] = nameTag(this.seed, n.parent, n.name);
      this.indexed(this.tables.names.put(nh, nl, id, true));
    }
    for (const [dev, ino] of inodesOf(p)) {
      const [ih, il] = inoTag(this.seed, dev, ino);
      this.indexed(this.tables.inodes.put(ih, il, id, false));
    }
  }

  private indexed(r: string): void {
    if (r !== 'full' || this.fullWarned) return;
    this.fullWarned = true;
    log.error('identity store: an index page cannot split further (skewed tags); some objects will get new ids after a restart');
  }
}

/** The (dev, ino) pairs the inode table holds for a record: non-directories' key and origin. */
function inodesOf(p: Packed): [bigint, bigint][] {
  if (p.type === FileType.DIR) return [];
  return p.sameOrigin() ? [[p.kDev, p.kIno]] : [[p.kDev, p.kIno], [p.oDev, p.oIno]];
}

function inoIndexAdd(m: Map<bigint, number | number[]>, id: number, p: Packed): void {
  inoAdd(m, p.kIno, id);
  if (p.oIno !== p.kIno) inoAdd(m, p.oIno, id);
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
