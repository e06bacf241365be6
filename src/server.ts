/**
 * Wiring: the exports (their unions and rules, src/exports/export-set.ts), the RPC programs,
 * the listeners, the portmapper, and, when asked, the metrics endpoint (src/metrics), which
 * the RPC layer and the NFS program report to.
 *
 *   clients ──TCP/UDP──▶ RpcServer ──▶ Dispatcher ─┬─▶ NFS v3  ─┐  ExportTable   ┌▶ UnionFs /a
 *                        (port, --mount-port)      ├─▶ MOUNT v3 ├─▶ (src/exports) ┼▶ UnionFs /b
 *                                                  ├─▶ NLM v4  ─┘                 └▶ ...
 *                                                  └─▶ NSM v1 ──▶ LockManager (src/nlm)
 *   portmapper :111 (own, or registration with the system's rpcbind)
 *
 * MOUNT answers on the NFS port as well, so one open port (plus 111) serves a client; a
 * separate --mount-port is for clients told `mountport=`. Every listener serves every program:
 * that costs nothing and spares a client that guesses wrong.
 */
import type { ExportConfig, ServerOptions } from './config.js';
import { child } from './log.js';
import { createMountProgram } from './mount/program.js';
import { nfs3Program } from './nfs3/program.js';
import { mappingsFor, startPortmap, type PortmapHandle } from './portmap/start-portmap.js';
import { BusyPoll, createRpcServer, Dispatcher, DuplicateRequestCache } from './rpc/index.js';
import { ExportSet } from './exports/export-set.js';
import { listenControl, type ControlServer } from './control.js';
import { ServerMetrics } from './metrics/metrics.js';
import { listenMetrics, type MetricsEndpoint } from './metrics/endpoint.js';
import { DEFAULT_GRACE_SECONDS } from './config.js';
import { LockManager } from './nlm/lock-manager.js';
import { nlm4Program } from './nlm/program.js';
import { sendGranted } from './nlm/callback.js';
import { createNsmProgram, SM_PROG } from './nsm/program.js';
import { StatusMonitor, type MonitoredClient } from './nsm/monitor.js';
import { stateHome } from './state-dir.js';
import { join } from 'node:path';
import { ImageStore } from './image/index.js';
import { DEFAULT_LIMITS } from './rpc/limits.js';
import { defaultCacheDir } from './image/cache.js';

const log = child('server');

export interface RunningServer {
  readonly nfsPort: number;
  readonly mountPort?: number;
  /** How clients find us: our own portmapper on 111, the system's rpcbind, or not at all. */
  readonly portmap: 'own' | 'rpcbind' | 'off';
  /** The metrics endpoint's port, when --metrics was given. */
  readonly metricsPort?: number;
  /** Serve these exports from now on (SIGHUP); listening settings stay as started. */
  reload(exports: readonly ExportConfig[]): Promise<void>;
  /** Discard one client's union of a per-client export (the reset command). */
  reset(exportPath: string, client: string): Promise<void>;
  close(): Promise<void>;
}

export async function startServer(o: ServerOptions): Promise<RunningServer> {
  const images = new ImageStore({ cacheDir: o.imageCache ?? defaultCacheDir(), plainHttp: o.plainHttp === true });
  const exports = new ExportSet(images);
  const monitor = new StatusMonitor(o.nsmDir ?? join(stateHome(), 'nsm'));
  let lockedBefore: MonitoredClient[];
  try {
    await exports.apply(o.exports);
    lockedBefore = monitor.open();
  } catch (err) {
    await exports.close();
    await images.close();
    throw err;
  }
  const mount = createMountProgram({
    exports: {
      mnt: async (dir, call) => (await exports.table().mnt(dir, call.peer, call.cred)).fh,
      list: () => exports.table().list(),
    },
  });
  const locks = new LockManager({ monitor: (client, caller, local) => monitor.monitor(client, caller, local), grant: (w) => sendGranted(w) });
  const graceSeconds = o.graceSeconds ?? DEFAULT_GRACE_SECONDS;
  // Grace only when someone may reclaim: with no client listed, no lock was held at the crash.
  if (lockedBefore.length > 0 && graceSeconds > 0) {
    locks.startGrace(graceSeconds * 1000);
    log.info(`lock grace period: ${graceSeconds} s in which only the ${lockedBefore.length} clients that held locks before the restart may reclaim them`);
  }
  const drc = new DuplicateRequestCache();
  const metrics = o.metrics === undefined ? undefined : new ServerMetrics({
    exports: () => exports.usage(),
    drcEntries: () => drc.size,
    locks: () => ({ held: locks.table.total, blocked: locks.blocked, grace: locks.inGrace() }),
  });
  const nfs = nfs3Program(() => exports.table(), {}, metrics);
  const nlm = nlm4Program({ exports: () => exports.table(), manager: locks });
  const nsm = createNsmProgram({ state: () => monitor.state, rebooted: (address, _name, state) => locks.freeClient(address, { state }) });
  const dispatcher = new Dispatcher({ drc, ...(metrics !== undefined && { observer: metrics }) }).register(nfs).register(mount).register(nlm).register(nsm);
  const rpc = createRpcServer(dispatcher, { busyPoll: new BusyPoll(o.busyPollUs), limits: { ...DEFAULT_LIMITS, ...o.limits } });
  let portmap: PortmapHandle | undefined;
  let control: ControlServer | undefined;
  let endpoint: MetricsEndpoint | undefined;
  const closeAll = async (): Promise<void> => {
    monitor.close();
    await endpoint?.close();
    await control?.close();
    await portmap?.close();
    await rpc.close();
    await exports.close();
    await images.close();
  };
  try {
    if (metrics !== undefined && o.metrics !== undefined) endpoint = await listenMetrics(metrics.registry, o.metrics.host, o.metrics.port);
    if (o.control !== undefined) control = await listenControl(o.control, { reset: (path, client) => exports.reset(path, client) });
    const nfsPort = await rpc.listenBoth(o.host, o.port);
    let mountPort: number | undefined;
    if (o.mountPort !== undefined) mountPort = await rpc.listenBoth(o.host, o.mountPort);
    if (o.portmap) {
      const mountAt = mountPort ?? nfsPort;
      // Being unfindable is worth a warning, not a refusal to serve: clients can still be
      // given the ports (the usual case for a non-root demo, where 111 is out of reach).
      portmap = await startPortmap({
        host: o.host,
        mappings: [...mappingsFor([nfs, nlm, nsm], nfsPort, nfsPort), ...mappingsFor([mount], mountAt, mountAt)],
        // A system rpc.statd keeps its registration: rebooted clients then notify it, not us.
        keepRegistered: [SM_PROG],
      }).catch((err: unknown) => {
        log.warn(`no portmapper: ${(err as Error).message}. Port 111 needs root, or a running rpcbind; ` +
          `clients must be given port=${nfsPort},mountport=${mountAt} (or pass --no-portmap to silence this)`);
        return undefined;
      });
    }
    const mode = portmap?.mode ?? 'off';
    // After the listeners are up: the clients told of the restart reclaim their locks at once.
    void monitor.notifyAll(lockedBefore);
    exports.describe();
    log.info(`serving on ${o.host}:${nfsPort}` + (mountPort !== undefined ? `, MOUNT also on ${mountPort}` : '') + `, portmapper: ${mode}`);
    return {
      nfsPort,
      ...(mountPort !== undefined && { mountPort }),
      portmap: mode,
      ...(endpoint !== undefined && { metricsPort: endpoint.port }),
      async reload(configs) {
        await exports.apply(configs);
        exports.describe();
      },
      reset: (exportPath, client) => exports.reset(exportPath, client),
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
