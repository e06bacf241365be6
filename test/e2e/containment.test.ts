/**
 * Issue 11: nothing a local process does to the layers moves a read or a write of the server
 * outside them. A swapper process exchanges layer subdirectories with symlinks to a directory
 * outside the layers (renameat2 RENAME_EXCHANGE, in a tight loop): lower `d0`, `d1`, `d2/sub`
 * and upper `u`. Meanwhile libnfs clients (the ops driver) read, list, create, write, rename
 * and link under them. The outside directory holds the same names with canary contents and a
 * canary-named file: no reply may carry a canary (a READ's data hash, a listing's names), and
 * the outside directory must come out unchanged, in both whiteout formats.
 * Before the union resolved its paths from the layers' root fds (src/vfs/beneath.ts), a READ of
 * d0/f through a handle taken before a swap returned the outside file.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { compileDriver, run } from './libnfs/driver.js';
import { gate, missing } from './libnfs/env.js';
import { cleanupTemp, layerFingerprint, makeTemp } from './libnfs/oracle.js';
import { TestServer } from './libnfs/server.js';

const CLIENTS = 3;
const ROUNDS = 100;
const CANARY = `CANARY-${process.pid}-${Date.now().toString(36)}`;

/** Exchanges each pair of names (a directory and a symlink) again and again until time is up. */
const SWAPPER = `
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
pairs = [(a.encode(), b.encode()) for a, b in zip(sys.argv[2::2], sys.argv[3::2])]
end, n = time.time() + float(sys.argv[1]), 0
while time.time() < end and n < 50_000_000:
    for a, b in pairs:
        if libc.renameat2(-100, a, -100, b, 2) != 0:
            sys.exit('renameat2: ' + os.strerror(ctypes.get_errno()))
        n += 1
    if os.path.exists(sys.argv[0] + '.stop'):
        break
for a, b in pairs:
    if os.path.islink(a):
        libc.renameat2(-100, a, -100, b, 2)
print(n)
`;

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

/**
 * Each client's script: reads and lists under the swapped directories (a name of its own each
 * round, so that the server looks it up and opens it then, not from a cache), and changes
 * beneath them.
 */
function script(c: number): string {
  const lines: string[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const n = `c${c}.${i}`;
    lines.push(`cat d0/f${i}`, 'ls d0', `ls d1/s${i}`, `cat d1/s${i}/x`, `cat d2/sub/h${i}`, `stat d2/sub/h${i}`, 'ls d2/sub', 'cat u/g', 'ls u',
      `create d0/${n} 644`, `write d0/${n} 0 64 ${i}`, `rename d0/${n} d0/r${n}`, `link d0/r${n} d0/l${n}`, `cat d0/r${n}`,
      `create u/${n} 644`, `write u/${n} 0 64 ${i}`, `rename u/${n} u/r${n}`, `link u/r${n} u/l${n}`,
      `create d2/sub/${n} 644`, `unlink d2/sub/${n}`, `chmod d1/s${i}/x 640`, `mkdir d2/sub/m${n} 755`);
  }
  return lines.join('\n') + '\n';
}

/** Files at these paths under dir, each holding `text(path)`. */
function files(dir: string, paths: string[], text: (p: string) => string): void {
  for (const p of paths) {
    fs.mkdirSync(join(dir, p, '..'), { recursive: true });
    fs.writeFileSync(join(dir, p), text(p));
  }
}

for (const format of ['oci', 'overlayfs'] as const) {
  test(`${format}: a local process swapping layer directories for symlinks never takes a read or a write outside the layers`, async (t) => {
    if (!gate(t, 'containment', [...missing({ root: true, libnfsDev: true, server: true })])) return;
    t.timeout(240_000);
    const base = makeTemp(`unfs-contain-${format}-`);
    t.teardown(() => cleanupTemp(base));
    const lower = join(base, 'lower'), upper = join(base, 'upper'), outside = join(base, 'outside');
    const rounds = Array.from({ length: ROUNDS }, (_, i) => i);
    files(lower, [...rounds.flatMap((i) => [`d0/f${i}`, `d1/s${i}/x`, `d2/sub/h${i}`]), 'd2/f'], (p) => `lower ${p}\n`);
    files(upper, ['u/g'], (p) => `upper ${p}\n`);
    fs.mkdirSync(join(base, 'work'));
    // the outside directory answers every name the clients use, with a canary, and lists
    // canary names
    const canaries = [...rounds.flatMap((i) => [`f${i}`, `s${i}/x`, `s${i}/${CANARY}`, `h${i}`, `sub/h${i}`]), 'g', CANARY, `sub/${CANARY}`];
    files(outside, canaries, (p) => `${CANARY} ${p}\n`);
    const canaryHashes = new Set(canaries.map((p) => sha256(`${CANARY} ${p}\n`)));
    const swapped = [join(lower, 'd0'), join(lower, 'd1'), join(lower, 'd2/sub'), join(upper, 'u')];
    const pairs: string[] = [];
    for (const d of swapped) {
      fs.symlinkSync(d.endsWith('sub') ? join(outside, 'sub') : outside, `${d}.x`);
      pairs.push(d, `${d}.x`);
    }
    const before = layerFingerprint(outside);

    const server = new TestServer({ lowers: [lower], upper, workdir: join(base, 'work'), whiteout: format });
    t.teardown(() => server.stop());
    await server.start();
    const ops = await compileDriver('ops');
    // the handles of the swapped directories are taken first, while they are directories
    const warm = await run(ops, [server.url()], { input: 'ls d0\nls d1\nls d2/sub\nls u\n', timeoutMs: 30_000 });
    t.is(warm.code, 0, warm.stderr);

    const swapperFile = join(base, 'swapper.py');
    fs.writeFileSync(swapperFile, SWAPPER);
    const swapper = spawn('python3', [swapperFile, '120', ...pairs], { stdio: ['ignore', 'pipe', 'pipe'] });
    let swapOut = '';
    swapper.stdout.on('data', (b: Buffer) => { swapOut += b.toString(); });
    swapper.stderr.on('data', (b: Buffer) => { swapOut += b.toString(); });
    const swapperDone = new Promise((r) => swapper.once('exit', r));
    t.teardown(() => { swapper.kill('SIGKILL'); });

    const results = await Promise.all(Array.from({ length: CLIENTS }, (_, c) => run(ops, [server.url()], { input: script(c), timeoutMs: 200_000 })));
    fs.writeFileSync(swapperFile + '.stop', '');
    await swapperDone;
    const swaps = Number.parseInt(swapOut.trim(), 10);
    t.true(swaps > 1000, `the swapper exchanged the directories (${swapOut.trim()})`);

    let ok = 0, failed = 0, lowerReads = 0;
    const byOp = new Map<string, string>();
    for (const [c, r] of results.entries()) {
      t.is(r.code, 0, `client ${c}: ${r.stderr}`);
      for (const line of r.stdout.split('\n').filter(Boolean)) {
        const [, op, status, escaped = ''] = line.split('\t') as [string, string, string, string?];
        const result = escaped.replace(/\\x([0-9a-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))); // ops.c esc_puts
        if (status === 'OK') ok++;
        else failed++;
        t.false(line.includes(CANARY), `a reply named a file outside the layers: ${line}`);
        const hash = result.split(' ')[1];
        t.false(hash !== undefined && canaryHashes.has(hash), `a READ returned data from outside the layers: ${line}`);
        if (op.startsWith('cat d0/f') && hash === sha256(`lower ${op.slice(4)}\n`)) lowerReads++;
        const kind = op.split(' ').slice(0, 2).join(' ').replace(/c\d+\.\d+/, 'N').replace(/\d+$/, 'I');
        if (!byOp.has(kind)) byOp.set(kind, `${status} ${result}`);
      }
    }
    t.log(`${format}: ${swaps} swaps; ${ok} calls OK, ${failed} failed (a swapped name is a symlink, or is gone, for the union); ${lowerReads} reads of d0/f<i> read the lower file`);
    t.log([...byOp].map(([k, v]) => `${k}: ${v}`).join('\n'));
    t.true(ok > CLIENTS * ROUNDS, 'the clients got work done');
    t.is(layerFingerprint(outside), before, 'nothing outside the layers was written');
    for (const d of swapped) t.true(fs.lstatSync(d).isDirectory(), `${d} is a directory again`);
  });
}
