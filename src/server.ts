/**
 * Wiring: a union per export, the export table, three RPC programs, the listeners, and the
 * portmapper.
 *
 *   clients ──TCP/UDP──▶ RpcServer ──▶ Dispatcher ─┬─▶ NFS v3  ─┐  ExportTable   ┌▶ UnionFs /a
 *                        (port, --mount-port)      └─▶ MOUNT v3 ├─▶ (src/exports) ┼▶ UnionFs /b
 *   portmapper :111 (own, or registration with the system's rpcbind)              └▶ ...
 *
 * MOUNT answers on the NFS port as well, so one open port (plus 111) serves a client; a
 * separate --mount-port is for clients told `mountport=`. Every listener serves every program:
 * that costs nothing and spares a client that guesses wrong.
 */
import { UsageError, type ServerOptions } from './config.js';
import { child } from './log.js';
import { createMountProgram } from './mount/program.js';
import { nfs3Program } from './nfs3/program.js';
import { mappingsFor, startPortmap, type PortmapHandle } from './portmap/start-portmap.js';
import { BusyPoll, createRpcServer, Dispatcher } from './rpc/index.js';
import { openUnion, type UnionFs } from './vfs/index.js';
import { ClientRuleError, byPrecedence, describeRules, resolveClientRules } from './exports/client-rules.js';
import { ExportTable, type Export } from './exports/export-table.js';
import { checkLayout } from './exports/layout.js';

const log = child('server');

export interface RunningServer {
  readonly nfsPort: number;
  readonly mountPort?: number;
  /** How clients find us: our own portmapper on 111, the system's rpcbind, or not at all. */
  readonly portmap: 'own' | 'rpcbind' | 'off';
  close(): Promise<void>;
}

export async function startServer(o: ServerOptions): Promise<RunningServer> {
  checkLayout(o.exports);
  const rules = await Promise.all(o.exports.map((e) => resolveClientRules(e.clients).catch((err: unknown) => {
    throw err instanceof ClientRuleError ? new UsageError(`${e.source}: export ${e.path}: clients: ${err.message}`) : err;
  })));
  const opened: UnionFs[] = [];
  const closeAll = () => Promise.all(opened.map((u) => u.close()));
  const exports: Export[] = [];
  try {
    for (const [i, e] of o.exports.entries()) {
      const fs = await openUnion({
        lowers: e.lowers,
        ...(e.upper !== undefined && { upper: e.upper }),
        ...(e.workdir !== undefined && { workdir: e.workdir }),
        ...(e.state !== undefined && { state: e.state }),
        whiteoutFormat: e.whiteoutFormat,
        fsid: e.fsid,
      });
      opened.push(fs);
      exports.push({ path: e.path, fsid: e.fsid, fs, clients: byPrecedence(rules[i]!) });
    }
  } catch (err) {
    await closeAll();
    throw err;
  }
  const table = new ExportTable(exports);
  const nfs = nfs3Program(table);
  const mount = createMountProgram({
    exports: { mnt: (dir, call) => table.mnt(dir, call.peer, call.cred).fh, list: () => table.list() },
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
    for (const [i, e] of exports.entries()) {
      const c = o.exports[i]!;
      log.info(`export ${e.path} (fsid ${e.fsid}, ${e.fs.readOnly ? 'read-only' : 'read-write'}, ${c.lowers.length} lower layer(s)) to ${describeRules(e.clients)}`);
      if (c.defaultClients) log.info(`no --clients given: only loopback clients are admitted, from source ports below 1024 (root or the kernel client); pass --clients in exports(5) syntax to admit others`);
    }
    log.info(`serving on ${o.host}:${nfsPort}` + (mountPort !== undefined ? `, MOUNT also on ${mountPort}` : '') + `, portmapper: ${mode}`);
    return {
      nfsPort,
      ...(mountPort !== undefined && { mountPort }),
      portmap: mode,
      async close() {
        await portmap?.close();
        await rpc.close();
        await closeAll();
      },
    };
  } catch (err) {
    await portmap?.close();
    await rpc.close();
    await closeAll();
    throw err;
  }
}
