/**
 * The identity log: every record change since the last checkpoint, appended before the reply
 * that depends on it.
 *
 * Rule: records are written with write(2) when the union flushes (a SIGKILL loses nothing
 * flushed); fdatasync is batched, at most 100 ms later, on the thread pool (COMMIT waits for
 * one, sync()). A checkpoint rotates the log: identity.log becomes identity.log.old, which is
 * kept (and fdatasynced) until the manifest that covers it is durable, and a fresh
 * identity.log takes the records from then on.
 * Layout: "UNFSID1\n", then frames (record.ts). Reading stops at the first short or
 * CRC-failing frame; what follows is reported as damage.
 */
import * as fs from 'node:fs';
import { child } from '../../log.js';
import { fsyncDir } from '../../durable.js';
import { decode, frame, unframe, type Decoded } from './record.js';

const log = child('vfs');
export const LOG_MAGIC = Buffer.from('UNFSID1\n');

export interface LogContent {
  entries: Decoded[];
  /** Bytes after the first bad frame (0 when the log was whole). */
  damaged: number;
  badHeader: boolean;
}

/** The records of a log file, or undefined when there is none. */
export function readLog(path: string): LogContent | undefined {
  let buf: Buffer;
  try { buf = fs.readFileSync(path); } catch { return undefined; }
  if (buf.length < LOG_MAGIC.length || !buf.subarray(0, LOG_MAGIC.length).equals(LOG_MAGIC)) return { entries: [], damaged: buf.length, badHeader: true };
  const entries: Decoded[] = [];
  let off = LOG_MAGIC.length;
  while (off < buf.length) {
    const payload = unframe(buf, off);
    if (payload === undefined) break;
    try { entries.push(decode(payload)); } catch { break; }
    off += 8 + payload.length;
  }
  return { entries, damaged: buf.length - off, badHeader: false };
}

export class IdentityLog {
  private fd: number;
  private pending: Buffer[] = [];
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;
  /** fdatasyncs in flight (close waits for them before closing the fd). */
  private readonly syncing = new Set<Promise<void>>();
  /** The rotated log while its checkpoint runs: its fd and its fdatasync. */
  private old: { fd: number; synced: Promise<void> } | undefined;

  constructor(private readonly path: string, private readonly dir: string) {
    this.fd = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_APPEND);
  }

  get oldPath(): string {
    return this.path + '.old';
  }

  /** Append a framed record (record.ts frame). */
  append(framed: Buffer): void {
    this.pending.push(framed);
    if (this.pending.length >= 256) this.flush();
  }

  /** Write buffered records (write(2): survives a process kill). */
  flush(): void {
    if (this.pending.length === 0) return;
    const b = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    this.pending = [];
    fs.writeSync(this.fd, b);
    if (!this.dirty) {
      this.dirty = true;
      this.timer = setTimeout(() => void this.sync(), 100);
      this.timer.unref();
    }
  }

  /** Append and make durable before returning (the RESERVE records of id blocks). */
  appendDurable(payload: Buffer): void {
    this.flush();
    fs.writeSync(this.fd, frame(payload));
    fs.fsyncSync(this.fd);
  }

  /**
   * Make every record written so far durable, the rotated log's included. A failure is
   * logged, not thrown (the records stay in the page cache; the next sync retries).
   */
  async sync(): Promise<void> {
    this.flush();
    const old = this.old?.synced;
    if (this.dirty) {
      this.dirty = false;
      if (this.timer) clearTimeout(this.timer);
      const p = fdatasync(this.fd).then((ok) => { if (!ok) this.dirty = true; });
      this.syncing.add(p);
      try { await p; } finally { this.syncing.delete(p); }
    }
    await old;
  }

  /**
   * Start a checkpoint: this log becomes identity.log.old and a fresh one, opened by
   * `first` (the RESERVE of the ids handed out), takes the records from now on.
   */
  rotate(first: Buffer): void {
    if (this.old !== undefined) throw new Error('identity log: rotated twice');
    this.flush();
    fs.renameSync(this.path, this.oldPath);
    const fd = fs.openSync(this.path, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
    fs.writeSync(fd, Buffer.concat([LOG_MAGIC, frame(first)]));
    const oldFd = this.fd;
    this.fd = fd;
    this.dirty = true;
    const synced = Promise.all([...this.syncing]).then(() => fdatasync(oldFd)).then(() => undefined);
    this.old = { fd: oldFd, synced };
    void this.sync();
  }

  /** The checkpoint is durable: the rotated log goes. */
  async dropOld(): Promise<void> {
    const old = this.old;
    if (old === undefined) return;
    await old.synced;
    fs.closeSync(old.fd);
    this.old = undefined;
    fs.unlinkSync(this.oldPath);
    fsyncDir(this.dir);
  }

  /**
   * The checkpoint failed: what the rotated log held that is still needed (`keep`) goes into
   * this log, durably, and the rotated one goes.
   */
  async foldOld(keep: Buffer[]): Promise<void> {
    for (const k of keep) this.append(frame(k));
    this.flush();
    this.dirty = true;
    await this.sync();
    await this.dropOld();
  }

  async close(): Promise<void> {
    await this.sync();
    await Promise.all([...this.syncing]);
    fs.closeSync(this.fd);
  }
}

/** fdatasync on the thread pool; false (logged) when it failed. */
export function fdatasync(fd: number): Promise<boolean> {
  return new Promise((resolve) => fs.fdatasync(fd, (e) => {
    if (e) log.error('identity store: fdatasync failed', { code: e.code });
    resolve(!e);
  }));
}
