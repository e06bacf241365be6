/**
 * RPC over TCP: one RecordDecoder per connection, calls dispatched as their records complete,
 * replies written as [record mark, header, ...body chunks] so a 1 MiB READ goes out without
 * being concatenated. Each call gets its own XdrReader (calls overlap when procedures await);
 * the decoder is the per-connection state that is reused. Calls in flight per connection are
 * bounded: when the bound is reached, or the peer stops reading replies, the socket stops being
 * read. A protocol violation (an oversized record, a call header that does not decode) closes
 * that connection only.
 *
 * Replies that finish in the same event-loop turn are written under one cork and flushed in
 * setImmediate: one writev for all of them instead of one per reply. After a flush the event
 * loop busy-polls for a moment (busy-poll.ts), where the client's next call usually arrives.
 *
 * Every call carries a CallCompletion, run once the connection is done with it: when the
 * write of its reply has completed (the kernel has the bytes), when there is no reply to send
 * or the socket is already gone, or when the connection closes with the write still pending.
 * It is never run while the call's dispatch is still running: the procedure may still be
 * reading its arguments (views of the record buffer) or filling a buffer it took.
 * The record buffer goes back to the decoder from there, and procedures lend buffers to the
 * reply through it (call.afterReply).
 */
import net from 'node:net';
import { child } from '../log.js';
import type { BusyPoll } from './busy-poll.js';
import { CallCompletion } from './completion.js';
import { DISCONNECT, type Dispatcher, type DispatchResult } from './dispatcher.js';
import { DEFAULT_MAX_RECORD, encodeRecordMark, RecordDecoder } from './record-marking.js';
import type { Peer } from './types.js';

const log = child('rpc');

export interface TcpOptions {
  maxRecordSize?: number;
  maxInFlight?: number;
  /** Record buffers kept per connection for reuse (each up to maxRecordSize); default 4. */
  maxFreeRecords?: number;
  /** Kept awake after every flush of replies (one per process: every listener shares it). */
  busyPoll?: BusyPoll;
}

export function createTcpServer(dispatcher: Dispatcher, o: TcpOptions = {}): net.Server {
  const maxRecordSize = o.maxRecordSize ?? DEFAULT_MAX_RECORD;
  const maxInFlight = o.maxInFlight ?? 64;
  const maxFree = Math.min(maxInFlight, o.maxFreeRecords ?? 4);
  const afterFlush = o.busyPoll?.kick;
  const server = net.createServer({ noDelay: true }, (socket) => serveConnection(socket, dispatcher, maxRecordSize, maxInFlight, maxFree, afterFlush));
  return server;
}

interface Queued {
  readonly record: Buffer;
  readonly release: (() => void) | undefined;
}

function serveConnection(socket: net.Socket, dispatcher: Dispatcher, maxRecordSize: number, maxInFlight: number, maxFree: number,
  afterFlush: (() => void) | undefined): void {
  const peer: Peer = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0, transport: 'tcp', ...(socket.localAddress !== undefined && { local: socket.localAddress }) };
  const observer = dispatcher.observer;
  observer?.connectionOpened();
  let inFlight = 0;
  const queue: Queued[] = [];
  /** Calls whose reply has been handed to the socket and whose write has not completed. */
  const writing = new Set<CallCompletion>();
  let corked = false;

  const finish = (c: CallCompletion): void => {
    writing.delete(c);
    c.run();
  };

  const flush = (): void => {
    corked = false;
    socket.uncork();
    afterFlush?.();
  };

  const writeReply = (reply: Buffer[], c: CallCompletion): void => {
    let length = 0;
    for (const b of reply) length += b.length;
    if (!corked) {
      corked = true;
      socket.cork();
      setImmediate(flush);
    }
    writing.add(c);
    socket.write(encodeRecordMark(length));
    const last = reply.length - 1;
    for (let i = 0; i < last; i++) socket.write(reply[i] as Buffer);
    // Chunks are written in order, so the last one's callback means the whole reply is out
    // (or failed: the callback also runs, with an error, when the socket is destroyed).
    if (last >= 0) socket.write(reply[last] as Buffer, () => finish(c));
    else finish(c);
  };

  const settle = (reply: DispatchResult, c: CallCompletion): void => {
    inFlight--;
    if (reply === DISCONNECT) {
      if (log.isDebugEnabled()) log.debug(`closing connection from ${peer.address}:${peer.port}: malformed call header`);
      c.run();
      socket.destroy();
      return;
    }
    if (reply && !socket.destroyed) writeReply(reply, c);
    else c.run();
  };

  const pump = (): void => {
    while (queue.length && inFlight < maxInFlight && !socket.destroyed) {
      const { record, release } = queue.shift() as Queued;
      inFlight++;
      const c = new CallCompletion();
      if (release) c.add(release);
      const reply = dispatcher.dispatch(record, peer, c);
      // Answered synchronously: written now, and the loop goes on with the next record.
      if (!(reply instanceof Promise)) settle(reply, c);
      else {
        void reply.then((r) => {
          settle(r, c);
          pump();
        });
      }
    }
    const congested = queue.length > 0 || inFlight >= maxInFlight || socket.writableNeedDrain;
    if (congested) socket.pause();
    else if (socket.isPaused()) socket.resume();
  };

  const decoder = new RecordDecoder((record, release) => queue.push({ record, release }), maxRecordSize, maxFree);
  socket.on('data', (chunk: Buffer) => {
    try {
      decoder.push(chunk);
    } catch (e) {
      log.warn(`closing connection from ${peer.address}:${peer.port}: ${(e as Error).message}`, { client: peer.address });
      observer?.dropped('record_too_large');
      socket.destroy();
      return;
    }
    pump();
  });
  socket.on('drain', pump);
  socket.on('error', (e) => {
    if (log.isDebugEnabled()) log.debug(`connection ${peer.address}:${peer.port}: ${e.message}`);
  });
  // The handle is closed: the kernel will not read any pending write's buffers any more.
  socket.on('close', () => {
    observer?.connectionClosed();
    for (const c of [...writing]) finish(c);
    queue.length = 0;
  });
}
