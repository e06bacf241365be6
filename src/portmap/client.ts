/**
 * A minimal portmapper v2 client: SET and UNSET to register with a system rpcbind (which
 * accepts them only from loopback and a reserved source port, unless it runs with -i), and
 * GETPORT, which the lock manager uses to find a client's lockd and statd.
 */
import { callUdp } from '../rpc/client.js';
import { IPPROTO_UDP, PMAP_PORT, PMAP_PROG, PMAP_VERS, PMAPPROC, writeMapping, type Mapping } from './program.js';

export interface PmapClientOptions {
  host?: string;
  port?: number;
  /** The address the call is sent from. */
  localAddress?: string;
  timeoutMs?: number;
  attempts?: number;
}

/** Calls SET, UNSET or GETPORT with a mapping; resolves to the uint32/bool result as a number. */
export async function pmapCall(proc: number, m: Mapping, o: PmapClientOptions = {}): Promise<number> {
  const r = await callUdp({
    host: o.host ?? '127.0.0.1',
    port: o.port ?? PMAP_PORT,
    prog: PMAP_PROG,
    vers: PMAP_VERS,
    proc,
    args: (w) => writeMapping(w, m),
    ...(o.localAddress !== undefined && { localAddress: o.localAddress }),
    ...(o.timeoutMs !== undefined && { timeoutMs: o.timeoutMs }),
    ...(o.attempts !== undefined && { attempts: o.attempts }),
  });
  return r.uint32();
}

/** The UDP port `host` registered for prog/vers, or 0 when it registered none. */
export function getPort(host: string, prog: number, vers: number, o: Omit<PmapClientOptions, 'host'> = {}): Promise<number> {
  return pmapCall(PMAPPROC.GETPORT, { prog, vers, prot: IPPROTO_UDP, port: 0 }, { ...o, host });
}
