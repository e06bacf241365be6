import test from 'ava';
import { readEntries } from '../../src/nfs3/dir-pages.js';
import type { DirPage, UnionFs } from '../../src/vfs/types.js';
import { rootCred } from '../helpers/layers.js';

/** A directory of named entries with stable cookies (as the union's name hashes are), sorted by cookie. */
function dir(n: number) {
  const names = new Map<bigint, string>();
  for (let i = 0; i < n; i++) names.set(BigInt(10 + i * 10), `e${String(i).padStart(4, '0')}`);
  const calls: string[] = [];
  const fs = {
    async prefetch(_d: number, cookie: bigint, max: number) { calls.push(`prefetch ${cookie} ${max}`); },
    readdir(_d: number, cookie: bigint, max: number): DirPage {
      calls.push(`readdir ${cookie} ${max}`);
      const after = [...names.keys()].sort((a, b) => (a < b ? -1 : 1)).filter((c) => c > cookie);
      const take = after.slice(0, max);
      return { entries: take.map((c, i) => ({ fileid: i + 2, name: Buffer.from(names.get(c)!), cookie: c })), eof: take.length === after.length, verifier: 7n };
    },
  };
  return { fs: fs as unknown as UnionFs, names, calls };
}

test('a page is read in slices, each read ahead first, with turns for other calls between them', async (t) => {
  const d = dir(1000);
  let turns = 0;
  const other = setInterval(() => turns++, 0);
  const page = await readEntries(d.fs, 1, 0n, 1000, true, rootCred);
  clearInterval(other);
  t.is(page.entries.length, 1000);
  t.true(page.eof);
  t.is(page.verifier, 7n);
  t.deepEqual(page.entries.map((e) => e.name.toString()), [...d.names.values()]);
  t.is(d.calls.filter((c) => c.startsWith('readdir')).length, 8);
  t.true(d.calls.every((c, i) => c.startsWith('prefetch') === (i % 2 === 0)), 'each slice is read ahead before it is read');
  t.true(turns > 0, 'other work ran while the page was read');
});

test('a name made between slices neither repeats nor hides an entry; a page ends at maxEntries', async (t) => {
  const d = dir(300);
  const prefetch = d.fs.prefetch.bind(d.fs);
  d.fs.prefetch = async (dirId, cookie, max) => {
    if (cookie > 0n && !d.names.has(15n)) {
      d.names.set(15n, 'early'); // before the slice read next: not in this page
      d.names.set(1505n, 'late'); // after it: listed in order
    }
    return prefetch(dirId, cookie, max);
  };
  const page = await readEntries(d.fs, 1, 0n, 250, false, rootCred);
  const names = page.entries.map((e) => e.name.toString());
  t.is(names.length, 250);
  t.false(page.eof);
  t.is(new Set(names).size, names.length);
  t.false(names.includes('early'));
  t.is(names.indexOf('late'), names.indexOf('e0149') + 1);
  const originals = names.filter((n) => n.startsWith('e'));
  t.deepEqual(originals, [...d.names.values()].filter((n) => n.startsWith('e')).slice(0, originals.length));
});
