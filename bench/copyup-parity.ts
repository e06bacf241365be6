/**
 * `sudo npm run bench:copyup`: union-nfsd's copy-up against kernel overlayfs's, with no NFS in
 * between, on the same file system, the same 1 GiB lower file, turn about (the order
 * alternates per round). It shows what the copy-up row of `npm run bench` cannot: how the two
 * copy mechanisms compare when the host's memory, not the servers, decides most of the time.
 *
 * - kernel: a fresh overlayfs mount (index=on,nfs_export=on, as the main bench mounts it for
 *   ganesha), then open(O_RDWR) of the file (overlayfs copies up at open), a 4 KiB write at 0,
 *   fsync, close.
 * - union: a fresh union (openUnion, overlayfs format) over the same lower, then the VFS's
 *   WRITE of 4 KiB at 0, FILE_SYNC (copy-up.ts: copy_file_range on the thread pool, fsync,
 *   rename into place), as a WRITE from a client runs it.
 * Each copy is removed (the upper emptied) before the next one, so both fill the memory the
 * other just freed (an untimed copy goes first; harness.ts holdFreedMemory says why). Prints
 * each round's seconds and the median of the per-round ratios (kernel seconds / union
 * seconds: above 1.0 union-nfsd is faster).
 *
 * Environment: BENCH_ROUNDS (default 10), BENCH_COPYUP_MIB (default 1024), BENCH_FS=dir (the
 * disk under BENCH_TMP instead of a private tmpfs), BENCH_TMP (base dir).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openUnion } from '../src/vfs/index.js';
import { StableHow } from '../src/vfs/types.js';
import { median } from './report.js';
import { buildClient, holdFreedMemory, mounts, run, say, tmpDirs } from './harness.js';

const ROUNDS = Math.max(1, Number(process.env['BENCH_ROUNDS'] ?? 10) || 1);
const SIZE = Math.max(1, Number(process.env['BENCH_COPYUP_MIB'] ?? 1024) || 1024) * 1024 * 1024;
const ROOT = { uid: 0, gid: 0, gids: [] as number[] };
const BLOCK = Buffer.alloc(4096, 0xa5);

function fresh(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
}

function kernelCopyUp(base: string, lower: string): number {
  const [upper, work, merged] = ['ov-upper', 'ov-work', 'ov-merged'].map((d) => path.join(base, d)) as [string, string, string];
  for (const d of [upper, work, merged]) fresh(d);
  run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work},index=on,nfs_export=on`, merged]);
  try {
    const t0 = performance.now();
    const fd = fs.openSync(path.join(merged, 'big.bin'), fs.constants.O_RDWR);
    fs.writeSync(fd, BLOCK, 0, BLOCK.length, 0);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    return (performance.now() - t0) / 1000;
  } finally {
    run('umount', [merged]);
    for (const d of [upper, work]) fs.rmSync(d, { recursive: true, force: true });
  }
}

async function unionCopyUp(base: string, lower: string): Promise<number> {
  const [upper, work] = ['u-upper', 'u-work'].map((d) => path.join(base, d)) as [string, string];
  for (const d of [upper, work]) fresh(d);
  const u = await openUnion({ lowers: [lower], upper, workdir: work, whiteoutFormat: 'overlayfs' });
  try {
    const id = u.lookup(u.root, Buffer.from('big.bin'), ROOT);
    const t0 = performance.now();
    await u.write(id, 0, BLOCK, StableHow.FILE_SYNC, ROOT);
    return (performance.now() - t0) / 1000;
  } finally {
    await u.close();
    for (const d of [upper, work]) fs.rmSync(d, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root (kernel overlayfs mounts)');
  holdFreedMemory();
  const client = buildClient();
  const base = fs.mkdtempSync(path.join(process.env['BENCH_TMP'] ?? os.tmpdir(), 'unfs-copyup-bench-'));
  tmpDirs.push(base);
  if (process.env['BENCH_FS'] !== 'dir') {
    run('mount', ['-t', 'tmpfs', '-o', `size=${Math.ceil((3 * SIZE) / 2 ** 30) + 1}g,mode=0755`, 'unfs-copyup-bench', base]);
    mounts.push(base);
  }
  const lower = path.join(base, 'lower');
  fs.mkdirSync(lower);
  run(client, ['gen-pattern', path.join(lower, 'big.bin'), String(SIZE), '7']);
  say(`${ROUNDS} rounds, ${SIZE / 2 ** 20} MiB, ${process.env['BENCH_FS'] === 'dir' ? `disk under ${base}` : 'tmpfs'}`);
  kernelCopyUp(base, lower); // untimed: the first copy of the run fills memory nobody freed lately
  const ratios: number[] = [];
  const seconds = { kernel: [] as number[], union: [] as number[] };
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? (['kernel', 'union'] as const) : (['union', 'kernel'] as const);
    const t: Record<string, number> = {};
    for (const who of order) t[who] = who === 'kernel' ? kernelCopyUp(base, lower) : await unionCopyUp(base, lower);
    seconds.kernel.push(t['kernel']!);
    seconds.union.push(t['union']!);
    ratios.push(t['kernel']! / t['union']!);
    say(`round ${r + 1}: kernel overlayfs ${t['kernel']!.toFixed(3)} s, union-nfsd ${t['union']!.toFixed(3)} s (${order[0]} first)`);
  }
  const f = (xs: number[]): string => `${median(xs).toFixed(3)} (${Math.min(...xs).toFixed(3)}–${Math.max(...xs).toFixed(3)})`;
  say(`kernel overlayfs s: ${f(seconds.kernel)}; union-nfsd s: ${f(seconds.union)}`);
  say(`union/kernel speed, median of per-round ratios: ${median(ratios).toFixed(2)}x (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
