/**
 * `sudo npm run bench:slow-disk`: issue 12's latency case. The lower is an ext4 file system on
 * a loop device whose image lies on the machine's disk (not on tmpfs), holding a tree of
 * SLOW_FILES files (default 100,000, in SLOW_DIRS = 100 directories) and rand.bin (16 MiB).
 * Each round, for each server in turn (the order alternates): the page cache is dropped,
 * rand.bin is read once (so its blocks are cached again, as a client's working set would be),
 * then one client walks the tree (nfs-ls -R: READDIRPLUS, so every inode is read from the disk)
 * while another reads 4 KiB blocks of rand.bin, one call in flight (nfsbench calls ... read4k),
 * for as long as the walk lasts. Reported: the reader's p50/p99/p99.9/max and the walk's time.
 * Servers: union-nfsd (that lower, an upper on tmpfs) and nfs-ganesha exporting the same
 * directory at its defaults. Not part of CI (it needs root and a real disk, and drops the
 * machine's page cache).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { buildClient, cleanup, mounts, repo, run, say, sleep, startGanesha, startRpcbind, startUnion, tmpDirs, which } from './harness.js';

const FILES = Number(process.env['SLOW_FILES'] ?? 100_000);
const DIRS = Number(process.env['SLOW_DIRS'] ?? 100);
const ROUNDS = Number(process.env['SLOW_ROUNDS'] ?? 3);
const RAND = 16 << 20;

interface Server { name: string; url: string }

function dropCaches(): void {
  run('sync', []);
  fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
}

/** nfs-ls -R of the export: its seconds. */
function walk(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const p = spawn('nfs-ls', ['-R', url], { stdio: ['ignore', 'ignore', 'inherit'] });
    const timer = setTimeout(() => p.kill('SIGKILL'), 600_000);
    p.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve((Date.now() - t0) / 1000);
      else reject(new Error(`nfs-ls -R exited with ${code}`));
    });
  });
}

/** The reader: 4 KiB READs of /rand.bin one at a time until `stop` settles (SIGUSR1 ends it); its JSON line. */
function reader(client: string, url: string, stop: Promise<unknown>): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const p = spawn(client, ['calls', url, '/tree', '10000000', '600', 'read4k'], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NFSBENCH_WARMUP: '200' } });
    let out = '';
    p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    const end = (): void => { p.kill('SIGUSR1'); };
    stop.then(end, end);
    p.once('exit', () => {
      const line = out.split('\n').find((l) => l.includes('calls-read4k'));
      if (line === undefined) reject(new Error(`the reader printed no result: ${out}`));
      else resolve(JSON.parse(line) as Record<string, number>);
    });
  });
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root (loop mount, drop_caches, ganesha)');
  for (const bin of ['nfs-ls', 'ganesha.nfsd', 'mkfs.ext4']) if (!which(bin)) throw new Error(`${bin} missing`);
  const client = buildClient();
  const base = fs.mkdtempSync('/var/tmp/unfs-slowdisk-');
  tmpDirs.push(base);
  const image = path.join(base, 'lower.img');
  const lower = path.join(base, 'lower');
  fs.mkdirSync(lower);
  fs.writeFileSync(image, '');
  fs.truncateSync(image, Math.max(1 << 30, FILES * 8192));
  run('mkfs.ext4', ['-q', '-F', '-N', String(FILES + DIRS + 10_000), '-E', 'lazy_itable_init=0,lazy_journal_init=0', image]);
  run('mount', ['-o', 'loop', image, lower]);
  mounts.push(lower);
  say(`generating ${FILES} files in ${DIRS} directories on ${image}`);
  const per = Math.ceil(FILES / DIRS);
  for (let d = 0; d < DIRS; d++) {
    const dir = path.join(lower, 'tree', `d${String(d).padStart(4, '0')}`);
    fs.mkdirSync(dir, { recursive: true });
    run(client, ['gen-files', dir, 'f%06d', '0', String(per), '1', '100']);
  }
  run(client, ['gen-pattern', path.join(lower, 'rand.bin'), String(RAND), '1']);
  const tmp = fs.mkdtempSync('/dev/shm/unfs-slowdisk-');
  tmpDirs.push(tmp);
  for (const d of ['upper', 'work']) fs.mkdirSync(path.join(tmp, d));

  await startRpcbind();
  const g = await startGanesha(`EXPORT { Export_Id = 1; Path = ${lower}; Pseudo = /plain; Access_Type = RW; Squash = None; ` +
    'Protocols = 3; Transports = TCP; SecType = sys; FSAL { Name = VFS; } }\n', tmp);
  const u = await startUnion(['--lower', lower, '--upper', path.join(tmp, 'upper'), '--workdir', path.join(tmp, 'work'),
    '--clients', '127.0.0.0/8(rw,no_root_squash,insecure)'], 'slowdisk', tmp);
  const servers: Server[] = [
    { name: 'union-nfsd', url: `nfs://127.0.0.1/union?nfsport=${u.nfs}&mountport=${u.mnt}&version=3` },
    { name: 'ganesha', url: `nfs://127.0.0.1${lower}?nfsport=${g.nfs}&mountport=${g.mnt}&version=3` }, // MOUNT takes the Path
  ];
  const lines: string[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    for (const s of round % 2 === 1 ? servers : [...servers].reverse()) {
      dropCaches();
      fs.readFileSync(path.join(lower, 'rand.bin'));
      // the server's own caches are warm from earlier rounds for ganesha (attributes, 60 s) and
      // union-nfsd (listings): both walk the disk again only where the kernel must
      await sleep(500);
      const w = walk(s.url);
      const r = await reader(client, s.url, w);
      const secs = await w;
      const line = `round ${round} ${s.name}: walk ${secs.toFixed(1)} s; 4 KiB reads meanwhile: ${r['ops']} calls, ` +
        `p50 ${(r['p50_us']! / 1000).toFixed(2)} ms, p99 ${(r['p99_us']! / 1000).toFixed(2)} ms, p99.9 ${(r['p999_us']! / 1000).toFixed(2)} ms, max ${(r['max_us']! / 1000).toFixed(1)} ms`;
      say(line);
      lines.push(line);
    }
  }
  const out = `${FILES} files in ${DIRS} directories on ext4 (loop image on the machine's disk), page cache dropped before each walk\n${lines.join('\n')}\n`;
  process.stdout.write(out);
  fs.mkdirSync(path.join(repo, 'bench/results'), { recursive: true });
  fs.writeFileSync(path.join(repo, 'bench/results/slow-disk.txt'), out);
}

main().then(() => { cleanup(); process.exit(0); }, (e: Error) => { process.stderr.write(`${e.stack ?? e.message}\n`); cleanup(); process.exit(1); });
