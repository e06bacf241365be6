/**
 * Unions over the same lowers (a per-client export) list a lower-only directory once and
 * share it; a union that changes such a directory works on its own copy, and the others never
 * see its change.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import test from 'ava';
import { openUnion } from '../../src/vfs/index.js';
import type { Union } from '../../src/vfs/union.js';
import { makeLayers, rootCred } from '../helpers/layers.js';

const b = (s: string): Buffer => Buffer.from(s);
const names = (u: Union, dir: number) => u.readdir(dir, 0n, 1000, false, rootCred).entries.map((e) => e.name.toString()).filter((n) => n !== '.' && n !== '..').sort();

test('a lower-only directory is listed once for all unions; changes copy it first', async (t) => {
  const L = makeLayers('oci', [[['d/a', 'file', 'a'], ['d/gone', 'whiteout']], [['d/b', 'file', 'b'], ['d/gone', 'file', 'x']]]);
  const second = path.join(L.base, 'second');
  for (const d of ['upper', 'work']) fs.mkdirSync(path.join(second, d), { recursive: true });
  const u1 = await openUnion({ lowers: L.lowers, upper: L.upper, workdir: L.workdir, whiteoutFormat: 'oci' });
  const u2 = await openUnion({ lowers: L.lowers, upper: path.join(second, 'upper'), workdir: path.join(second, 'work'), whiteoutFormat: 'oci' });
  t.teardown(() => L.cleanup());
  const d1 = u1.lookup(u1.root, b('d'), rootCred);
  const d2 = u2.lookup(u2.root, b('d'), rootCred);
  t.deepEqual(names(u1, d1), ['a', 'b']);
  t.deepEqual(names(u2, d2), ['a', 'b']);
  t.is(u1.dirs.get(u1.node(d1)), u2.dirs.get(u2.node(d2)), 'one listing object for both unions');

  await u1.create(d1, b('new'), { mode: 'unchecked', attr: {} }, rootCred);
  await u1.remove(d1, b('a'), rootCred);
  t.deepEqual(names(u1, d1), ['b', 'new']);
  t.deepEqual(names(u2, d2), ['a', 'b'], 'the other union never sees the change');
  t.throws(() => u2.lookup(d2, b('new'), rootCred), { code: 'ENOENT' });
  t.not(u1.dirs.get(u1.node(d1)), u2.dirs.get(u2.node(d2)));

  // A union opened after every holder closed lists afresh (a lower rebuilt meanwhile is seen).
  await u1.close();
  await u2.close();
  fs.writeFileSync(path.join(L.lowers[1]!, 'd', 'c'), 'c');
  const u3 = await openUnion({ lowers: L.lowers, upper: path.join(second, 'upper'), workdir: path.join(second, 'work'), whiteoutFormat: 'oci' });
  t.deepEqual(names(u3, u3.lookup(u3.root, b('d'), rootCred)), ['a', 'b', 'c']);
  await u3.close();
});
