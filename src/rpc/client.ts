/**
 * The caller's side of ONC RPC over UDP, for the few calls this server makes itself: registering
 * with the system's rpcbind, and the lock manager's callbacks to clients (GRANTED, the `_RES`
 * answers, SM_NOTIFY), each found through the client's portmapper.
 *
 * Rule: one socket per call, bound to a reserved port when we may (as bindresvport(3) does:
 * rpcbind accepts SET/UNSET only from one, and some statd and lockd builds prefer one), and to
 * `localAddress` when given, so a client that matches callbacks by server address (the Linux
 * lock client does) sees the address it mounted. A call is retransmitted with the same xid
 * until it is answered or its attempts are spent.
 */
import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import { XdrReader, XdrWriter } from '@nfs-ts/xdr';
import { AUTH_NONE_CRED } from './auth.js';
import { accept_stat, decodeReplyHeader, encodeCallHeader, type OpaqueAuth } from './message.js';

export interface UdpCall {
  readonly host: string;
  readonly port: number;
  readonly prog: number;
  readonly vers: number;
  readonly proc: number;
  /** Encodes the procedure's arguments. */
  readonly args?: (w: XdrWriter) => void;
  readonly cred?: OpaqueAuth;
  /** The address the call is sent from; default the kernel's choice. */
  readonly localAddress?: string;
  /** Per attempt; default 1000 ms. */
  readonly timeoutMs?: number;
  /** Default 3. */
  readonly attempts?: number;
}

/** Sends the call and resolves to a reader at the results of the SUCCESS reply; rejects otherwise. */
export async function callUdp(c: UdpCall): Promise<XdrReader> {
  const socket = await bindReserved(c.localAddress ?? (isIPv6(c.host) ? '::' : '0.0.0.0'));
  try {
    const xid = (Math.random() * 0xffff_ffff) >>> 0;
    const w = encodeCallHeader(new XdrWriter(256), xid, c.prog, c.vers, c.proc, c.cred ?? AUTH_NONE_CRED);
    c.args?.(w);
    const msg = w.toBuffer();
    const attempts = c.attempts ?? 3;
    for (let attempt = 1; ; attempt++) {
      const data = await new Promise<Buffer | undefined>((resolve) => {
        const timer = setTimeout(() => resolve(undefined), c.timeoutMs ?? 1000);
        socket.on('message', (m) => {
          if (m.length >= 4 && m.readUInt32BE(0) === xid) {
            clearTimeout(timer);
            resolve(m);
          }
        });
        socket.send(msg, c.port, c.host, (err) => {
          if (err) { clearTimeout(timer); resolve(undefined); }
        });
      });
      socket.removeAllListeners('message');
      if (data) {
        const r = new XdrReader(data);
        const h = decodeReplyHeader(r);
        if (h.kind !== 'accepted' || h.stat !== accept_stat.SUCCESS) {
          throw new Error(`${c.host}:${c.port} refused program ${c.prog} v${c.vers} procedure ${c.proc}: ${JSON.stringify(h)}`);
        }
        return r;
      }
      if (attempt >= attempts) throw new Error(`no answer from ${c.host}:${c.port} (program ${c.prog} v${c.vers} procedure ${c.proc})`);
    }
  } finally {
    socket.close();
  }
}

async function bindReserved(address: string): Promise<dgram.Socket> {
  const type = isIPv6(address) ? 'udp6' : 'udp4';
  if (process.getuid?.() === 0) {
    const start = 600 + Math.floor(Math.random() * 424);
    for (let i = 0; i < 424; i++) {
      const port = 600 + ((start - 600 + i) % 424);
      const socket = dgram.createSocket(type);
      const ok = await new Promise<boolean>((resolve) => {
        socket.once('error', () => resolve(false));
        socket.bind({ port, address, exclusive: true }, () => resolve(true));
      });
      if (ok) return socket;
      socket.close();
    }
  }
  const socket = dgram.createSocket(type);
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ port: 0, address, exclusive: true }, resolve);
  });
  return socket;
}
