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
 *
 * Limits (limits.ts): a connection the Load does not admit is closed at once; one idle past
 * the idle timeout, or with a record unfinished past the record timeout, is closed; the Load
 * says when a connection may read more (the byte budget) and have another call run (the calls
 * in flight, the budget). A connection holds its unfinished record, its records waiting to be
 * dispatched and its replies not yet taken by the kernel; it also stops taking calls while
 * MAX_UNSENT of its replies wait for its client.
 */
import net from 'node:net';
import { child } from '../log.js';
import type { BusyPoll } from './busy-poll.js';
import { CallCompletion } from './completion.js';
import { DISCONNECT, type Dispatcher, type DispatchResult } from './dispatcher.js';
import { DEFAULT_MAX_RECORD, encodeRecordMark, RecordDecoder } from './record-marking.js';
import { DEFAULT_LIMITS, Load, type Held } from './limits.js';
import type { Peer } from './types.js';

const log = child('rpc');

export interface TcpOptions {
  maxRecordSize?: number;
  maxInFlight?: number;
  /** Record buffers kept per connection for reuse (each up to maxRecordSize); default 4. */
  maxFreeRecords?: number;
  /** Kept awake after every flush of replies (one per process: every listener shares it). */
  busyPoll?: BusyPoll;
  /** The server's limits and what its connections hold (one per server: listeners share it). */
  load?: Load;
}

export function createTcpServer(dispatcher: Dispatcher, o: TcpOptions = {}): net.Server {
  const maxRecordSize = o.maxRecordSize ?? DEFAULT_MAX_RECORD;
  const maxInFlight = o.maxInFlight ?? 64;
  const maxFree = Math.min(maxInFlight, o.maxFreeRecords ?? 4);
  const afterFlush = o.busyPoll?.kick;
  const load = o.load ?? new Load(DEFAULT_LIMITS, dispatcher.observer);
  const server = net.createServer({ noDelay: true }, (socket) => {
    if (!load.admit(socket.remoteAddress ?? '')) {
      socket.destroy();
      return;
    }
    serveConnection(socket, dispatcher, load, maxRecordSize, maxInFlight, maxFree, afterFlush);
  });
  return server;
}

/**
 * Replies a connection may have waiting for its client to read before it dispatches no more
 * calls: a client that pipelines READs and never reads the replies holds this much, plus the
 * replies of the calls already running.
 */
const MAX_UNSENT = 4 * 1024 * 1024;

interface Queued {
  readonly record: Buffer;
  readonly release: (() => void) | undefined;
}

function serveConnection(socket: net.Socket, dispatcher: Dispatcher, load: Load, maxRecordSize: number, maxInFlight: number, maxFree: number,
  afterFlush: (() => void) | undefined): void {
  const peer: Peer = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0, transport: 'tcp', ...(socket.localAddress !== undefined && { local: socket.localAddress }) };
  const observer = dispatcher.observer;
  observer?.connectionOpened();
  let inFlight = 0;
  const queue: Queued[] = [];
  /** Calls whose reply has been handed to the socket and whose write has not completed. */
  const writing = new Set<CallCompletion>();
  let corked = false;
  let queuedBytes = 0;
  const held: Held = { bytes: 0, resume: () => pump() };
  let closed = false;
  const account = (): void => {
    if (!closed) load.update(held, decoder.heldBytes + queuedBytes + socket.writableLength);
  };

  const finish = (c: CallCompletion): void => {
    writing.delete(c);
    c.run();
    account();
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

  /** The reply is accounted for before the call's place is given back (which wakes others). */
  const settle = (reply: DispatchResult, c: CallCompletion): void => {
    inFlight--;
    if (reply === DISCONNECT) {
      if (log.isDebugEnabled()) log.debug(`closing connection from ${peer.address}:${peer.port}: malformed call header`);
      c.run();
      socket.destroy();
    } else if (reply && !socket.destroyed) {
      writeReply(reply, c);
      account();
    } else c.run();
    load.callFinished();
  };

  const pump = (): void => {
    while (queue.length && inFlight < maxInFlight && !socket.destroyed && load.mayDispatch(socket.writableLength, inFlight) && socket.writableLength < MAX_UNSENT) {
      const { record, release } = queue.shift() as Queued;
      queuedBytes -= record.length;
      inFlight++;
      load.callStarted();
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
    account();
    const heldBack = queue.length > 0 && inFlight < maxInFlight && !load.mayDispatch(socket.writableLength, inFlight);
    const stopped = heldBack || !load.mayRead(held, decoder.fits);
    const congested = queue.length > 0 || inFlight >= maxInFlight || socket.writableNeedDrain || stopped;
    if (congested) socket.pause();
    else if (socket.isPaused()) socket.resume();
    if (stopped && !socket.destroyed) load.wait(held, peer.address);
  };

  const decoder = new RecordDecoder((record, release) => {
    queue.push({ record, release });
    queuedBytes += record.length;
  }, maxRecordSize, maxFree);
  // A record must arrive whole in time: checked when it has been unfinished for the timeout.
  let recordTimer: NodeJS.Timeout | undefined;
  const watchRecord = (): void => {
    const since = decoder.partialSince;
    if (since === undefined || recordTimer !== undefined) return;
    recordTimer = setTimeout(() => {
      recordTimer = undefined;
      if (decoder.partialSince === undefined || socket.destroyed) return;
      if (Date.now() - decoder.partialSince >= load.limits.recordTimeoutMs) {
        load.hit('record_timeout', peer.address, `connection closed: a record unfinished after ${load.limits.recordTimeoutMs / 1000} s`);
        socket.destroy();
      } else watchRecord();
    }, Math.max(1, since + load.limits.recordTimeoutMs - Date.now()));
  };
  // Nothing read or written for the idle timeout: an idle connection, or one whose client has
  // stopped reading its replies (they hold the byte budget). A call still running keeps it.
  socket.setTimeout(load.limits.idleTimeoutMs, () => {
    if (inFlight > 0) return;
    if (log.isDebugEnabled()) log.debug(`closing ${writing.size > 0 ? 'stalled' : 'idle'} connection from ${peer.address}:${peer.port}`);
    observer?.dropped('idle');
    socket.destroy();
  });
  socket.on('data', (chunk: Buffer) => {
    try {
      decoder.push(chunk);
    } catch (e) {
      load.hit('record_too_large', peer.address, `connection from port ${peer.port} closed: ${(e as Error).message}`);
      socket.destroy();
      return;
    }
    watchRecord();
    pump();
  });
  socket.on('drain', pump);
  socket.on('error', (e) => {
    if (log.isDebugEnabled()) log.debug(`connection ${peer.address}:${peer.port}: ${e.message}`);
  });
  // The handle is closed: the kernel will not read any pending write's buffers any more.
  socket.on('close', () => {
    closed = true;
    observer?.connectionClosed();
    clearTimeout(recordTimer);
    for (const c of [...writing]) finish(c);
    queue.length = 0;
    queuedBytes = 0;
    load.closed(peer.address, held);
  });
}
