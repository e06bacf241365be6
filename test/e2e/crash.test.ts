/**
 * Issue 4, crash test: SIGKILL the server while it copies up a 1 GiB lower file (triggered by a
 * 4-byte WRITE at offset 0 from driver/ops.c over libnfs: nfs_open O_WRONLY + nfs_pwrite),
 * restart it on the same layers, then: the merged file is the old content or the new one
 * (old with its first 4 bytes changed), never partial (size + sha256 against both), no
 * temporaries anywhere in the merged tree, the workdir temp area is emptied on start, and the
 * lower layer is byte-identical. UNFS_CRASH_MIB overrides the size (default 1024).
 */
import test from 'ava';
import * as fs from 'node:fs';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { compileDriver, run, runOk } from './libnfs/driver.js';
import { requireEnv } from './libnfs/env.js';
import { cleanupTemp, makeTemp } from './libnfs/oracle.js';
import { TestServer } from './libnfs/server.js';

const MIB = Number(process.env['UNFS_CRASH_MIB'] ?? 1024);
const SEED = 9;

/** The 4 bytes driver/ops.c `write P 0 4 SEED` writes (its fill()). */
function opsFill(seed: number, n: number, off = 0): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) { const k = off + i; b[i] = (seed * 131 + k * 7 + (k >>> 8) + (k >>> 16)) & 0xff; }
  return b;
}

/** sha256 of a stream of a child's stdout (nfs-cat of a large file), and its length. */
function hashOf(cmd: string, args: string[], timeoutMs: number): Promise<{ sha: string; size: number; code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const h = createHash('sha256');
    let size = 0, stderr = '';
    c.stdout.on('data', (b: Buffer) => { size += b.length; h.update(b); });
    c.stderr.on('data', (b: Buffer) => { if (stderr.length < 4000) stderr += b.toString(); });
    const timer = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('error', reject);
    c.on('close', (code) => { clearTimeout(timer); resolve({ sha: h.digest('hex'), size, code, stderr }); });
  });
}

function sha256File(p: string): string {
  const h = createHash('sha256');
  const fd = fs.openSync(p, 'r');
  const buf = Buffer.allocUnsafe(8 << 20);
  try {
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) h.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

test.serial(`SIGKILL during the copy-up of a ${MIB} MiB lower file: old or new content after restart, never partial`, async (t) => {
  if (!requireEnv(t, { root: true, libnfsDev: true, libnfsUtils: true, server: true })) return;
  t.timeout(6 * 60_000);
  const base = makeTemp('crash');
  const server = new TestServer({ lowers: [] });
  t.teardown(async () => {
    await server.stop('SIGKILL');
    cleanupTemp(base);
  });
  const lower = `${base}/lower`, upper = `${base}/upper`, work = `${base}/work`;
  for (const d of [lower, upper, work]) fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(`${lower}/keep.txt`, 'other lower file\n');

  // the lower file: a 1 MiB non-repeating-within-itself block, rotated per MiB, written fast
  const block = Buffer.alloc(1 << 20);
  for (let i = 0; i < block.length; i += 4) block.writeUInt32LE((Math.imul(i, 2654435761) ^ 0x5bd1e995) >>> 0, i);
  const oldH = createHash('sha256'), newH = createHash('sha256');
  const fd = fs.openSync(`${lower}/big.bin`, 'w');
  try {
    for (let m = 0; m < MIB; m++) {
      block.writeUInt32LE(m, 8); // every MiB differs, so a shifted or repeated block shows
      fs.writeSync(fd, block);
      oldH.update(block);
      if (m === 0) {
        const first = Buffer.from(block);
        opsFill(SEED, 4).copy(first, 0);
        newH.update(first);
      } else newH.update(block);
    }
  } finally {
    fs.closeSync(fd);
  }
  const size = MIB << 20;
  const oldSha = oldH.digest('hex'), newSha = newH.digest('hex');
  const lowerMeta = fs.statSync(`${lower}/big.bin`);

  Object.assign(server.args, { lowers: [lower], upper, workdir: work });
  await server.start();
  const ops = await compileDriver('ops');
  const tmpArea = `${work}/union-nfsd/tmp`;
  const writer = run(ops, [server.url()], { input: `write big.bin 0 4 ${SEED}\n`, timeoutMs: 120_000 });

  // kill as soon as the temporary holds data (bounded wait: 10 s)
  let tmpSeen = 0;
  const t0 = Date.now();
  while (Date.now() - t0 < 10_000) {
    for (const n of fs.existsSync(tmpArea) ? fs.readdirSync(tmpArea) : []) {
      try { tmpSeen = Math.max(tmpSeen, fs.statSync(`${tmpArea}/${n}`).size); } catch { /* renamed */ }
    }
    if (tmpSeen > 0) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  await server.stop('SIGKILL');
  const w = await writer;
  t.log(`killed with a temporary of ${tmpSeen} bytes (of ${size}); writer: ${w.stdout.trim() || w.stderr.trim().slice(0, 200)}`);
  t.true(tmpSeen > 0 && tmpSeen < size, 'the kill landed during the data copy');

  await server.start();
  t.deepEqual(fs.readdirSync(tmpArea), [], 'workdir temp area emptied on start');

  const listing = await runOk('nfs-ls', [server.url('/')], { timeoutMs: 30_000 });
  const names = listing.split('\n').map((l) => l.trim().split(/\s+/).pop() ?? '').filter((n) => n && n !== '.' && n !== '..').sort();
  t.deepEqual(names, ['big.bin', 'keep.txt'], `merged tree shows no temporaries:\n${listing}`);
  t.deepEqual(fs.readdirSync(upper).filter((n) => n !== 'big.bin'), [], 'nothing else in upper');

  const got = await hashOf('nfs-cat', [server.url('/big.bin')], 180_000);
  t.is(got.code, 0, got.stderr);
  t.is(got.size, size, 'full size, never truncated');
  t.true(got.sha === oldSha || got.sha === newSha, `content is the old or the new one (sha ${got.sha})`);
  t.log(`after restart the file holds the ${got.sha === oldSha ? 'old' : got.sha === newSha ? 'new' : 'WRONG'} content`);

  // the write can be redone after the restart and then reads as the new content
  t.regex(await runOk(ops, [server.url()], { input: `write big.bin 0 4 ${SEED}\n`, timeoutMs: 120_000 }), /\tOK$/m);
  const again = await hashOf('nfs-cat', [server.url('/big.bin')], 180_000);
  t.is(again.sha, newSha, 'new content after a completed copy-up');
  await server.stop();
  t.deepEqual(fs.readdirSync(tmpArea), [], 'no temporaries after a clean stop');

  const after = fs.statSync(`${lower}/big.bin`);
  t.is(sha256File(`${lower}/big.bin`), oldSha, 'lower file byte-identical');
  t.deepEqual([after.size, after.mode, after.mtimeMs, after.ino], [lowerMeta.size, lowerMeta.mode, lowerMeta.mtimeMs, lowerMeta.ino], 'lower metadata unchanged');
});
