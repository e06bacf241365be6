/**
 * FdCache I/O: reads up to 1 MiB and small writes run synchronously until one is slow, then go
 * through the thread pool; both paths read and write the same bytes; larger I/O goes async.
 */
import test from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FdBudget, FdCache } from '../../src/vfs/fd-cache.js';

function tmpFile(t: { teardown(f: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fdcache-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const f = path.join(dir, 'f');
  fs.writeFileSync(f, '');
  return f;
}

async function roundTrip(c: FdCache, f: string, size: number): Promise<boolean> {
  const open = (): { fd: number; writable: boolean } => ({ fd: fs.openSync(f, 'r+'), writable: true });
  const data = Buffer.alloc(size);
  for (let i = 0; i < size; i++) data[i] = (i * 7 + size) & 0xff;
  await c.write(1, open, data, 100, 'none');
  const back = Buffer.alloc(size);
  const n = await c.read(1, open, back, 100);
  return n === size && back.equals(data);
}

test('small I/O stays synchronous while it is fast', async (t) => {
  const c = new FdCache(4);
  const f = tmpFile(t);
  t.true(await roundTrip(c, f, 4096));
  t.true(c.syncIo);
  t.true(await roundTrip(c, f, 1 << 20)); // async write, sync read: same bytes
  t.true(await roundTrip(c, f, 3 << 20)); // both async
  await c.closeAll();
});

test('a slow synchronous call sends I/O to the thread pool for a while', async (t) => {
  const c = new FdCache(4, -1); // every synchronous call counts as slow
  const f = tmpFile(t);
  t.true(c.syncIo);
  t.true(await roundTrip(c, f, 4096)); // the write was sync and "slow": the read went async
  t.false(c.syncIo);
  t.true(await roundTrip(c, f, 100));
  t.false(c.syncIo);
  await c.closeAll();
});

test('caches sharing a budget keep at most that many descriptors open together', async (t) => {
  const budget = new FdBudget(5);
  const caches = [new FdCache(4, 2, budget), new FdCache(4, 2, budget), new FdCache(4, 2, budget)];
  const files = Array.from({ length: 12 }, () => tmpFile(t));
  const fds = () => fs.readdirSync('/proc/self/fd').length;
  const before = fds();
  const buf = Buffer.alloc(1);
  for (const [i, f] of files.entries()) {
    await caches[i % 3]!.read(i, () => ({ fd: fs.openSync(f, 'r'), writable: false }), buf, 0);
    t.true(budget.open <= 5, `never more than the budget once a read is done (${budget.open})`);
  }
  t.true(fds() - before <= 5);
  // Each cache still keeps its own bound, and reads through evicted entries reopen.
  t.is((await caches[0]!.read(0, () => ({ fd: fs.openSync(files[0]!, 'r'), writable: false }), buf, 0)), 0);
  for (const c of caches) await c.closeAll();
  t.is(budget.open, 0);
  t.is(fds(), before);
});
