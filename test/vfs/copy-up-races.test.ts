/**
 * Copy-up racing the calls that end an object's name (issue 12): the calls are put in flight
 * together (the WRITE's copy-up runs on the thread pool while REMOVE or RENAME runs), 20
 * times each, and the union is checked after the replies and again after a reopen.
 */
import test from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openUnion } from '../../src/vfs/index.js';
import { StableHow, type UnionFs } from '../../src/vfs/types.js';
import { makeLayers, rootCred, treeDigest, type Format } from '../helpers/layers.js';

const b = (s: string): Buffer => Buffer.from(s);
const ROUNDS = 20;
const SIZE = 8 << 20;

function exists(u: UnionFs, name: string): boolean {
  try {
    u.lookup(u.root, b(name), rootCred);
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return false;
    throw err;
  }
}

function lowerWith(n: number) {
  const L = makeLayers('oci', [[]]);
  const big = Buffer.alloc(SIZE, 7);
  for (let i = 0; i < n; i++) fs.writeFileSync(path.join(L.lowers[0]!, `big${i}`), big);
  return L;
}

for (const format of ['oci'] as Format[]) {
  test(`${format}: WRITE to a lower-only file and REMOVE of it in flight together: a REMOVE answered OK stays removed`, async (t) => {
    const L = lowerWith(ROUNDS);
    t.teardown(() => L.cleanup());
    const lowerBefore = treeDigest(L.lowers[0]!);
    let u = await openUnion({ lowers: L.lowers, upper: L.upper, workdir: L.workdir, whiteoutFormat: format });
    const outcomes: string[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const name = `big${i}`;
      const id = u.lookup(u.root, b(name), rootCred);
      const [w, r] = await Promise.allSettled([
        u.write(id, 100, b('new data'), StableHow.UNSTABLE, rootCred),
        u.remove(u.root, b(name), rootCred),
      ]);
      outcomes.push(`${w.status === 'fulfilled' ? 'ok' : (w.reason as { code: string }).code}/${r.status === 'fulfilled' ? 'ok' : (r.reason as { code: string }).code}`);
      if (r.status === 'fulfilled') t.false(exists(u, name), `round ${i}: removed (${outcomes.at(-1)})`);
    }
    t.log(`WRITE/REMOVE outcomes: ${[...new Set(outcomes)].join(', ')}`);
    t.true(outcomes.every((o) => o.endsWith('/ok')), 'every REMOVE answered OK');
    // REMOVE waits for the copy-up the WRITE started (dir-ops.ts settled): the WRITE is not cut short
    t.true(outcomes.every((o) => o === 'ok/ok'), 'every WRITE answered OK too');
    await u.close();
    u = await openUnion({ lowers: L.lowers, upper: L.upper, workdir: L.workdir, whiteoutFormat: format });
    t.teardown(() => u.close());
    for (let i = 0; i < ROUNDS; i++) t.false(exists(u, `big${i}`), `big${i} stays removed after a reopen`);
    t.deepEqual(fs.readdirSync(path.join(L.upper)).filter((n) => !n.startsWith('.wh.')), [], 'no copy left in the upper');
    t.is(treeDigest(L.lowers[0]!), lowerBefore);
  });

  test(`${format}: WRITE to a lower-only file and RENAME over it in flight together: the new file is never overwritten by the copy`, async (t) => {
    const L = lowerWith(ROUNDS);
    t.teardown(() => L.cleanup());
    const u = await openUnion({ lowers: L.lowers, upper: L.upper, workdir: L.workdir, whiteoutFormat: format });
    for (let i = 0; i < ROUNDS; i++) {
      const name = `big${i}`;
      const id = u.lookup(u.root, b(name), rootCred);
      const fresh = await u.create(u.root, b(`fresh${i}`), { mode: 'unchecked', attr: { mode: 0o644 } }, rootCred);
      await u.write(fresh, 0, b('fresh'), StableHow.FILE_SYNC, rootCred);
      const [, r] = await Promise.allSettled([
        u.write(id, 100, b('new data'), StableHow.UNSTABLE, rootCred),
        u.rename(u.root, b(`fresh${i}`), u.root, b(name), rootCred),
      ]);
      t.is(r.status, 'fulfilled');
      // On disk (the union's open descriptor of the renamed file would still read it even if
      // the name had been overwritten), and through a union opened afresh.
      t.is(fs.readFileSync(path.join(L.upper, name), 'latin1').slice(0, 100), 'fresh', `round ${i}: the name holds the renamed file`);
    }
    await u.close();
    const again = await openUnion({ lowers: L.lowers, upper: L.upper, workdir: L.workdir, whiteoutFormat: format });
    t.teardown(() => again.close());
    for (let i = 0; i < ROUNDS; i++) {
      const got = await again.read(again.lookup(again.root, b(`big${i}`), rootCred), 0, 100, rootCred);
      t.is(got.data.toString(), 'fresh');
    }
  });
}
