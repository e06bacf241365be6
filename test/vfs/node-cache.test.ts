/**
 * The node cache is bounded (union.ts evictNodes): with a tiny bound, objects whose nodes were
 * dropped keep their ids, handles, attributes and data, and a write racing many lookups
 * (which would evict) is not undone by a node rebuilt while it ran; the bound holds while
 * mutations are in flight (only what they hold stays).
 */
import test from 'ava';
import { openUnion } from '../../src/vfs/index.js';
import { FileType, StableHow } from '../../src/vfs/types.js';
import { makeLayers, rootCred, type Entry } from '../helpers/layers.js';

const b = (s: string): Buffer => Buffer.from(s);
const FILES = 60;
const MAX = 8;

const lower: Entry[] = [['d/', 'dir'], ['d/sub/', 'dir'], ['d/sub/deep', 'file', 'deep']];
for (let i = 0; i < FILES; i++) lower.push([`d/f${i}`, 'file', `lower-${i}`]);

test('evicted nodes come back with the same id, handle, attributes and data', async (t) => {
  const L = makeLayers('oci', [lower]);
  try {
    const u = await openUnion({ lowers: L.lowers, upper: L.upper, workdir: L.workdir, whiteoutFormat: 'oci', state: L.base + '/state', nodeCacheMax: MAX });
    const d = u.lookup(u.root, b('d'), rootCred);
    const seen = new Map<number, { handle: Buffer; size: number; name: string }>();
    for (let i = 0; i < FILES; i++) {
      const id = u.lookup(d, b(`f${i}`), rootCred);
      seen.set(id, { handle: u.handleOf(id), size: u.getattr(id).size, name: `f${i}` });
    }
    t.true(u.nodes.size <= MAX + 1, `nodes kept: ${u.nodes.size}`);
    for (const [id, s] of seen) {
      t.is(u.resolve(s.handle), id, `${s.name}: handle resolves after eviction`);
      t.is(u.lookup(d, b(s.name), rootCred), id, `${s.name}: same id by name`);
      t.is(u.getattr(id).size, s.size);
      t.is((await u.read(id, 0, 100, rootCred)).data.toString(), s.name.replace('f', 'lower-'));
    }
    // directories are never evicted: a deep file resolves through them
    const sub = u.lookup(d, b('sub'), rootCred);
    t.is(u.getattr(u.lookup(sub, b('deep'), rootCred)).type, FileType.REG);
    t.is(u.nodes.get(sub)?.type, FileType.DIR);
    // a write (copy-up) to an evicted object reaches every later view of it
    const [first] = seen.keys();
    await u.write(first!, 0, b('UPPER'), StableHow.FILE_SYNC, rootCred);
    for (let i = 0; i < FILES; i++) u.lookup(d, b(`f${i}`), rootCred); // evict again
    t.is((await u.read(u.resolve(seen.get(first!)!.handle), 0, 100, rootCred)).data.toString(), 'UPPER-0');
    await u.close();
  } finally {
    L.cleanup();
  }
});

test('a write racing lookups that would evict its node keeps its result', async (t) => {
  const L = makeLayers('oci', [lower]);
  try {
    const u = await openUnion({ lowers: L.lowers, upper: L.upper, workdir: L.workdir, whiteoutFormat: 'oci', state: L.base + '/state', nodeCacheMax: MAX });
    const d = u.lookup(u.root, b('d'), rootCred);
    const id = u.lookup(d, b('f0'), rootCred);
    const big = Buffer.alloc(1 << 20, 'x');
    const writing = u.write(id, 0, big, StableHow.FILE_SYNC, rootCred); // copy-up, then write
    // a rename in flight too: its source is held across its copy-up
    const moving = u.lookup(d, b('f1'), rootCred);
    const renaming = u.rename(d, b('f1'), d, b('moved'), rootCred);
    let most = 0;
    for (let round = 0; round < 5; round++) {
      for (let i = 2; i < FILES; i++) {
        u.lookup(d, b(`f${i}`), rootCred);
        most = Math.max(most, u.nodes.size);
      }
      await new Promise((r) => setImmediate(r));
    }
    t.true(u.nodes.has(id), 'the node a write in flight holds is not evicted');
    // directories (root, d, d/sub once seen) are never evicted; held and copying nodes are extra
    t.true(most <= MAX + 4, `nodes kept while mutations were in flight: ${most}`);
    await writing;
    await renaming;
    t.is(u.lookup(d, b('moved'), rootCred), moving);
    t.is(u.getattr(id).size, big.length);
    for (let i = 2; i < FILES; i++) u.lookup(d, b(`f${i}`), rootCred);
    t.is(u.getattr(u.lookup(d, b('f0'), rootCred)).size, big.length);
    await u.close();
  } finally {
    L.cleanup();
  }
});
