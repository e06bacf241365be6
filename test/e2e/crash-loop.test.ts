/**
 * Issue 12's crash loop: SIGKILL at random points of a mixed modifying load from several
 * clients, KILLS times per whiteout format (UNFS_CRASH_LOOP_KILLS, default 100: 200 in all).
 * After every restart, through the server: every acknowledged operation is there (files
 * created and written FILE_SYNC or UNSTABLE+COMMIT, renames, removals of lower and of new
 * files, renames of lower directories), no unacknowledged one is half-done (a file or a lower
 * directory has one of its two names after a rename, a file holds no byte the client did not
 * send, a renamed directory holds what it held), no removed lower file is back, and the
 * workdir holds no temporary; at the end the lower layer is byte-identical.
 * The power-cut variant (UNFS_POWER_CUTS per format, default 30 in CI) keeps the upper and the
 * workdir on an ext4 loop disk and, after each kill, also drops everything the server had not
 * fsynced (test/helpers/loop-disk.ts): what a reply promised must have been on the disk.
 */
import test, { type ExecutionContext } from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { gate, missing } from './libnfs/env.js';
import { cleanupTemp, layerFingerprint, makeMemTemp } from './libnfs/oracle.js';
import { INSECURE_LOOPBACK, TestServer } from './libnfs/server.js';
import { NfsView } from '../helpers/nfs-view.js';
import { LoopDisk } from '../helpers/loop-disk.js';

const KILLS = Math.max(1, Number(process.env['UNFS_CRASH_LOOP_KILLS'] ?? 100) || 100);
const POWER_CUTS = Math.max(1, Number(process.env['UNFS_POWER_CUTS'] ?? 30) || 30);
const CLIENTS = 3;
const LOWER_FILES = 300;
/** Lower directories ld<i> ({f, s/g}), each renamed at most once, to md<i> (redirect.ts). */
const LOWER_DIRS = 300;
const content = (k: number): Buffer => Buffer.from(`data of c${k} `.repeat(400));
const lowerContent = (i: number): string => `lower file ${i}\n`;
const dirContent = (i: number, f: string): string => `${f} in lower directory ${i}\n`;

/** What the clients were told, and what they tried without being told. */
interface Journal {
  next: number;
  /** k -> its content reached stable storage (FILE_SYNC, or UNSTABLE + COMMIT). */
  created: Set<number>;
  /** CREATE sent, not (yet) acknowledged with its data. */
  tried: Set<number>;
  renamed: Set<number>;
  renaming: Set<number>;
  removed: Set<number>;
  removing: Set<number>;
  lowerRemoved: Set<number>;
  lowerRemoving: Set<number>;
  dirRenamed: Set<number>;
  dirRenaming: Set<number>;
  /** Directories whose rename was sent since the last check (their contents are read then). */
  dirRecent: Set<number>;
}

const rand = (n: number): number => Math.floor(Math.random() * n);

/** One client's operations until its connection dies with the server. */
async function load(port: number, j: Journal): Promise<void> {
  let v: NfsView;
  try {
    v = await NfsView.open(port, { timeoutMs: 5000 });
  } catch {
    return;
  }
  try {
    for (;;) {
      const op = rand(10);
      if (op < 4) {
        const k = j.next++;
        j.tried.add(k);
        const c = await v.create(`c${k}`);
        if (c.stat !== 0 || c.fh === undefined) throw new Error(`CREATE c${k}: ${c.stat}`);
        if (k % 2 === 0) {
          if (await v.write(c.fh, 0, content(k), 2) !== 0) throw new Error('WRITE');
        } else {
          if (await v.write(c.fh, 0, content(k), 0) !== 0) throw new Error('WRITE');
          if (await v.commit(c.fh) !== 0) throw new Error('COMMIT');
        }
        j.created.add(k);
        j.tried.delete(k);
      } else if (op < 6) {
        const k = [...j.created].find((x) => !j.renamed.has(x) && !j.renaming.has(x));
        if (k === undefined) continue;
        j.renaming.add(k);
        if (await v.rename(`c${k}`, `r${k}`) !== 0) throw new Error(`RENAME c${k}`);
        j.renamed.add(k);
        j.renaming.delete(k);
      } else if (op < 7) {
        const k = [...j.renamed].find((x) => !j.removed.has(x) && !j.removing.has(x));
        if (k === undefined) continue;
        j.removing.add(k);
        if (await v.remove(`r${k}`) !== 0) throw new Error(`REMOVE r${k}`);
        j.removed.add(k);
        j.removing.delete(k);
      } else if (op < 8) {
        const i = rand(LOWER_DIRS);
        if (j.dirRenamed.has(i) || j.dirRenaming.has(i)) continue;
        j.dirRenaming.add(i);
        j.dirRecent.add(i);
        if (await v.rename(`ld${i}`, `md${i}`) !== 0) throw new Error(`RENAME ld${i}`);
        j.dirRenamed.add(i);
        j.dirRenaming.delete(i);
      } else {
        const i = rand(LOWER_FILES);
        if (j.lowerRemoved.has(i) || j.lowerRemoving.has(i)) continue;
        j.lowerRemoving.add(i);
        if (await v.remove(`l${i}`) !== 0) throw new Error(`REMOVE l${i}`);
        j.lowerRemoved.add(i);
        j.lowerRemoving.delete(i);
      }
    }
  } catch {
    // the server was killed: what was in flight stays in the journal as tried, not told
  } finally {
    v.close();
  }
}

/**
 * Problems with the tree as the restarted server shows it; empty when all is as promised.
 * Every name is checked (one READDIR); contents from file `from` on (the files the last
 * round of load touched, or all of them).
 */
async function check(v: NfsView, j: Journal, from: number): Promise<string[]> {
  const bad: string[] = [];
  const names = await v.names();
  const has = (n: string): boolean => names.has(n);
  for (let i = 0; i < LOWER_FILES; i++) {
    const there = has(`l${i}`);
    if (j.lowerRemoved.has(i) && there) bad.push(`l${i}: removed (acknowledged) but back`);
    if (!j.lowerRemoved.has(i) && !j.lowerRemoving.has(i) && !there) bad.push(`l${i}: never removed but gone`);
    if (from === 0 && there && (await v.read(`l${i}`)).toString() !== lowerContent(i)) bad.push(`l${i}: content changed`);
  }
  for (let i = 0; i < LOWER_DIRS; i++) {
    const [l, m] = [has(`ld${i}`), has(`md${i}`)];
    if (l && m) bad.push(`ld${i}: both names`);
    if (j.dirRenamed.has(i) && !m) bad.push(`md${i}: renamed (acknowledged) but missing`);
    if (!j.dirRenamed.has(i) && !j.dirRenaming.has(i) && !l) bad.push(`ld${i}: never renamed but gone`);
    if (!l && !m) bad.push(`ld${i}: gone under both names`);
    const name = m ? `md${i}` : l ? `ld${i}` : undefined;
    if (name === undefined || (from > 0 && !j.dirRecent.has(i))) continue;
    for (const f of ['f', 's/g']) {
      const there = await v.read(`${name}/${f}`).catch(() => undefined);
      if (there?.toString() !== dirContent(i, f)) bad.push(`${name}/${f}: ${there === undefined ? 'missing' : 'content changed'}`);
    }
  }
  j.dirRecent.clear();
  for (let k = 0; k < j.next; k++) {
    const [c, r] = [has(`c${k}`), has(`r${k}`)];
    if (j.removed.has(k)) {
      if (c || r) bad.push(`r${k}: removed (acknowledged) but back`);
      continue;
    }
    if (c && r) bad.push(`c${k}: both names`);
    if (j.created.has(k)) {
      if (j.renamed.has(k) && !j.removing.has(k) && !r) bad.push(`r${k}: renamed (acknowledged) but missing`);
      if (!j.renaming.has(k) && !j.renamed.has(k) && !c) bad.push(`c${k}: created (acknowledged) but missing`);
      if (!j.removing.has(k) && !c && !r) bad.push(`c${k}: created (acknowledged) but gone`);
    }
    const name = c ? `c${k}` : r ? `r${k}` : undefined;
    if (name === undefined || k < from) continue;
    // A WRITE cut short by the kill may have written part of its data (the kernel stops a
    // write(2) between pages for a fatal signal): never other bytes than the client's.
    const data = await v.read(name);
    if (j.created.has(k) ? !data.equals(content(k)) : !content(k).subarray(0, data.length).equals(data)) {
      bad.push(`${name}: ${data.length} bytes, ${j.created.has(k) ? 'not its acknowledged content' : 'not a part of what was sent'}`);
    }
  }
  return bad;
}

for (const whiteout of ['oci', 'overlayfs'] as const) {
  for (const power of [false, true]) {
    const kills = power ? POWER_CUTS : KILLS;
    const what = power ? `${kills} SIGKILLs, each followed by a power cut (unsynced writes dropped),` : `${kills} SIGKILLs`;
    test.serial(`${whiteout}: ${what} at random points of a mixed load from ${CLIENTS} clients: nothing acknowledged lost, nothing removed back, nothing half-done`, async (t) => {
      const needs = missing({ server: true, ...(whiteout === 'overlayfs' && { root: true }), ...(power && { loopExt4: true }) });
      if (!gate(t, power ? 'power-cut loop e2e' : 'crash loop e2e', needs)) return;
      t.timeout(15 * 60_000);
      await crashLoop(t, whiteout, kills, power);
    });
  }
}

async function crashLoop(t: ExecutionContext, whiteout: 'oci' | 'overlayfs', kills: number, power: boolean): Promise<void> {
  const base = makeMemTemp(`crashloop-${whiteout}`);
  t.teardown(() => cleanupTemp(base));
  const lower = path.join(base, 'lower');
  fs.mkdirSync(lower);
  for (let i = 0; i < LOWER_FILES; i++) fs.writeFileSync(path.join(lower, `l${i}`), lowerContent(i));
  for (let i = 0; i < LOWER_DIRS; i++) {
    fs.mkdirSync(path.join(lower, `ld${i}`, 's'), { recursive: true });
    for (const f of ['f', 's/g']) fs.writeFileSync(path.join(lower, `ld${i}`, f), dirContent(i, f));
  }
  let disk: LoopDisk | undefined;
  if (power) {
    disk = new LoopDisk(path.join(base, 'disk.img'), path.join(base, 'disk'));
    t.teardown(() => disk!.destroy());
  }
  const top = disk?.mountPoint ?? base;
  for (const d of ['upper', 'work']) fs.mkdirSync(path.join(top, d));
  const lowerBefore = layerFingerprint(lower);
  const server = new TestServer({ lowers: [lower], upper: path.join(top, 'upper'), workdir: path.join(top, 'work'), whiteout, clients: INSECURE_LOOPBACK });
  t.teardown(() => server.stop('SIGKILL'));
  const j: Journal = {
    next: 0, created: new Set(), tried: new Set(), renamed: new Set(), renaming: new Set(), removed: new Set(), removing: new Set(),
    lowerRemoved: new Set(), lowerRemoving: new Set(), dirRenamed: new Set(), dirRenaming: new Set(), dirRecent: new Set(),
  };
  const started = Date.now();
  let problems: string[] = [];
  let from = 0;
  for (let kill = 1; kill <= kills && problems.length === 0; kill++) {
    const ready = await server.start();
    const v = await NfsView.open(ready.nfsPort);
    problems = (await check(v, j, from)).map((p) => `after kill ${kill - 1}: ${p}`);
    from = j.next;
    v.close();
    const tmp = path.join(top, 'work', 'union-nfsd', 'tmp');
    if (fs.readdirSync(tmp).length > 0) problems.push(`after kill ${kill - 1}: temporaries left in ${tmp}`);
    // Whatever was in flight may or may not have happened; from here on it is judged as such.
    const clients = Array.from({ length: CLIENTS }, () => load(ready.nfsPort, j));
    await new Promise((r) => setTimeout(r, 20 + rand(250)));
    await server.stop('SIGKILL');
    await Promise.all(clients);
    disk?.powerCut();
  }
  const ready = await server.start();
  const v = await NfsView.open(ready.nfsPort);
  problems.push(...(await check(v, j, 0)).map((p) => `after the last kill: ${p}`));
  v.close();
  t.log(`${kills} kills in ${((Date.now() - started) / 1000).toFixed(0)} s: ${j.created.size} files created, ${j.renamed.size} renamed, ` +
    `${j.removed.size} removed, ${j.lowerRemoved.size} lower files removed, ${j.dirRenamed.size} lower directories renamed (acknowledged); ` +
    `${j.tried.size + j.renaming.size + j.removing.size + j.lowerRemoving.size + j.dirRenaming.size} cut short by a kill`);
  t.deepEqual(problems.slice(0, 20), []);
  t.is(layerFingerprint(lower), lowerBefore, 'the lower is byte-identical');
}
