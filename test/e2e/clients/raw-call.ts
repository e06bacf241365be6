/**
 * A bare RPC caller for the one thing libnfs cannot do: present a handle taken elsewhere.
 *   node raw-call.js mnt HOST PORT PATH        -> prints "<mountstat3> <handle hex>"
 *   node raw-call.js getattr HOST PORT HANDLE  -> prints "<nfsstat3>"
 * Runs inside a client's network namespace (clients.test.ts), from an unprivileged port, as
 * AUTH_SYS uid 0.
 */
import { RpcClient } from '../../helpers/rpc-client.js';
import { MOUNT_PROGRAM, MOUNTPROC3 } from '../../../src/mount/program.js';
import { NFS_PROGRAM, NFSPROC3 } from '../../../src/nfs3/constants.js';

const [op, host, port, arg] = process.argv.slice(2) as [string, string, string, string];
const c = await RpcClient.connect('tcp', host, Number(port));
if (op === 'mnt') {
  const r = await c.ok(MOUNT_PROGRAM, 3, MOUNTPROC3.MNT, (w) => w.string(arg));
  const stat = r.enum();
  process.stdout.write(`${stat} ${stat === 0 ? Buffer.from(r.opaque(64)).toString('hex') : ''}\n`);
} else {
  const r = await c.ok(NFS_PROGRAM, 3, NFSPROC3.GETATTR, (w) => w.opaque(Buffer.from(arg, 'hex')));
  process.stdout.write(`${r.uint32()}\n`);
}
c.close();
