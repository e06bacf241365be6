/**
 * Makes our programs findable by clients that only know port 111: when 111 is free (TCP and
 * UDP), serve our own portmapper there with our programs registered in it; when a system
 * rpcbind owns 111, register our programs with it instead (and unregister them on close).
 */
import { child } from '../log.js';
import { Dispatcher } from '../rpc/dispatcher.js';
import { createRpcServer } from '../rpc/server.js';
import type { ProgramVersion } from '../rpc/types.js';
import { pmapCall } from './client.js';
import { createPortmapProgram, IPPROTO_TCP, IPPROTO_UDP, PMAP_PORT, PMAP_PROG, PMAP_VERS, PMAPPROC, PortmapRegistry, type Mapping } from './program.js';

const log = child('portmap');

export interface PortmapOptions {
  /** What to register: each program version at its TCP port and, if served, its UDP port. */
  mappings: readonly Mapping[];
  /** Where our own portmapper listens; default '0.0.0.0'. */
  host?: string;
  /** Default 111; tests may move it. */
  port?: number;
  /**
   * Programs left to the system when its rpcbind already has them registered (a running
   * rpc.statd owns NSM); ours are registered only where nobody else's is.
   */
  keepRegistered?: readonly number[];
}

export interface PortmapHandle {
  /** 'own': we serve the portmapper; 'rpcbind': our programs are registered with the system's. */
  readonly mode: 'own' | 'rpcbind';
  readonly registry: PortmapRegistry | undefined;
  close(): Promise<void>;
}

/** Mappings for every registered program version of a dispatcher served on these ports. */
export function mappingsFor(programs: readonly ProgramVersion[], tcpPort: number, udpPort?: number): Mapping[] {
  return programs.flatMap((p) => [
    { prog: p.prog, vers: p.vers, prot: IPPROTO_TCP, port: tcpPort },
    ...(udpPort ? [{ prog: p.prog, vers: p.vers, prot: IPPROTO_UDP, port: udpPort }] : []),
  ]);
}

export async function startPortmap(o: PortmapOptions): Promise<PortmapHandle> {
  const port = o.port ?? PMAP_PORT;
  const registry = new PortmapRegistry();
  const server = createRpcServer(new Dispatcher().register(createPortmapProgram(registry)));
  try {
    await server.listenTcp(o.host ?? '0.0.0.0', port);
    await server.listenUdp(o.host ?? '0.0.0.0', port);
  } catch (e) {
    await server.close();
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EADDRINUSE' && code !== 'EACCES') throw e;
    log.info(`port ${port} is taken (${code}): registering with the system rpcbind`);
    return registerWithRpcbind(await notTaken(o.mappings, o.keepRegistered ?? [], port), port);
  }
  for (const m of [...mappingsFor([{ prog: PMAP_PROG, vers: PMAP_VERS, name: 'portmap', procedures: [] }], port, port), ...o.mappings]) registry.set(m);
  log.info(`portmapper serving on port ${port}`);
  return { mode: 'own', registry, close: () => server.close() };
}

/** The mappings without those of `keep` programs that the system's rpcbind already maps. */
async function notTaken(mappings: readonly Mapping[], keep: readonly number[], port: number): Promise<Mapping[]> {
  const out: Mapping[] = [];
  for (const m of mappings) {
    if (keep.includes(m.prog) && (await pmapCall(PMAPPROC.GETPORT, { ...m, port: 0 }, { port })) !== 0) {
      log.info(`program ${m.prog} v${m.vers} (prot ${m.prot}) is registered by another service: left to it`);
      continue;
    }
    out.push(m);
  }
  return out;
}

async function registerWithRpcbind(mappings: readonly Mapping[], port: number): Promise<PortmapHandle> {
  const versions = [...new Map(mappings.map((m) => [`${m.prog}/${m.vers}`, m])).values()];
  // A previous instance that died without UNSET leaves stale entries, and SET refuses to replace them.
  for (const m of versions) await pmapCall(PMAPPROC.UNSET, m, { port });
  for (const m of mappings) {
    if (!(await pmapCall(PMAPPROC.SET, m, { port }))) throw new Error(`rpcbind refused to register program ${m.prog} v${m.vers} prot ${m.prot} port ${m.port}`);
  }
  return {
    mode: 'rpcbind',
    registry: undefined,
    async close() {
      for (const m of versions) {
        await pmapCall(PMAPPROC.UNSET, m, { port }).catch((e: Error) => log.warn(`UNSET ${m.prog} v${m.vers}: ${e.message}`));
      }
    },
  };
}
