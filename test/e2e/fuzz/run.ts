/**
 * Sends fuzzed calls (calls.ts) to a server over TCP (eight connections at a time, each a
 * batch of records, replies read) and UDP (batches of datagrams), and counts what came back. Used by
 * test/e2e/fuzz.test.ts (a CI slice) and bench/fuzz.ts (the full run).
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { XdrWriter } from '@nfs-ts/xdr';
import { auth_flavor, encodeCallHeader } from '../../../src/rpc/message.js';
import { encodeRecordMark, RecordDecoder } from '../../../src/rpc/record-marking.js';
import { rng } from '../../fixtures/rng.js';
import { message, type Handles } from './calls.js';

export interface FuzzResult {
  sent: number;
  replies: number;
  /** TCP batches the server closed the connection of (a malformed call header). */
  closed: number;
  /** TCP batches whose closing NULL call went unanswered for 5 s on an open connection (a hang). */
  stalled: number;
}

/**
 * Messages per TCP connection: a malformed call header closes the connection (as knfsd does)
 * and the rest of its batch is lost, so batches are short; UDP batches are longer.
 */
const TCP_BATCH = 25;
const UDP_BATCH = 100;
const WORKERS = 8;

/** An NFS NULL call: every TCP batch ends with one, whose answer says the connection still works. */
const SENTINEL_XID = 0xfffffff0;
const SENTINEL = encodeCallHeader(new XdrWriter(64), SENTINEL_XID, 100003, 3, 0, { flavor: auth_flavor.AUTH_NONE, body: Buffer.alloc(0) }).toBuffer();

/**
 * One TCP batch, then the sentinel: resolves when the sentinel is answered (some fuzzed calls
 * are rightly never answered: NLM's _MSG procedures, for one), when the server closes the
 * connection, or when 5 s pass without the sentinel's answer on an open connection (a hang).
 */
function tcpBatch(port: number, messages: Buffer[], out: FuzzResult): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let finished = false;
    const done = (how: 'answered' | 'closed' | 'stalled'): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      if (how === 'closed') out.closed++;
      if (how === 'stalled') out.stalled++;
      s.destroy();
      resolve();
    };
    const timer = setTimeout(() => done('stalled'), 5000);
    const decoder = new RecordDecoder((reply) => {
      if (reply.length >= 4 && reply.readUInt32BE(0) === SENTINEL_XID) done('answered');
      else out.replies++;
    }, 1 << 21);
    s.on('data', (d: Buffer) => {
      try {
        decoder.push(d);
      } catch {
        done('closed');
      }
    });
    s.on('error', () => undefined);
    s.on('close', () => done('closed'));
    s.on('connect', () => {
      s.write(Buffer.concat([...messages, SENTINEL].flatMap((m) => [encodeRecordMark(m.length), m])));
      out.sent += messages.length;
    });
  });
}

/** One UDP batch: the datagrams, then whatever comes back within 200 ms of the last answer. */
async function udpBatch(port: number, messages: Buffer[], out: FuzzResult): Promise<void> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  let last = Date.now();
  s.on('message', () => {
    out.replies++;
    last = Date.now();
  });
  for (const m of messages) s.send(m, port, '127.0.0.1');
  out.sent += messages.length;
  while (Date.now() - last < 200) await new Promise((r) => setTimeout(r, 50));
  s.close();
}

/** `count` fuzzed messages, about a third of them over UDP, from `seed`. */
export async function fuzz(port: number, h: Handles, count: number, seed: number, progress?: (r: FuzzResult) => void): Promise<FuzzResult> {
  const r = rng(seed);
  const out: FuzzResult = { sent: 0, replies: 0, closed: 0, stalled: 0 };
  let xid = 1;
  const batch = (n: number): Buffer[] => Array.from({ length: n }, () => message(r, xid++, h));
  let left = count;
  while (left > 0) {
    const rounds: Promise<void>[] = [];
    for (let w = 0; w < WORKERS && left > 0; w++, left -= TCP_BATCH) rounds.push(tcpBatch(port, batch(Math.min(TCP_BATCH, left)), out));
    if (left > 0) {
      rounds.push(udpBatch(port, batch(Math.min(UDP_BATCH, left)), out));
      left -= UDP_BATCH;
    }
    await Promise.all(rounds);
    progress?.(out);
  }
  return out;
}
