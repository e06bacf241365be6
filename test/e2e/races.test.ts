/**
 * Issue 12's races through libnfs, with the two calls really in flight together on one
 * connection (libnfs/driver/race.c), 20 rounds each, in both whiteout formats; the tree is
 * checked through the server after the replies and again after a SIGKILL and restart:
 *   write-remove   a REMOVE answered OK stays removed
 *   write-rename   exactly one name, with the write unless the WRITE failed
 *   write-write    two WRITEs at different offsets racing their copy-ups: both kept
 *   setattr-write  SETATTR size 0 + WRITE: never the old lower content
 *   rmdir-create   RMDIR of a lower directory + CREATE inside it: the tree agrees with the replies
 * Every lower file holds 8 MiB of 0x07 bytes, so its copy-up takes a while and any old byte
 * that survives shows.
 */
import test, { type ExecutionContext } from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { compileDriver, run } from './libnfs/driver.js';
import { gate, missing } from './libnfs/env.js';
import { cleanupTemp, layerFingerprint, makeTemp } from './libnfs/oracle.js';
import { INSECURE_LOOPBACK, TestServer } from './libnfs/server.js';
import { NfsView as View } from '../helpers/nfs-view.js';

const ROUNDS = 20;
const SIZE = 8 << 20;
type Kind = 'write-remove' | 'write-rename' | 'write-write' | 'setattr-write' | 'rmdir-create';

type Outcome = [number, number, number];

/** What the tree must show for round i, given the two replies. */
async function verify(t: ExecutionContext, v: View, kind: Kind, [i, a, b]: Outcome, when: string): Promise<void> {
  const at = `${kind} round ${i} (${a}, ${b}) ${when}`;
  const f = `/f${i}`;
  if (kind === 'write-remove') {
    t.is(b, 0, `${at}: REMOVE answered OK`);
    if (b === 0) t.is(await v.lookup(f), undefined, `${at}: a REMOVE answered OK stays removed`);
  } else if (kind === 'write-rename') {
    t.is(b, 0, `${at}: RENAME answered OK`);
    const [old, moved] = [await v.lookup(f), await v.lookup(`/h${i}`)];
    t.true((old === undefined) !== (moved === undefined), `${at}: exactly one name`);
    const data = await v.read(b === 0 ? `/h${i}` : f);
    t.is(data.length, SIZE, at);
    if (a === 0) t.is(data.subarray(100, 108).toString(), 'new data', `${at}: with the write`);
    t.false(data.subarray(0, 100).some((x) => x !== 7), `${at}: the rest is the lower's`);
  } else if (kind === 'write-write') {
    t.deepEqual([a, b], [0, 0], `${at}: both WRITEs answered OK`);
    const data = await v.read(f);
    t.is(data.subarray(100, 108).toString(), 'new data', `${at}: the first write kept`);
    t.is(data.subarray(4 << 20, (4 << 20) + 8).toString(), 'more new', `${at}: the second write kept`);
  } else if (kind === 'setattr-write') {
    const data = await v.read(f);
    t.false(data.includes(7), `${at}: never the old lower content (size ${data.length})`);
    t.true(data.length === 0 || data.subarray(0, 3).toString() === 'new', at);
  } else {
    const [dir, x] = [await v.lookup(`/d${i}`), await v.lookup(`/d${i}/x`)];
    t.false(a === 0 && b === 0, `${at}: RMDIR and a CREATE inside both answered OK`);
    if (a === 0) t.is(dir, undefined, `${at}: removed`);
    if (b === 0) t.truthy(x, `${at}: created`);
    if (a !== 0 && b !== 0) t.is(x, undefined, at);
  }
}

function unmet(): string[] {
  return missing({ libnfsDev: true, server: true });
}

for (const whiteout of ['oci', 'overlayfs'] as const) {
  test(`${whiteout}: five races, calls in flight together through libnfs, ${ROUNDS} rounds each, checked again after SIGKILL`, async (t) => {
    if (!gate(t, 'race e2e', [...unmet(), ...(whiteout === 'overlayfs' ? missing({ root: true }) : [])])) return;
    t.timeout(8 * 60_000);
    const race = await compileDriver('race');
    const base = makeTemp(`unfs-race-${whiteout}-`);
    t.teardown(() => cleanupTemp(base));
    const kinds: Kind[] = ['write-remove', 'write-rename', 'write-write', 'setattr-write', 'rmdir-create'];
    const seven = Buffer.alloc(SIZE, 7);
    const outcomes = new Map<Kind, Outcome[]>();
    const servers: { kind: Kind; server: TestServer; lower: string; lowerBefore: string }[] = [];
    for (const kind of kinds) {
      const lower = path.join(base, kind, 'lower');
      fs.mkdirSync(lower, { recursive: true });
      for (let i = 0; i < ROUNDS; i++) {
        if (kind === 'rmdir-create') fs.mkdirSync(path.join(lower, `d${i}`));
        else fs.writeFileSync(path.join(lower, `f${i}`), seven);
      }
      for (const d of ['upper', 'work']) fs.mkdirSync(path.join(base, kind, d));
      const server = new TestServer({
        lowers: [lower], upper: path.join(base, kind, 'upper'), workdir: path.join(base, kind, 'work'), whiteout, clients: INSECURE_LOOPBACK,
      });
      t.teardown(() => server.stop());
      servers.push({ kind, server, lower, lowerBefore: layerFingerprint(lower) });
    }
    for (const s of servers) {
      await s.server.start();
      const r = await run(race, [s.server.url(), s.kind, String(ROUNDS)], { timeoutMs: 180_000 });
      t.is(r.code, 0, r.stderr);
      const lines = r.stdout.trim().split('\n').map((l) => l.split(' ').map(Number) as Outcome);
      t.is(lines.length, ROUNDS);
      outcomes.set(s.kind, lines);
      t.log(`${s.kind}: outcomes ${[...new Set(lines.map(([, a, b]) => `${a}/${b}`))].join(', ')}`);
      const v = await View.open(s.server.ready!.nfsPort);
      for (const o of lines) await verify(t, v, s.kind, o, 'after the replies');
      v.close();
    }
    for (const s of servers) {
      await s.server.restart('SIGKILL');
      const v = await View.open(s.server.ready!.nfsPort);
      for (const o of outcomes.get(s.kind)!) await verify(t, v, s.kind, o, 'after SIGKILL and restart');
      v.close();
      t.is(layerFingerprint(s.lower), s.lowerBefore, `${s.kind}: the lower is untouched`);
      t.deepEqual(fs.readdirSync(path.join(base, s.kind, 'work', 'union-nfsd', 'tmp')), [], `${s.kind}: no temporary left after the restart`);
    }
  });
}
