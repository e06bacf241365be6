/**
 * Issue 14, the CI slice of the fuzzer: 100,000 calls of every program and procedure the
 * server serves, built valid around real file handles and then mutated (test/e2e/fuzz/calls.ts),
 * over TCP and UDP to the real server with a writable union. The server must live, answer
 * every batch it does not close (no hang), keep its memory bounded, log no procedure failure,
 * leave the lower layer byte-identical, and then serve nfs-ls within 2 s. FUZZ_SEED reproduces
 * a run; bench/fuzz.ts runs 1,000,000.
 */
import test from 'ava';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runOk } from './libnfs/driver.js';
import { gate, missing } from './libnfs/env.js';
import { cleanupTemp, layerFingerprint, makeTemp } from './libnfs/oracle.js';
import { INSECURE_LOOPBACK, TestServer } from './libnfs/server.js';
import { NfsView } from '../helpers/nfs-view.js';
import { rssMiB } from './hostile/attacks.js';
import { fuzz } from './fuzz/run.js';

const SEED = Number(process.env['FUZZ_SEED'] ?? 0x1f0221);
const COUNT = Number(process.env['FUZZ_COUNT'] ?? 100_000);

test.serial(`fuzz: ${COUNT} mutated calls of every procedure over TCP and UDP; the server lives, never hangs, stays bounded and serves nfs-ls after`, async (t) => {
  if (!gate(t, 'fuzz e2e', missing({ root: true, libnfsUtils: true, server: true }))) return;
  t.timeout(8 * 60_000);
  const base = makeTemp('fuzz');
  for (const d of ['lower/dir', 'upper', 'work']) mkdirSync(join(base, d), { recursive: true });
  writeFileSync(join(base, 'lower/file'), 'a lower file\n');
  const server = new TestServer({ lowers: [join(base, 'lower')], upper: join(base, 'upper'), workdir: join(base, 'work'), clients: INSECURE_LOOPBACK, extraArgs: ['--busy-poll', '0'] });
  const lowerBefore = layerFingerprint(join(base, 'lower'));
  try {
    await server.start();
    const view = await NfsView.open(server.ready!.nfsPort);
    const handles = { root: view.root, file: (await view.lookup('/file'))!, dir: (await view.lookup('/dir'))!, exportPath: '/union' };
    view.close();
    const before = rssMiB(server.pid!);
    let peak = before;
    const started = Date.now();
    const r = await fuzz(server.ready!.nfsPort, handles, COUNT, SEED, () => {
      peak = Math.max(peak, rssMiB(server.pid!));
    });
    t.log(`seed ${SEED}: ${r.sent} sent in ${((Date.now() - started) / 1000).toFixed(1)} s, ${r.replies} replies, ${r.closed} batches cut by a closed connection, ${r.stalled} stalled; RSS ${before.toFixed(0)} -> peak ${peak.toFixed(0)} MiB`);
    t.true(server.running, 'the server lives');
    t.is(r.stalled, 0, 'no batch went unanswered on an open connection (a hang)');
    t.true(r.replies > r.sent / 3, `calls were answered, not all cut short by closed connections (${r.replies} of ${r.sent})`);
    t.true(peak - before < 256, `RSS grew ${(peak - before).toFixed(0)} MiB`);
    const failures = server.lines().filter((l) => / error \[/.test(l));
    t.deepEqual(failures.slice(0, 10), [], 'no procedure failed (each would be a bug: a SYSTEM_ERR or SERVERFAULT answer)');
    const t0 = Date.now();
    t.regex(await runOk('nfs-ls', [server.url()], { timeoutMs: 10_000 }), /file/);
    t.true(Date.now() - t0 < 2000, 'nfs-ls is served within 2 s after the fuzzing');
    t.is(layerFingerprint(join(base, 'lower')), lowerBefore, 'the lower layer is byte-identical');
  } finally {
    await server.stop();
    cleanupTemp(base);
  }
});
