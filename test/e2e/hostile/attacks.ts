/**
 * Hostile clients, for the limits test (test/e2e/limits.test.ts, reduced sizes) and the full
 * run (bench/hostile.ts): raw TCP connections from many loopback addresses that hold the
 * server's resources the way a broken client or a scanner would.
 */
import type net from 'node:net';
import { readFileSync } from 'node:fs';
import { XdrWriter } from '@nfs-ts/xdr';
import { encodeAuthSys } from '../../../src/rpc/auth.js';
import { encodeCallHeader } from '../../../src/rpc/message.js';
import { encodeRecordMark } from '../../../src/rpc/record-marking.js';
import { connectFrom as connect } from '../../helpers/net.js';

const NFS_PROGRAM = 100003;
const NFSPROC3_READ = 6;

export function rssMiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
}

/** `n` connections spread over `addresses` (127.0.<net>.1..), each made by `each`. */
async function many(port: number, n: number, net3: number, addresses: number, each: (s: net.Socket) => void): Promise<net.Socket[]> {
  const out: net.Socket[] = [];
  for (let i = 0; i < n; i++) {
    const s = await connect(port, `127.0.${net3}.${1 + (i % addresses)}`);
    s.on('error', () => undefined);
    each(s);
    out.push(s);
  }
  return out;
}

/** Connections that announce a 1 MiB record and send 10 bytes of it. */
export function slowLoris(port: number, n: number, addresses: number): Promise<net.Socket[]> {
  return many(port, n, 10, addresses, (s) => s.write(Buffer.concat([encodeRecordMark(1 << 20), Buffer.alloc(10, 1)])));
}

/** Connections that are opened and left idle. */
export function flood(port: number, n: number, addresses: number): Promise<net.Socket[]> {
  return many(port, n, 11, addresses, () => undefined);
}

/** Connections that each send `reads` READs of 1 MiB of `fh` and never read a reply. */
export function unreadReads(port: number, fh: Buffer, connections: number, reads: number): Promise<net.Socket[]> {
  const cred = encodeAuthSys({ uid: 0, gid: 0, machinename: 'reader' });
  let xid = 1;
  return many(port, connections, 12, 1, (s) => {
    s.pause();
    const calls: Buffer[] = [];
    for (let i = 0; i < reads; i++) {
      const body = encodeCallHeader(new XdrWriter(256), xid++, NFS_PROGRAM, 3, NFSPROC3_READ, cred).opaque(fh).uint64(0n).uint32(1 << 20).toBuffer();
      calls.push(encodeRecordMark(body.length), body);
    }
    s.write(Buffer.concat(calls));
  });
}

/** Resolves once every socket has been closed (by the server). */
export function allClosed(sockets: readonly net.Socket[]): Promise<void> {
  return Promise.all(sockets.map((s) => (s.destroyed ? Promise.resolve() : new Promise<void>((r) => s.once('close', () => r()))))).then(() => undefined);
}
