/**
 * A minimal portmapper v2 client over UDP, for registering with a system rpcbind. rpcbind
 * accepts SET/UNSET only from the loopback interface and a reserved source port (unless it
 * runs with -i), so the socket binds a port below 1024 when it may, as bindresvport(3) does.
 */
import dgram from 'node:dgram';
import { XdrReader, XdrWriter } from '@nfs-ts/xdr';
import { AUTH_NONE_CRED } from '../rpc/auth.js';
import { accept_stat, decodeReplyHeader, encodeCallHeader } from '../rpc/message.js';
import { PMAP_PORT, PMAP_PROG, PMAP_VERS, writeMapping, type Mapping } from './program.js';

export interface PmapClientOptions {
  host?: string;
  port?: number;
  timeoutMs?: number;
  attempts?: number;
}

/** Calls SET, UNSET or GETPORT with a mapping; resolves to the uint32/bool result as a number. */
export async function pmapCall(proc: number, m: Mapping, o: PmapClientOptions = {}): Promise<number> {
  const host = o.host ?? '127.0.0.1';
  const socket = await bindReserved();
  try {
    const xid = (Math.random() * 0xffff_ffff) >>> 0;
    const msg = writeMapping(encodeCallHeader(new XdrWriter(64), xid, PMAP_PROG, PMAP_VERS, proc, AUTH_NONE_CRED), m).toBuffer();
    const attempts = o.attempts ?? 3;
    for (let attempt = 1; ; attempt++) {
      const reply = new Promise<Buffer | undefined>((resolve) => {
        const timer = setTimeout(() => resolve(undefined), o.timeoutMs ?? 1000);
        socket.on('message', (data) => {
          if (data.length >= 4 && data.readUInt32BE(0) === xid) {
            clearTimeout(timer);
            resolve(data);
          }
        });
      });
      socket.send(msg, o.port ?? PMAP_PORT, host);
      const data = await reply;
      socket.removeAllListeners('message');
      if (data) {
        const r = new XdrReader(data);
        const h = decodeReplyHeader(r);
        if (h.kind !== 'accepted' || h.stat !== accept_stat.SUCCESS) throw new Error(`portmapper at ${host} refused the call: ${JSON.stringify(h)}`);
        return r.uint32();
      }
      if (attempt >= attempts) throw new Error(`no answer from the portmapper at ${host}:${o.port ?? PMAP_PORT}`);
    }
  } finally {
    socket.close();
  }
}

async function bindReserved(): Promise<dgram.Socket> {
  const start = 600 + Math.floor(Math.random() * 400);
  for (let i = 0; i < 424; i++) {
    const port = 600 + ((start - 600 + i) % 424);
    const socket = dgram.createSocket('udp4');
    const ok = await new Promise<boolean>((resolve) => {
      socket.once('error', () => resolve(false));
      socket.bind({ port, address: '127.0.0.1', exclusive: true }, () => resolve(true));
    });
    if (ok) return socket;
    socket.close();
    if (process.getuid?.() !== 0) break;
  }
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind({ port: 0, address: '127.0.0.1' }, resolve));
  return socket;
}
