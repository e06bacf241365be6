/**
 * `sudo npm run bench:fuzz`: the fuzzer of test/e2e/fuzz.test.ts at full size, 1,000,000
 * mutated calls (FUZZ_COUNT, FUZZ_SEED) against union-nfsd at its defaults with a writable
 * union. Prints sent/replies/closed/stalled, peak RSS, the procedure failures it logged, and
 * nfs-ls's time afterwards. Not part of CI.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cleanup, repo, run, say, startUnion, tmpDirs, which } from './harness.js';
import { rssMiB } from '../test/e2e/hostile/attacks.js';
import { fuzz } from '../test/e2e/fuzz/run.js';
import { NfsView } from '../test/helpers/nfs-view.js';

const COUNT = Number(process.env['FUZZ_COUNT'] ?? 1_000_000);
const SEED = Number(process.env['FUZZ_SEED'] ?? 0xf022);

async function main(): Promise<void> {
  if (!which('nfs-ls')) throw new Error('nfs-ls missing (apt-get install libnfs-utils)');
  const base = fs.mkdtempSync('/tmp/unfs-fuzz-');
  tmpDirs.push(base);
  for (const d of ['lower/dir', 'upper', 'work']) fs.mkdirSync(path.join(base, d), { recursive: true });
  fs.writeFileSync(path.join(base, 'lower/file'), 'a lower file\n');
  const u = await startUnion(['--lower', path.join(base, 'lower'), '--upper', path.join(base, 'upper'), '--workdir', path.join(base, 'work'),
    '--clients', '127.0.0.0/8(rw,no_root_squash,insecure)'], 'fuzz', base);
  const view = await NfsView.open(u.nfs);
  const handles = { root: view.root, file: (await view.lookup('/file'))!, dir: (await view.lookup('/dir'))!, exportPath: '/union' };
  view.close();
  const before = rssMiB(u.pid);
  let peak = before;
  const started = Date.now();
  let reported = 0;
  const r = await fuzz(u.nfs, handles, COUNT, SEED, (p) => {
    peak = Math.max(peak, rssMiB(u.pid));
    if (p.sent - reported >= 100_000) {
      reported = p.sent;
      say(`${p.sent} sent, ${p.replies} replies, RSS ${rssMiB(u.pid).toFixed(0)} MiB`);
    }
  });
  const failures = fs.readFileSync(path.join(base, 'union-fuzz.log'), 'utf8').split('\n').filter((l) => / error \[/.test(l) || /"level":"error"/.test(l));
  const t0 = Date.now();
  run('nfs-ls', [`nfs://127.0.0.1/union?nfsport=${u.nfs}&mountport=${u.mnt}`], { timeoutMs: 30_000 });
  const out = [
    `seed ${SEED}: ${r.sent} sent in ${((Date.now() - started) / 1000).toFixed(0)} s; ${r.replies} replies; ${r.closed} batches cut by a closed connection; ${r.stalled} stalled`,
    `server alive: ${u.child.exitCode === null}; RSS ${before.toFixed(0)} MiB -> peak ${peak.toFixed(0)} MiB; procedure failures logged: ${failures.length}; nfs-ls after: ${Date.now() - t0} ms`,
    ...failures.slice(0, 5),
  ].join('\n');
  process.stdout.write(`${out}\n`);
  fs.mkdirSync(path.join(repo, 'bench/results'), { recursive: true });
  fs.writeFileSync(path.join(repo, 'bench/results/fuzz.txt'), `${out}\n`);
}

main().then(() => cleanup(), (err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  cleanup();
  process.exit(1);
});
