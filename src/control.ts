/**
 * The control socket (--control PATH): how an operator's command reaches the running server.
 * A Unix socket, mode 0600 (root, or whoever runs the server), one request per connection,
 * one JSON line each way:
 *
 *   {"op":"reset","export":"/fleet","client":"node7"}  ->  {"ok":true}
 *                                                          {"ok":false,"error":"..."}
 *
 * `union-nfsd --control PATH --export /fleet --reset-client node7` sends the reset; the server
 * discards that client's union (export-set.ts) while it goes on serving every other one.
 * Requests are bounded (4 KiB) and time out after 30 s of silence.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { child } from './log.js';

const log = child('control');
const MAX_REQUEST = 4096;
const IDLE_MS = 30_000;

export interface ControlRequest {
  readonly op: 'reset';
  readonly export: string;
  readonly client: string;
}

export interface ControlHandlers {
  reset(exportPath: string, client: string): Promise<void>;
}

export interface ControlServer {
  close(): Promise<void>;
}

export async function listenControl(path: string, h: ControlHandlers): Promise<ControlServer> {
  // A socket left by a server that died is in the way; a live one answers, and is not ours to take.
  if (fs.existsSync(path)) {
    const alive = await new Promise<boolean>((resolve) => {
      const s = net.connect(path, () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (alive) throw new Error(`control socket ${path} is in use by another server`);
    fs.rmSync(path, { force: true });
  }
  const server = net.createServer((sock) => {
    sock.setTimeout(IDLE_MS, () => sock.destroy());
    let buf = '';
    sock.on('data', (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl < 0 && buf.length <= MAX_REQUEST) return;
      sock.pause();
      const line = nl < 0 ? '' : buf.slice(0, nl);
      void answer(line, h).then((reply) => sock.end(`${JSON.stringify(reply)}\n`));
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // Connecting needs write permission on the socket: the umask (022 usually) already keeps
    // others out; 0600 makes that so whatever the umask. The umask itself is left alone, as
    // the union relies on it (vfs/dir-ops.ts).
    server.listen(path, () => {
      fs.chmodSync(path, 0o600);
      resolve();
    });
  });
  log.info(`control socket ${path}`);
  return {
    close: () => new Promise<void>((resolve) => server.close(() => {
      fs.rmSync(path, { force: true });
      resolve();
    })),
  };
}

async function answer(line: string, h: ControlHandlers): Promise<{ ok: boolean; error?: string }> {
  let req: Partial<ControlRequest>;
  try {
    req = JSON.parse(line) as Partial<ControlRequest>;
  } catch {
    return { ok: false, error: `not one JSON request of at most ${MAX_REQUEST} bytes` };
  }
  if (req.op !== 'reset' || typeof req.export !== 'string' || typeof req.client !== 'string') {
    return { ok: false, error: 'the one request is {"op":"reset","export":PATH,"client":NAME}' };
  }
  try {
    await h.reset(req.export, req.client);
    return { ok: true };
  } catch (err) {
    log.warn(`reset of ${req.client} on ${req.export} failed: ${(err as Error).message}`);
    return { ok: false, error: (err as Error).message };
  }
}

/** The command side: send one request, resolve to the server's answer. */
export function sendControl(path: string, req: ControlRequest): Promise<{ ok: boolean; error?: string }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(path);
    let buf = '';
    sock.setTimeout(IDLE_MS * 4, () => sock.destroy(new Error('no answer from the server')));
    sock.on('connect', () => sock.write(`${JSON.stringify(req)}\n`));
    sock.on('data', (c: Buffer) => { buf += c.toString('utf8'); });
    sock.on('end', () => {
      try {
        resolve(JSON.parse(buf) as { ok: boolean; error?: string });
      } catch {
        reject(new Error(`unreadable answer from the server: ${buf.slice(0, 200)}`));
      }
    });
    sock.on('error', reject);
  });
}
