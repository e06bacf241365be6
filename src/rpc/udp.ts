/**
 * RPC over UDP: one datagram is one call and one reply. A reply that does not fit a datagram
 * is replaced by SYSTEM_ERR rather than silently lost (NFS procedures see peer.transport and
 * keep READ/READDIR within maxReplySize).
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { XdrWriter } from '@nfs-ts/xdr';
import type { BusyPoll } from './busy-poll.js';
import { CallCompletion } from './completion.js';
import { DISCONNECT, type Dispatcher, type DispatchResult } from './dispatcher.js';
import { child } from '../log.js';
import { accept_stat, encodeAcceptedReply } from './message.js';
import type { Load } from './limits.js';

const log = child('rpc');

/** The largest UDP payload over IPv4. */
export const DEFAULT_MAX_UDP_REPLY = 65507;

export interface UdpOptions {
  maxReplySize?: number;
  /** Kept awake after every reply sent (busy-poll.ts). */
  busyPoll?: BusyPoll;
  /** Bounds the UDP calls in flight (limits.ts); unbounded without one. */
  load?: Load;
}

export function createUdpSocket(dispatcher: Dispatcher, host: string, o: UdpOptions = {}): dgram.Socket {
  const maxReplySize = o.maxReplySize ?? DEFAULT_MAX_UDP_REPLY;
  const afterSend = o.busyPoll?.kick;
  const socket = dgram.createSocket({ type: net.isIPv6(host) ? 'udp6' : 'udp4' });
  const load = o.load;
  socket.on('message', (msg, rinfo) => {
    if (load !== undefined && !load.udpStarted(rinfo.address)) return;
    // Run once the reply has been sent or dropped: buffers lent to the reply go back then.
    const c = new CallCompletion();
    if (load !== undefined) c.add(() => load.udpFinished());
    const answered = dispatcher.dispatch(msg, { address: rinfo.address, port: rinfo.port, transport: 'udp' }, c);
    const send = (reply: DispatchResult): void => {
      if (!reply || reply === DISCONNECT) {
        c.run();
        return;
      }
      let length = 0;
      for (const b of reply) length += b.length;
      if (length > maxReplySize) {
        if (load !== undefined) load.hit('udp_reply_too_large', rinfo.address, `a UDP reply of ${length} bytes exceeds ${maxReplySize}; answering SYSTEM_ERR`);
        else dispatcher.observer?.dropped('udp_reply_too_large');
        reply = encodeAcceptedReply(new XdrWriter(24), msg.readUInt32BE(0), accept_stat.SYSTEM_ERR).toBuffers();
        c.run();
      }
      try {
        socket.send(reply, rinfo.port, rinfo.address, (e) => {
          c.run();
          afterSend?.();
          if (e && log.isDebugEnabled()) log.debug(`UDP send to ${rinfo.address}:${rinfo.port}: ${e.message}`);
        });
      } catch (e) {
        // A socket closed meanwhile: nothing was sent.
        c.run();
        if (log.isDebugEnabled()) log.debug(`UDP send to ${rinfo.address}:${rinfo.port}: ${(e as Error).message}`);
      }
    };
    if (answered instanceof Promise) void answered.then(send);
    else send(answered);
  });
  socket.on('error', (e) => log.error(`UDP socket: ${e.message}`));
  return socket;
}
