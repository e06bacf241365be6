/**
 * The RPC server a program set is served through: one dispatcher behind any number of TCP and
 * UDP listeners, which report the port they really got (0 = ephemeral) and close together,
 * and share one Load: the limits hold for the server, whatever port a client picks.
 */
import type dgram from 'node:dgram';
import type net from 'node:net';
import type { Dispatcher } from './dispatcher.js';
import { createTcpServer, type TcpOptions } from './tcp.js';
import { createUdpSocket, type UdpOptions } from './udp.js';
import { DEFAULT_LIMITS, Load, type RpcLimits } from './limits.js';

export interface RpcServer {
  readonly dispatcher: Dispatcher;
  /** What clients hold now, against the limits. */
  readonly load: Load;
  /** Resolves to the bound port. */
  listenTcp(host: string, port: number): Promise<number>;
  listenUdp(host: string, port: number): Promise<number>;
  /**
   * TCP and UDP on one port: `port`, or with 0 one the kernel picks for TCP that UDP can have
   * too (another process may hold that number in UDP: then another is picked, up to 8 times).
   */
  listenBoth(host: string, port: number): Promise<number>;
  close(): Promise<void>;
}

export function createRpcServer(dispatcher: Dispatcher, o: Omit<TcpOptions & UdpOptions, 'load'> & { limits?: RpcLimits } = {}): RpcServer {
  const load = new Load(o.limits ?? DEFAULT_LIMITS, dispatcher.observer);
  const opts = { ...o, load };
  const tcp: net.Server[] = [];
  const udp: dgram.Socket[] = [];
  const sockets = new Set<net.Socket>();
  return {
    dispatcher,
    load,
    listenTcp(host, port) {
      const server = createTcpServer(dispatcher, opts);
      server.on('connection', (s: net.Socket) => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
      });
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host, port, exclusive: true }, () => {
          server.off('error', reject);
          tcp.push(server);
          resolve((server.address() as net.AddressInfo).port);
        });
      });
    },
    listenUdp(host, port) {
      const socket = createUdpSocket(dispatcher, host, opts);
      return new Promise((resolve, reject) => {
        const failed = (e: Error): void => {
          try { socket.close(); } catch { /* never bound */ }
          reject(e);
        };
        socket.once('error', failed);
        socket.bind({ address: host, port, exclusive: true }, () => {
          socket.off('error', failed); // a later error is the socket's own, not a failed bind
          udp.push(socket);
          resolve(socket.address().port);
        });
      });
    },
    async listenBoth(host, port) {
      for (let attempt = 1; ; attempt++) {
        const got = await this.listenTcp(host, port);
        try {
          return await this.listenUdp(host, got);
        } catch (e) {
          const server = tcp.pop()!;
          await new Promise<void>((resolve) => server.close(() => resolve()));
          if (port !== 0 || (e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 8) throw e;
        }
      }
    },
    async close() {
      const closing = tcp.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
      for (const s of sockets) s.destroy();
      await Promise.all([...closing, ...udp.map((s) => new Promise<void>((resolve) => s.close(() => resolve())))]);
      tcp.length = 0;
      udp.length = 0;
    },
  };
}
