/**
 * Writing small state files so that a crash leaves the old content or the new, never a mix.
 *
 * Rule: a temporary of the writer's own (two writers never share one), fsync, rename over the
 * name, fsync of the directory (the rename itself must survive a power loss). A failure
 * removes the temporary.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';

/** Replaces `p` with `data`, durably (on the event loop: for files of a few KiB). */
export function writeFileDurable(p: string, data: Buffer, mode: number): void {
  const tmp = `${p}.${randomBytes(4).toString('hex')}.new`;
  try {
    const fd = fs.openSync(tmp, 'w', mode);
    try {
      fs.writeSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, p);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(path.dirname(p));
}

/** writeFileDurable with the writes and fsyncs on the thread pool (for larger files). */
export async function writeFileDurableAsync(p: string, data: Buffer, mode: number): Promise<void> {
  const tmp = `${p}.${randomBytes(4).toString('hex')}.new`;
  try {
    const fh = await fs.promises.open(tmp, 'w', mode);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.promises.rename(tmp, p);
  } catch (e) {
    await fs.promises.rm(tmp, { force: true });
    throw e;
  }
  const dir = await fs.promises.open(path.dirname(p), 'r');
  try { await dir.sync(); } finally { await dir.close(); }
}

export function fsyncDir(d: string): void {
  const fd = fs.openSync(d, 'r');
  try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
}
