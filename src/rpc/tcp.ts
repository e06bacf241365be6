/**
 * RPC over TCP: one RecordDecoder per connection, calls dispatched as their records complete,
 * replies written as [record mark, header, ...body chunks] under cork so a 1 MiB READ goes out
 * in one writev without being concatenated. Each call gets its own XdrReader (calls overlap
 * when procedures await); the decoder is the per-connection state that is reused. Calls in flight per connection are bounded: when
 * the bound is reached, or the peer stops reading replies, the socket stops being read. A
 * protocol violation (an oversized record, a call header that does not decode) closes that
 * connection only.
 */
import net from 'node:net';
import { child } from '../log.js';
import { DISCONNECT, type Dispatcher } from './dispatcher.js';
import { DEFAULT_MAX_RECORD, encodeRecordMark, RecordDecoder } from './record-marking.js';
import type { Peer } from './types.js';

const log = child('rpc');

export interface TcpOptions {
  maxRecordSize?: number;
  maxInFlight?: number;
}

export function createTcpServer(dispatcher: Dispatcher, o: TcpOptions = {}): net.Server {
  const maxRecordSize = o.maxRecordSize ?? DEFAULT_MAX_RECORD;
  const maxInFlight = o.maxInFlight ?? 64;
  const server = net.createServer({ noDelay: true }, (socket) => serveConnection(socket, dispatcher, maxRecordSize, maxInFlight));
  return server;
}

function serveConnection(socket: net.Socket, dispatcher: Dispatcher, maxRecordSize: number, maxInFlight: number): void {
  const peer: Peer = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0, transport: 'tcp' };
  let inFlight = 0;
  const queue: Buffer[] = [];

  const pump = (): void => {
    while (queue.length && inFlight < maxInFlight && !socket.destroyed) {
      const record = queue.shift() as Buffer;
      inFlight++;
      void dispatcher.dispatch(record, peer).then((reply) => {
        inFlight--;
        if (reply === DISCONNECT) {
          if (log.isDebugEnabled()) log.debug(`closing connection from ${peer.address}:${peer.port}: malformed call header`);
          socket.destroy();
          return;
        }
        if (reply && !socket.destroyed) writeReply(socket, reply);
        pump();
      });
    }
    const congested = queue.length > 0 || inFlight >= maxInFlight || socket.writableNeedDrain;
    if (congested) socket.pause();
    else if (socket.isPaused()) socket.resume();
  };

  const decoder = new RecordDecoder((record) => queue.push(record), maxRecordSize);
  socket.on('data', (chunk: Buffer) => {
    try {
      decoder.push(chunk);
    } catch (e) {
      log.warn(`closing connection from ${peer.address}:${peer.port}: ${(e as Error).message}`);
      socket.destroy();
      return;
    }
    pump();
  });
  socket.on('drain', pump);
  socket.on('error', (e) => {
    if (log.isDebugEnabled()) log.debug(`connection ${peer.address}:${peer.port}: ${e.message}`);
  });
}

function writeReply(socket: net.Socket, reply: Buffer[]): void {
  let length = 0;
  for (const b of reply) length += b.length;
  socket.cork();
  socket.write(encodeRecordMark(length));
  for (const b of reply) socket.write(b);
  socket.uncork();
}
