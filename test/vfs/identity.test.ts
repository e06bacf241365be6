import test from 'ava';
import * as fs from 'node:fs';
import { openUnion } from '../../src/vfs/index.js';
import type { UnionFs } from '../../src/vfs/types.js';
import { FsError } from '../../src/errors/fs-error.js';
import { MacCache, makeHandle } from '../../src/vfs/identity.js';
import { makeLayers, rootCred, type Entry } from '../helpers/layers.js';

const b = (s: string): Buffer => Buffer.from(s);
function walkPath(u: UnionFs, p: string): number {
  let id = u.root;
  for (const c of p.split('/').filter(Boolean)) id = u.lookup(id, b(c), rootCred);
  return id;
}

const lower: Entry[] = [['d/e/f', 'file', 'data'], ['d/g', 'file', 'g'], ['h', 'file', 'h']];

test('handles: round trip, 10,000 flips never resolve to another object', async (t) => {
  const L = makeLayers('oci', [lower]);
  try {
    const u = await openUnion({ lowers: L.lowers, whiteoutFormat: 'oci', state: L.base + '/state' });
    const ids = ['d', 'd/e', 'd/e/f', 'd/g', 'h'].map((p) => walkPath(u, p));
    for (const id of [u.root, ...ids]) {
      const h = u.handleOf(id);
      t.true(h.length <= 64);
      t.is(u.resolve(h), id);
      t.deepEqual(u.handleOf(id), h);
    }
    let wrong = 0;
    for (let i = 0; i < 10_000; i++) {
      const id = ids[i % ids.length]!;
      const h = Buffer.from(u.handleOf(id));
      if (i % 2 === 0) { const bit = (i * 7919) % (h.length * 8); h[bit >> 3]! ^= 1 << (bit & 7); }
      else { const pos = (i * 31) % h.length; h[pos] = (h[pos]! + 1 + (i % 255)) & 0xff; }
      try {
        const r = u.resolve(h);
        if (r !== id) wrong++;
      } catch (e) {
        if (!(e instanceof FsError) || !['EBADHANDLE', 'ESTALE'].includes(e.code)) throw e;
      }
    }
    t.is(wrong, 0);
    for (const h of [Buffer.alloc(0), Buffer.alloc(27), Buffer.alloc(64)]) t.throws(() => u.resolve(h), { code: 'EBADHANDLE' });
    await u.close();
  } finally {
    L.cleanup();
  }
});

test('MAC cache: colliding ids and altered MACs are never taken as issued', (t) => {
  const key = Buffer.alloc(32, 7);
  const c = new MacCache(3); // 4 slots: ids 1, 5, 9... share one
  for (let round = 0; round < 2; round++) {
    for (let id = 1; id <= 40; id++) t.deepEqual(c.handle(key, id, 9), makeHandle(key, id, 9), `id ${id}`);
  }
  // 37 and 33 share a slot with 1, 5, ...: the last one handed out holds it
  t.true(c.issued(37, makeHandle(key, 37, 9)));
  t.false(c.issued(33, makeHandle(key, 33, 9)));
  for (let i = 12; i < 28; i++) {
    const h = makeHandle(key, 37, 9);
    h[i]! ^= 0x40;
    t.false(c.issued(37, h), `MAC byte ${i} altered`);
  }
  c.remember(33, makeHandle(key, 33, 9));
  t.false(c.issued(37, makeHandle(key, 37, 9)));
  t.true(c.issued(33, makeHandle(key, 33, 9)));
});

test('identity survives restart; lost state gives stale, never another object', async (t) => {
  const L = makeLayers('oci', [lower]);
  const state = L.base + '/state';
  try {
    let u = await openUnion({ lowers: L.lowers, whiteoutFormat: 'oci', state });
    const f = walkPath(u, 'd/e/f');
    const g = walkPath(u, 'd/g');
    const hf = u.handleOf(f), hg = u.handleOf(g);
    await u.close();
    u = await openUnion({ lowers: L.lowers, whiteoutFormat: 'oci', state });
    t.is(u.resolve(hf), f);
    t.is(u.getattr(u.resolve(hf)).fileid, f);
    t.is(walkPath(u, 'd/g'), g);
    t.is(u.resolve(hg), g);
    const fresh = walkPath(u, 'h');
    t.true(fresh !== f && fresh !== g);
    await u.close();
    // corrupt the tail: records after the damage are ignored, ids never reused
    const log = state + '/identity.log';
    const buf = fs.readFileSync(log);
    buf[buf.length - 3]! ^= 0xff;
    fs.writeFileSync(log, buf);
    u = await openUnion({ lowers: L.lowers, whiteoutFormat: 'oci', state });
    const h2 = walkPath(u, 'h');
    t.true(h2 !== f && h2 !== g);
    await u.close();
    // lost log: old handles are refused, not resolved to new objects
    fs.unlinkSync(log);
    u = await openUnion({ lowers: L.lowers, whiteoutFormat: 'oci', state });
    walkPath(u, 'd/e/f'); walkPath(u, 'h');
    t.throws(() => u.resolve(hf), { code: 'EBADHANDLE' });
    await u.close();
  } finally {
    L.cleanup();
  }
});
