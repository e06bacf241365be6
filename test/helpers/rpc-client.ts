/**
 * A small ONC RPC client for tests, over TCP (record marked) or UDP, with AUTH_SYS by default.
 * Replies are matched by xid; `sendRaw` writes arbitrary bytes for robustness tests.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { XdrReader, XdrWriter } from '@nfs-ts/xdr';
import { encodeAuthSys } from '../../src/rpc/auth.js';
import { accept_stat, decodeReplyHeader, encodeCallHeader, type OpaqueAuth, type ReplyHeader } from '../../src/rpc/message.js';
import { encodeRecordMark, RecordDecoder } from '../../src/rpc/record-marking.js';

export interface RpcReply {
  readonly header: ReplyHeader;
  /** Positioned at the results when the call was accepted with SUCCESS. */
  readonly body: XdrReader;
  readonly raw: Buffer;
}

export interface RpcClientOptions {
  cred?: OpaqueAuth;
  timeoutMs?: number;
  /** TCP only: the source address (any 127.0.0.0/8 address works on loopback). */
  localAddress?: string;
}

type Args = Buffer | ((w: XdrWriter) => void) | undefined;

export class RpcClient {
  private nextXid = (Math.random() * 0x7fff_ffff) >>> 0;
  private readonly pending = new Map<number, { resolve: (r: RpcReply) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private readonly cred: OpaqueAuth;
  private readonly timeoutMs: number;
  private closedError: Error | undefined;

  private constructor(
    readonly transport: 'tcp' | 'udp',
    private readonly send: (message: Buffer) => void,
    private readonly shutdown: () => void,
    o: RpcClientOptions,
  ) {
    this.cred = o.cred ?? encodeAuthSys({ uid: 0, gid: 0, machinename: 'test-client' });
    this.timeoutMs = o.timeoutMs ?? 5000;
  }

  static async connect(transport: 'tcp' | 'udp', host: string, port: number, o: RpcClientOptions = {}): Promise<RpcClient> {
    if (transport === 'tcp') {
      const socket = net.connect({ host, port, ...(o.localAddress !== undefined && { localAddress: o.localAddress }) });
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', reject);
      });
      const client: RpcClient = new RpcClient('tcp', (m) => socket.write(m), () => socket.destroy(), o);
      const decoder = new RecordDecoder((record) => client.onReply(record), 64 * 1024 * 1024);
      socket.on('data', (chunk: Buffer) => decoder.push(chunk));
      socket.on('error', () => undefined);
      socket.on('close', () => client.fail(new Error('connection closed')));
      return client;
    }
    const socket = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    await new Promise<void>((resolve) => socket.connect(port, host, resolve));
    const client: RpcClient = new RpcClient('udp', (m) => socket.send(m), () => socket.close(), o);
    socket.on('message', (msg) => client.onReply(msg));
    socket.on('error', () => undefined);
    return client;
  }

  /** True once a TCP connection has been closed by either side. */
  get closed(): boolean {
    return this.closedError !== undefined;
  }

  /** Calls prog/vers/proc with the given argument bytes (or an encoder) and waits for the reply. */
  call(prog: number, vers: number, proc: number, args?: Args, cred?: OpaqueAuth): Promise<RpcReply> {
    const xid = this.xid();
    const w = encodeCallHeader(new XdrWriter(), xid, prog, vers, proc, cred ?? this.cred);
    if (typeof args === 'function') args(w);
    else if (args) w.opaqueFixed(args);
    return this.callRaw(xid, w.toBuffer());
  }

  /** Like call, but fails unless the reply is MSG_ACCEPTED SUCCESS; resolves to the results reader. */
  async ok(prog: number, vers: number, proc: number, args?: Args): Promise<XdrReader> {
    const reply = await this.call(prog, vers, proc, args);
    if (reply.header.kind !== 'accepted' || reply.header.stat !== accept_stat.SUCCESS) {
      throw new Error(`call ${prog}/${vers}/${proc} not successful: ${JSON.stringify(reply.header)}`);
    }
    return reply.body;
  }

  /** Sends a complete RPC message (record-marked here for TCP) whose xid is `xid`, and waits for its reply. */
  callRaw(xid: number, message: Buffer): Promise<RpcReply> {
    return new Promise<RpcReply>((resolve, reject) => {
      if (this.closedError) return reject(this.closedError);
      const timer = setTimeout(() => {
        this.pending.delete(xid);
        reject(new Error(`xid ${xid}: no reply within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(xid, { resolve, reject, timer });
      this.send(this.transport === 'tcp' ? Buffer.concat([encodeRecordMark(message.length), message]) : message);
    });
  }

  /** Writes bytes as they are: no record mark is added on TCP. */
  sendRaw(bytes: Buffer): void {
    this.send(bytes);
  }

  xid(): number {
    this.nextXid = (this.nextXid + 1) >>> 0;
    return this.nextXid;
  }

  close(): void {
    this.shutdown();
    this.fail(new Error('client closed'));
  }

  private onReply(record: Buffer): void {
    const body = new XdrReader(record);
    let header: ReplyHeader;
    try {
      header = decodeReplyHeader(body);
    } catch {
      return;
    }
    const p = this.pending.get(header.xid);
    if (!p) return;
    this.pending.delete(header.xid);
    clearTimeout(p.timer);
    p.resolve({ header, body, raw: record });
  }

  private fail(e: Error): void {
    this.closedError ??= e;
    for (const [xid, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(e);
      this.pending.delete(xid);
    }
  }
}
