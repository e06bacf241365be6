/**
 * Portmapper v2 (RFC 1833 §3), the registry clients ask for MOUNT's and NFS's ports before
 * mounting. In-memory; SET and UNSET are accepted from loopback only, like rpcbind without -i,
 * so a remote host cannot redirect clients. CALLIT (an amplification vector) is PROC_UNAVAIL.
 *
 *   struct mapping { unsigned int prog; unsigned int vers; unsigned int prot; unsigned int port; };
 *   struct *pmaplist { mapping map; pmaplist next; };
 *   program PMAP_PROG { version PMAP_VERS {
 *     void         PMAPPROC_NULL(void)       = 0;
 *     bool         PMAPPROC_SET(mapping)     = 1;
 *     bool         PMAPPROC_UNSET(mapping)   = 2;
 *     unsigned int PMAPPROC_GETPORT(mapping) = 3;
 *     pmaplist     PMAPPROC_DUMP(void)       = 4;
 *     call_result  PMAPPROC_CALLIT(call_args) = 5;
 *   } = 2; } = 100000;
 */
import type { XdrReader, XdrWriter } from '@nfs-ts/xdr';
import type { ProgramVersion, RpcCall } from '../rpc/types.js';

export const PMAP_PROG = 100000;
export const PMAP_VERS = 2;
export const PMAP_PORT = 111;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const PMAPPROC = { NULL: 0, SET: 1, UNSET: 2, GETPORT: 3, DUMP: 4, CALLIT: 5 } as const;

export interface Mapping {
  readonly prog: number;
  readonly vers: number;
  readonly prot: number;
  readonly port: number;
}

export function readMapping(r: XdrReader): Mapping {
  return { prog: r.uint32(), vers: r.uint32(), prot: r.uint32(), port: r.uint32() };
}

export function writeMapping(w: XdrWriter, m: Mapping): XdrWriter {
  return w.uint32(m.prog).uint32(m.vers).uint32(m.prot).uint32(m.port);
}

/** Mappings keyed by prog/vers/prot, bounded so that local callers cannot grow it without end. */
export class PortmapRegistry {
  private readonly map = new Map<string, Mapping>();

  constructor(private readonly maxMappings = 1024) {}

  /** False when prog/vers/prot is already mapped (to any port) or the registry is full. */
  set(m: Mapping): boolean {
    const key = `${m.prog}/${m.vers}/${m.prot}`;
    if (this.map.has(key) || this.map.size >= this.maxMappings) return false;
    this.map.set(key, m);
    return true;
  }

  /** Removes prog/vers for every protocol; true if anything was removed. */
  unset(prog: number, vers: number): boolean {
    let removed = false;
    for (const [k, m] of this.map) {
      if (m.prog === prog && m.vers === vers) removed = this.map.delete(k);
    }
    return removed;
  }

  /** The port, or 0 when prog/vers/prot is not registered. */
  getport(prog: number, vers: number, prot: number): number {
    return this.map.get(`${prog}/${vers}/${prot}`)?.port ?? 0;
  }

  dump(): Mapping[] {
    return [...this.map.values()];
  }
}

export function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.');
}

export function createPortmapProgram(registry: PortmapRegistry): ProgramVersion {
  const change = (op: 'set' | 'unset') => (call: RpcCall, reply: XdrWriter) => {
    const m = readMapping(call.args);
    call.args.done();
    if (!isLoopback(call.peer.address)) return void reply.bool(false);
    reply.bool(op === 'set' ? registry.set(m) : registry.unset(m.prog, m.vers));
  };
  return {
    prog: PMAP_PROG,
    vers: PMAP_VERS,
    name: 'portmap',
    procedures: [
      (call) => call.args.done(),
      change('set'),
      change('unset'),
      (call, reply) => {
        const m = readMapping(call.args);
        call.args.done();
        reply.uint32(registry.getport(m.prog, m.vers, m.prot));
      },
      (call, reply) => {
        call.args.done();
        for (const m of registry.dump()) writeMapping(reply.bool(true), m);
        reply.bool(false);
      },
    ],
  };
}
