/**
 * Runs one NFSv3 procedure of nfs3Program over a FakeFs, in-process: arguments as bytes (often
 * annotated hex), the reply as bytes and as a reader positioned at its start.
 */
import { XdrReader, XdrWriter } from '@nfs-ts/xdr';
import type { Credential, RpcCall } from '../../src/rpc/types.js';
import type { ProgramVersion } from '../../src/rpc/types.js';
import type { UnionFs } from '../../src/vfs/types.js';
import { DEFAULT_OPTIONS, type ClientOptions } from '../../src/exports/client-rules.js';
import { ExportTable } from '../../src/exports/export-table.js';
import { oneUnion } from '../../src/exports/union-source.js';

export const ROOT_CRED: Credential = { flavor: 1, uid: 0, gid: 0, gids: [], machinename: 'test' };

export async function callProc(
  prog: ProgramVersion, proc: number, args: Buffer, cred: Credential = ROOT_CRED, transport: 'tcp' | 'udp' = 'tcp',
): Promise<{ bytes: Buffer; r: XdrReader }> {
  const call: RpcCall = {
    xid: 1, prog: prog.prog, vers: prog.vers, proc, cred,
    args: new XdrReader(args), peer: { address: '127.0.0.1', port: 700, transport },
  };
  const w = new XdrWriter(64);
  const p = prog.procedures[proc];
  if (!p) throw new Error(`no procedure ${proc}`);
  await p(call, w);
  const bytes = w.toBuffer();
  return { bytes, r: new XdrReader(bytes) };
}

/** Argument builder: an XdrWriter's bytes. */
export function args(build: (w: XdrWriter) => void): Buffer {
  const w = new XdrWriter(64);
  build(w);
  return Buffer.from(w.toBuffer());
}

/**
 * One export of `fs` at /union (fsid 0) admitting every client with `options` (default: rw,
 * root as root, any port), for the procedure tests that are not about admission.
 */
export function exportAll(fs: UnionFs, options: Partial<ClientOptions> = {}): ExportTable {
  const o: ClientOptions = { ...DEFAULT_OPTIONS, rw: true, squash: 'none', secure: false, ...options };
  return new ExportTable([{ path: '/union', fsid: 0, unions: oneUnion(fs, '/union'), clients: [{ spec: '*', kind: 'anonymous', options: o }] }]);
}
