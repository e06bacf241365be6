/**
 * `sudo npm run bench:hostile`: issue 14's hostile-load cases at full size, against union-nfsd
 * at its default limits (test/e2e/limits.test.ts runs them reduced in CI). Not part of CI.
 *  - 300 slow-loris connections (a 1 MiB record announced, 10 bytes sent): RSS growth, how long
 *    until the server has closed them all (the record timeout, default 60 s), nfs-ls meanwhile;
 *  - 2,000 held idle connections from 40 addresses: nfs-ls while they are held, RSS growth;
 *  - 20 connections each pipelining 10,000 READs of 1 MiB without reading a reply: peak RSS.
 * Prints one line per case; nfs-ls must answer within 2 s in each.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cleanup, repo, run, say, startUnion, tmpDirs, which } from './harness.js';
import { allClosed, flood, rssMiB, slowLoris, unreadReads } from '../test/e2e/hostile/attacks.js';
import { NfsView } from '../test/helpers/nfs-view.js';

function nfsLsMs(port: number): number {
  const t0 = Date.now();
  const out = run('nfs-ls', [`nfs://127.0.0.1/union?nfsport=${port}&mountport=${port}`], { timeoutMs: 30_000 });
  if (!out.includes('big')) throw new Error(`nfs-ls did not list the export: ${out}`);
  return Date.now() - t0;
}

async function main(): Promise<void> {
  if (!which('nfs-ls')) throw new Error('nfs-ls missing (apt-get install libnfs-utils)');
  const base = fs.mkdtempSync('/tmp/unfs-hostile-');
  tmpDirs.push(base);
  fs.mkdirSync(path.join(base, 'lower'));
  fs.writeFileSync(path.join(base, 'lower/big'), Buffer.alloc(1 << 20, 0x42));
  const u = await startUnion(['--lower', path.join(base, 'lower'), '--clients', '127.0.0.0/8(rw,no_root_squash,insecure)'], 'hostile', base);
  const rest = rssMiB(u.pid);
  const lines: string[] = [`at rest: RSS ${rest.toFixed(0)} MiB, nfs-ls ${nfsLsMs(u.nfs)} ms`];

  let t0 = Date.now();
  const loris = await slowLoris(u.nfs, 300, 10);
  const lorisRss = rssMiB(u.pid) - rest;
  const lorisLs = nfsLsMs(u.nfs);
  await allClosed(loris);
  lines.push(`300 slow-loris connections: RSS +${lorisRss.toFixed(1)} MiB, nfs-ls ${lorisLs} ms, all closed ${((Date.now() - t0) / 1000).toFixed(1)} s after the first was opened`);

  t0 = Date.now();
  const held = await flood(u.nfs, 2000, 40);
  lines.push(`2,000 held connections (opened in ${((Date.now() - t0) / 1000).toFixed(1)} s): RSS +${(rssMiB(u.pid) - rest).toFixed(1)} MiB, nfs-ls ${nfsLsMs(u.nfs)} ms`);
  for (const s of held) s.destroy();

  const view = await NfsView.open(u.nfs);
  const fh = (await view.lookup('/big'))!;
  view.close();
  const readers = await unreadReads(u.nfs, fh, 20, 10_000);
  let peak = 0;
  for (let i = 0; i < 100; i++) {
    await new Promise((r) => setTimeout(r, 100));
    peak = Math.max(peak, rssMiB(u.pid) - rest);
  }
  lines.push(`20 connections x 10,000 unread 1 MiB READs: RSS peak +${peak.toFixed(1)} MiB over 10 s, nfs-ls ${nfsLsMs(u.nfs)} ms`);
  for (const s of readers) s.destroy();
  const out = lines.join('\n');
  process.stdout.write(`${out}\n`);
  fs.mkdirSync(path.join(repo, 'bench/results'), { recursive: true });
  fs.writeFileSync(path.join(repo, 'bench/results/hostile.txt'), `${out}\n`);
  say('done');
}

main().then(() => cleanup(), (err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  cleanup();
  process.exit(1);
});
