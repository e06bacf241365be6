/**
 * Wiring: one union, three RPC programs, the listeners, and the portmapper.
 *
 *   clients ──TCP/UDP──▶ RpcServer ──▶ Dispatcher ─┬─▶ NFS v3  ─┐
 *                        (port, --mount-port)      └─▶ MOUNT v3 ├─▶ UnionFs (src/vfs)
 *   portmapper :111 (own, or registration with the system's rpcbind)
 *
 * MOUNT answers on the NFS port as well, so one open port (plus 111) serves a client; a
 * separate --mount-port is for clients told `mountport=`. Every listener serves every program:
 * that costs nothing and spares a client that guesses wrong.
 */
import type { ServerOptions } from './config.js';
import { child } from './log.js';
import { createMountProgram } from './mount/program.js';
import { nfs3Program } from './nfs3/program.js';
import { mappingsFor, startPortmap, type PortmapHandle } from './portmap/start-portmap.js';
import { BusyPoll, createRpcServer, Dispatcher } from './rpc/index.js';
import { FileType, openUnion } from './vfs/index.js';
import { FsError } from './errors/fs-error.js';

const log = child('server');

export interface RunningServer {
  readonly nfsPort: number;
  readonly mountPort?: number;
  /** How clients find us: our own portmapper on 111, the system's rpcbind, or not at all. */
  readonly portmap: 'own' | 'rpcbind' | 'off';
  close(): Promise<void>;
}

export async function startServer(o: ServerOptions): Promise<RunningServer> {
  const union = await openUnion({
    lowers: o.lowers,
    ...(o.upper !== undefined && { upper: o.upper }),
    ...(o.workdir !== undefined && { workdir: o.workdir }),
    ...(o.state !== undefined && { state: o.state }),
    whiteoutFormat: o.whiteoutFormat,
  });
  const nfs = nfs3Program(union);
  const mount = createMountProgram({
    exportPath: o.exportPath,
    resolve: (components, cred) => {
      let id = union.root;
      for (const name of components) id = union.lookup(id, name, cred);
      if (union.getattr(id).type !== FileType.DIR) throw new FsError('ENOTDIR');
      return union.handleOf(id);
    },
  });
  const dispatcher = new Dispatcher().register(nfs).register(mount);
  const rpc = createRpcServer(dispatcher, { busyPoll: new BusyPoll(o.busyPollUs) });
  let portmap: PortmapHandle | undefined;
  try {
    const nfsPort = await rpc.listenTcp(o.host, o.port);
    await rpc.listenUdp(o.host, nfsPort);
    let mountPort: number | undefined;
    if (o.mountPort !== undefined) {
      mountPort = await rpc.listenTcp(o.host, o.mountPort);
      await rpc.listenUdp(o.host, mountPort);
    }
    if (o.portmap) {
      const mountAt = mountPort ?? nfsPort;
      // Being unfindable is worth a warning, not a refusal to serve: clients can still be
      // given the ports (the usual case for a non-root demo, where 111 is out of reach).
      portmap = await startPortmap({
        host: o.host,
        mappings: [...mappingsFor([nfs], nfsPort, nfsPort), ...mappingsFor([mount], mountAt, mountAt)],
      }).catch((err: unknown) => {
        log.warn(`no portmapper: ${(err as Error).message}. Port 111 needs root, or a running rpcbind; ` +
          `clients must be given port=${nfsPort},mountport=${mountAt} (or pass --no-portmap to silence this)`);
        return undefined;
      });
    }
    const mode = portmap?.mode ?? 'off';
    log.info(`serving ${o.exportPath} (${union.readOnly ? 'read-only' : 'read-write'}, ${o.lowers.length} lower layer(s)) on ${o.host}:${nfsPort}` +
      (mountPort !== undefined ? `, MOUNT also on ${mountPort}` : '') + `, portmapper: ${mode}`);
    return {
      nfsPort,
      ...(mountPort !== undefined && { mountPort }),
      portmap: mode,
      async close() {
        await portmap?.close();
        await rpc.close();
        await union.close();
      },
    };
  } catch (err) {
    await portmap?.close();
    await rpc.close();
    await union.close();
    throw err;
  }
}
