/**
 * Special files the union makes (in its workdir, then renamed into place): FIFOs, sockets and
 * device nodes, for a client's MKNOD and for a copy-up of a lower one, overlayfs whiteouts
 * (character device 0/0), and extended attributes (overlayfs opaque marks); the image unpacker
 * makes an image's with the same calls.
 *
 * How: with the syscalls addon (syscalls.ts), mknod(2) and lsetxattr(2), in-process. Without
 * it, the mknod, mkfifo and setfattr tools, a child process per file (a failure's kind read from
 * the tool's message: "No space" is ENOSPC, anything else EIO), and a socket made by listening
 * on the path, which fails (EOPNOTSUPP) where libuv unlinks the socket file on close.
 * Example: makeNode(tmp, CHR, 0, 0) is an overlayfs whiteout.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { spawnSync } from 'node:child_process';
import { FsError } from '../errors/fs-error.js';
import { child } from '../log.js';
import { FileType } from './types.js';
import { sys } from './syscalls.js';

const log = child('vfs');

/** Linux's device numbers: a 12-bit major and a 20-bit minor (MINORBITS). */
const MAX_MAJOR = 0xfff, MAX_MINOR = 0xfffff;

const TYPE_BITS: Partial<Record<FileType, number>> = {
  [FileType.FIFO]: fs.constants.S_IFIFO, [FileType.SOCK]: fs.constants.S_IFSOCK,
  [FileType.CHR]: fs.constants.S_IFCHR, [FileType.BLK]: fs.constants.S_IFBLK,
};

/**
 * A FIFO, socket or device node at p, mode 0600 (the caller sets owner and mode). Device
 * numbers Linux cannot hold are EINVAL, as knfsd answers.
 */
export async function makeNode(p: Buffer, type: FileType, major: number, minor: number): Promise<void> {
  const bits = TYPE_BITS[type];
  if (bits === undefined) throw new FsError('EINVAL');
  if (major > MAX_MAJOR || minor > MAX_MINOR) throw new FsError('EINVAL', `device number ${major}:${minor} out of range`);
  if (sys !== undefined) {
    sys.mknod(p, bits | 0o600, major, minor);
  } else if (type === FileType.SOCK) {
    await listenSocket(p);
  } else if (type === FileType.FIFO) {
    runTool('mkfifo', ['-m', '600', utf8Path(p)]);
  } else {
    runTool('mknod', ['-m', '600', utf8Path(p), type === FileType.CHR ? 'c' : 'b', String(major), String(minor)]);
  }
}

/** The (major, minor) of an st_rdev as Linux encodes it. */
export function devNumbers(rdev: number): [major: number, minor: number] {
  return [(rdev >> 8) & 0xfff, (rdev & 0xff) | ((rdev >> 12) & 0xfff00)];
}

/** An overlayfs whiteout (character device 0/0) at p. */
export function makeWhiteoutDev(p: Buffer): void {
  if (sys !== undefined) sys.mknod(p, fs.constants.S_IFCHR, 0, 0);
  else runTool('mknod', [utf8Path(p), 'c', '0', '0']);
}

/** overlayfs's opaque mark (trusted.overlay.opaque = "y") on the directory at p. */
export function markOpaqueXattr(p: Buffer): void {
  setXattr(p, 'trusted.overlay.opaque', Buffer.from('y'));
}

/** An extended attribute of p itself (a symlink's own, never its target's). */
export function setXattr(p: Buffer, name: string, value: Buffer): void {
  if (sys !== undefined) sys.lset(p, name, value);
  else runTool('setfattr', ['-h', '-n', name, '-v', `0s${value.toString('base64')}`, utf8Path(p)]);
}

/** A socket file: made by listening on the path (closing it does not unlink it, mostly). */
function listenSocket(p: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(utf8Path(p), () => s.close(() => (fs.existsSync(p) ? resolve() : reject(new FsError('EOPNOTSUPP')))));
  });
}

/** The path for a tool's argv: names that are not UTF-8 cannot pass through it (EINVAL). */
function utf8Path(p: Buffer): string {
  const s = p.toString('utf8');
  if (!Buffer.from(s, 'utf8').equals(p)) throw new FsError('EINVAL', 'non-UTF-8 path for a tool');
  return s;
}

function runTool(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) {
    const msg = r.stderr?.toString() ?? String(r.error);
    log.error(`${cmd} failed`, { args, msg });
    throw Object.assign(new Error(`${cmd} failed: ${msg}`), { code: /No space/.test(msg) ? 'ENOSPC' : 'EIO' });
  }
}
