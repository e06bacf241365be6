/**
 * `sudo npm run bench:locks`: lock latency of union-nfsd and nfs-ganesha, side by side. Both
 * serve one directory on tmpfs; in interleaved rounds (order alternating) nfsbench's `locks`
 * workload times NLM4 TEST, LOCK and UNLOCK of one file, one call at a time, through libnfs's
 * raw RPC layer. Prints per procedure the median over rounds of each server's p50 and p99 and
 * of the per-round ratios ganesha / union-nfsd (above 1.0: union-nfsd is faster).
 *
 * ganesha runs at its defaults except what the main bench also sets (fixed ports, NFSv3, no
 * grace period at start) and with its lock manager on, as its users run it: that needs a
 * portmapper on port 111 and rpc.statd (ganesha asks statd to monitor every client that
 * locks), which run here in a private mount namespace so they touch nothing of the host's.
 * Port 111 must be free. union-nfsd monitors clients itself (its --nsm-dir, on the tmpfs).
 * Environment: LOCK_ROUNDS (default 7), LOCK_CALLS (default 5000).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { latencyRounds, latencyTable } from './report.js';
import { buildClient, canConnect, children, freePort, mounts, run, say, startUnion, tmpDirs, waitFor, which } from './harness.js';

const ROUNDS = Math.max(1, Number(process.env['LOCK_ROUNDS'] ?? 7) || 1);
const CALLS = Math.max(100, Number(process.env['LOCK_CALLS'] ?? 5000) || 5000);

/** rpcbind, rpc.statd and ganesha (NLM on) in a mount namespace of their own; resolves to its ports. */
async function startGaneshaWithNlm(exportDir: string, dir: string): Promise<{ nfs: number; mnt: number; nlm: number }> {
  if (await canConnect({ host: '127.0.0.1', port: 111 })) throw new Error('port 111 is taken: ganesha\'s lock manager needs its own rpcbind and rpc.statd here');
  const [nfs, mnt, nlm] = [await freePort(), await freePort(), await freePort()];
  const conf = `NFS_CORE_PARAM { NFS_Port = ${nfs}; MNT_Port = ${mnt}; NLM_Port = ${nlm}; Protocols = 3; Enable_RQUOTA = false; }\n` +
    'NFSV4 { Graceless = true; }\nLOG { Default_Log_Level = WARN; }\n' +
    `EXPORT { Export_Id = 1; Path = ${exportDir}; Pseudo = /union; Access_Type = RW; Squash = None; Protocols = 3; Transports = TCP; SecType = sys; FSAL { Name = VFS; } }\n`;
  fs.writeFileSync(path.join(dir, 'ganesha.conf'), conf);
  const script = 'mount -t tmpfs tmpfs /run && mkdir -p /run/rpcbind /run/ganesha && mount -t tmpfs tmpfs /var/lib/nfs && ' +
    // In the foreground (backgrounded by sh) so that they stay in this process group, which is killed at the end.
    'mkdir -p /var/lib/nfs/sm /var/lib/nfs/sm.bak && (rpcbind -f -w &) && sleep 0.5 && (rpc.statd -F --no-notify &) && sleep 0.5 && ' +
    `exec ganesha.nfsd -F -L ${dir}/ganesha.log -f ${dir}/ganesha.conf -p /run/ganesha/ganesha.pid -N NIV_WARN`;
  const p = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { stdio: ['ignore', 'ignore', 'inherit'], detached: true });
  children.add(p);
  process.on('exit', () => { try { process.kill(-p.pid!, 'SIGKILL'); } catch { /* gone */ } });
  await waitFor('ganesha', () => canConnect({ host: '127.0.0.1', port: nlm }), 60_000);
  return { nfs, mnt, nlm };
}

async function main(): Promise<void> {
  for (const bin of ['ganesha.nfsd', 'rpcbind', 'rpc.statd', 'unshare']) if (!which(bin)) throw new Error(`${bin} missing (apt-get install nfs-ganesha-vfs rpcbind nfs-common)`);
  const client = buildClient();
  const base = fs.mkdtempSync('/tmp/unfs-locks-');
  tmpDirs.push(base);
  run('mount', ['-t', 'tmpfs', '-o', 'size=256m', 'union-nfsd-locks', base]);
  mounts.push(base);
  for (const d of ['lower', 'upper', 'work', 'plain', 'nsm']) fs.mkdirSync(path.join(base, d));
  for (const d of ['lower', 'plain']) fs.writeFileSync(path.join(base, d, 'rand.bin'), 'a file to lock\n');
  const u = await startUnion(['--lower', path.join(base, 'lower'), '--upper', path.join(base, 'upper'), '--workdir', path.join(base, 'work'),
    '--nsm-dir', path.join(base, 'nsm')], 'locks', base);
  const g = await startGaneshaWithNlm(path.join(base, 'plain'), base);
  const sides = [
    { tag: 'union-nfsd', url: `nfs://127.0.0.1/union?nfsport=${u.nfs}&mountport=${u.mnt}&version=3`, nlm: u.nfs },
    // NFSv3 clients mount a ganesha export by its Path.
    { tag: 'ganesha', url: `nfs://127.0.0.1${path.join(base, 'plain')}?nfsport=${g.nfs}&mountport=${g.mnt}&version=3`, nlm: g.nlm },
  ];
  const l = await latencyRounds(sides, ROUNDS, async (s) => (await promisify(execFile)(client, ['locks', s.url, String(s.nlm), String(CALLS), '60'])).stdout,
    (round) => say(`round ${round}/${ROUNDS}`));
  console.log(`\n${latencyTable(l, 'union-nfsd', 'ganesha')}`);
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(err);
  process.exit(1);
});
