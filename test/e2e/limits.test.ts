/**
 * Issue 14, at reduced size for CI: the real server under hostile load keeps serving a real
 * client (nfs-ls within 2 s) and stays within a memory bound:
 *  - slow loris: 300 connections (from 10 addresses) that announce a 1 MiB record and send
 *    10 bytes hold 64 KiB each, not 1 MiB, and are closed at the record timeout;
 *  - connection flood: 1,000 idle connections from 20 addresses;
 *  - pipelined READs: 10 connections each send 200 READs of 1 MiB and never read a reply:
 *    the server stops dispatching (a 16 MiB budget, 16 calls in flight) instead of holding
 *    2 GiB of replies.
 * The full sizes: bench/hostile.ts (npm run bench:hostile).
 */
import test from 'ava';
import type net from 'node:net';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runOk } from './libnfs/driver.js';
import { gate, missing } from './libnfs/env.js';
import { cleanupTemp, makeTemp } from './libnfs/oracle.js';
import { INSECURE_LOOPBACK, TestServer } from './libnfs/server.js';
import { NfsView } from '../helpers/nfs-view.js';
import { allClosed, flood, rssMiB, slowLoris, unreadReads } from './hostile/attacks.js';

/** nfs-ls of the export, timed; it must answer within 2 s. */
async function served(t: import('ava').ExecutionContext, server: TestServer, what: string): Promise<void> {
  const t0 = Date.now();
  const out = await runOk('nfs-ls', [server.url()], { timeoutMs: 10_000 });
  const ms = Date.now() - t0;
  t.true(out.includes('big'), `${what}: nfs-ls lists the export`);
  t.true(ms < 2000, `${what}: nfs-ls answered in ${ms} ms`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test.serial('hostile load: slow loris, a connection flood and unread pipelined READs; the server keeps serving nfs-ls within 2 s and its memory bounded', async (t) => {
  if (!gate(t, 'limits e2e', missing({ root: true, libnfsUtils: true, server: true }))) return;
  t.timeout(3 * 60_000);
  const base = makeTemp('limits');
  const lower = join(base, 'lower');
  mkdirSync(lower);
  writeFileSync(join(lower, 'big'), Buffer.alloc(1 << 20, 0x42));
  const server = new TestServer({ lowers: [lower], clients: INSECURE_LOOPBACK, extraArgs: ['--record-timeout', '4', '--buffer-budget', '16', '--max-calls', '16', '--busy-poll', '0'] });
  const sockets: net.Socket[] = [];
  try {
    await server.start();
    const pid = server.pid!;
    await served(t, server, 'at rest');
    const rest = rssMiB(pid);

    const port = server.ready!.nfsPort;
    const loris = await slowLoris(port, 300, 10);
    sockets.push(...loris);
    await sleep(500);
    const lorisRss = rssMiB(pid) - rest;
    t.log(`300 slow-loris connections: RSS +${lorisRss.toFixed(1)} MiB`);
    t.true(lorisRss < 64, `300 half-sent 1 MiB records cost ${lorisRss.toFixed(1)} MiB`);
    await served(t, server, 'during the slow loris');
    t.true(await Promise.race([allClosed(loris).then(() => true), sleep(15_000).then(() => false)]), 'every slow-loris connection is closed at the record timeout');

    const held = await flood(port, 1000, 20);
    sockets.push(...held);
    await served(t, server, 'with 1,000 connections held');
    t.log(`1,000 held connections: RSS +${(rssMiB(pid) - rest).toFixed(1)} MiB`);
    for (const s of held) s.destroy();

    const view = await NfsView.open(port);
    sockets.push(...await unreadReads(port, (await view.lookup('/big'))!, 10, 200));
    let peak = 0;
    for (let i = 0; i < 20; i++) {
      await sleep(100);
      peak = Math.max(peak, rssMiB(pid) - rest);
    }
    t.log(`10 connections x 200 unread 1 MiB READs: RSS peak +${peak.toFixed(1)} MiB`);
    // Without the limits each connection would run 64 READs at once: 640 MiB of replies.
    t.true(peak < 96, `2,000 pipelined READs (2 GiB of replies) held ${peak.toFixed(1)} MiB with a 16 MiB budget and 16 calls`);
    await served(t, server, 'while READ replies pile up unread');
    view.close();
  } finally {
    for (const s of sockets) s.destroy();
    await server.stop();
    cleanupTemp(base);
  }
});
