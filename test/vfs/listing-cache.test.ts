/** The merged-listing cache is bounded by heap bytes (readdir.ts ListingCache). */
import test from 'ava';
import { entryBytes, ListingCache, listingAdd, listingBytes, type Listing } from '../../src/vfs/readdir.js';
import { cookieOf } from '../../src/vfs/names.js';

function listing(prefix: string, n: number): Listing {
  const names = Array.from({ length: n }, (_, i) => `${prefix}${i}`);
  return { names, cookies: names.map(cookieOf) };
}

test('evicts least recently used listings past the byte bound, keeps the newest even when larger', (t) => {
  const a = listing('a', 1000), b = listing('b', 1000), c = listing('c', 1000);
  const c1 = new ListingCache(listingBytes(a) + listingBytes(b) + 10);
  c1.set(1, a);
  c1.set(2, b);
  t.is(c1.size.listings, 2);
  c1.get(1); // 1 is now most recent
  c1.set(3, c);
  t.truthy(c1.peek(1));
  t.is(c1.peek(2), undefined, 'least recently used evicted');
  t.truthy(c1.peek(3));
  t.true(c1.size.bytes <= listingBytes(a) + listingBytes(b) + 10);
  const big = listing('big', 5000);
  c1.set(4, big);
  t.is(c1.size.listings, 1, 'a listing over the bound is kept alone');
  t.is(c1.size.bytes, listingBytes(big));
  const before = c1.size.bytes;
  listingAdd(big, 'zz-new');
  c1.adjust(4, 'zz-new', 1);
  t.is(c1.size.bytes, before + entryBytes('zz-new'));
  t.is(c1.size.bytes, listingBytes(big));
  c1.delete(4);
  t.deepEqual(c1.size, { bytes: 0, entries: 0, listings: 0 });
});

test('the optional entry bound applies too', (t) => {
  const c1 = new ListingCache(1 << 30, 1500);
  c1.set(1, listing('a', 1000));
  c1.set(2, listing('b', 1000));
  t.is(c1.peek(1), undefined);
  t.is(c1.size.entries, 1001);
});
