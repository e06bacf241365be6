/**
 * The identity store against a model: random records, renames, links, copy-ups and deletes
 * with a tiny resident bound, so checkpoints, evictions and disk reads happen all the time;
 * checked live, after a clean restart and after a crash copied in the middle of a checkpoint.
 * And its on-disk hash table against a Map, through splits and page-cache evictions.
 */
import test from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { IdentityStore, type IdRecord } from '../../src/vfs/store/index.js';
import { BucketTable } from '../../src/vfs/store/bucket-table.js';
import { FileType } from '../../src/vfs/types.js';
import { rng } from '../fixtures/rng.js';

/** Uniform in [0, 1) from a seed. */
const unit = (seed: number): (() => number) => { const g = rng(seed); return () => g() / 2 ** 32; };

type Model = Map<number, IdRecord>;

function tmpDir(t: { teardown(f: () => void): void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'idstore-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

/** A store over dir, opened (a resident bound of 64 makes checkpoints and evictions frequent). */
function openStore(dir: string, residentMax = 64): IdentityStore {
  const s = new IdentityStore(dir, residentMax);
  s.open();
  return s;
}

/** An empty model with its seeded random source and inode counter. */
function newModel(seed: number): { m: Model; r: () => number; ino: { next: bigint } } {
  return { m: new Map(), r: unit(seed), ino: { next: 1n } };
}

/** Every record, name and inode of the model answered by the store. */
function agrees(s: IdentityStore, m: Model): string[] {
  const wrong: string[] = [];
  for (const [id, r] of m) {
    const got = s.get(id);
    if (JSON.stringify(got, big) !== JSON.stringify(r, big)) wrong.push(`get ${id}: ${JSON.stringify(got, big)} != ${JSON.stringify(r, big)}`);
    for (const n of r.names) if (s.idByName(n.parent, n.name) !== id) wrong.push(`name ${n.parent}/${n.name}: ${s.idByName(n.parent, n.name)} != ${id}`);
    if (r.type !== FileType.DIR && s.idByKey(r.key) !== id) wrong.push(`key of ${id}: ${s.idByKey(r.key)}`);
  }
  return wrong;
}

const big = (_k: string, v: unknown): unknown => (typeof v === 'bigint' ? v.toString() : v);

/** A random change to the model, made in the store too. */
function step(s: IdentityStore, m: Model, r: () => number, ino: { next: bigint }): void {
  const ids = [...m.keys()];
  const pick = (): IdRecord => m.get(ids[Math.floor(r() * ids.length)]!)!;
  const k = r();
  if (ids.length < 8 || k < 0.45) {
    const id = s.alloc();
    const parent = ids.length === 0 || r() < 0.2 ? 1 : pick().id;
    const key = { layer: 1 + Math.floor(r() * 3), dev: 2049n, ino: ino.next++ };
    const rec: IdRecord = { id, type: r() < 0.2 ? FileType.DIR : FileType.REG, key, origin: key, names: [{ parent, name: `n${id}-${'x'.repeat(Math.floor(r() * 40))}` }] };
    if (m.has(id)) throw new Error('id reused');
    for (const n of rec.names) forget(m, n.parent, n.name);
    m.set(id, rec);
    s.put(rec);
  } else if (k < 0.6) {
    // rename: one name moves
    const rec = pick();
    const names = [...rec.names.slice(1), { parent: pick().id, name: `r${Math.floor(r() * 1e9)}` }];
    for (const n of names) forget(m, n.parent, n.name, rec.id);
    const nrec = { ...rec, names };
    m.set(rec.id, nrec);
    s.put(nrec);
  } else if (k < 0.7) {
    // link: one more name
    const rec = pick();
    if (rec.type === FileType.DIR) return;
    const extra = { parent: pick().id, name: `l${Math.floor(r() * 1e9)}` };
    forget(m, extra.parent, extra.name, rec.id);
    const nrec = { ...m.get(rec.id)!, names: [...m.get(rec.id)!.names, extra] };
    m.set(rec.id, nrec);
    s.put(nrec);
  } else if (k < 0.8) {
    // copy-up: a new key, the origin stays
    const rec = pick();
    const nrec = { ...rec, key: { layer: 0, dev: 2050n, ino: ino.next++ } };
    m.set(rec.id, nrec);
    s.put(nrec);
  } else {
    const rec = pick();
    m.delete(rec.id);
    s.del(rec.id);
  }
}

/** A name taken by another record is dropped from the one that had it (as the union does). */
function forget(m: Model, parent: number, name: string, except?: number): void {
  for (const [id, r] of m) {
    if (id === except || !r.names.some((n) => n.parent === parent && n.name === name)) continue;
    throw new Error(`model: ${parent}/${name} already named ${id}`);
  }
}

test('store equals the model through checkpoints, evictions, restarts and a crash mid-checkpoint', async (t) => {
  const dir = tmpDir(t);
  const r = unit(4242);
  const m: Model = new Map();
  const ino = { next: 1000n };
  let s = openStore(dir + '/state');
  for (let i = 0; i < 3000; i++) {
    step(s, m, r, ino);
    if (i % 97 === 0) t.deepEqual(agrees(s, m), [], `step ${i}`);
    if (i % 10 === 0) await new Promise((res) => setImmediate(res));
  }
  t.deepEqual(agrees(s, m), []);
  // dirty records wait for a checkpoint; after one, clean records within the bound stay
  await s.checkpoint();
  t.true(s.residentSize <= 64, `resident ${s.residentSize}`);
  await s.close();
  t.false(fs.existsSync(dir + '/state/identity.log.old'));

  s = openStore(dir + '/state');
  t.deepEqual(agrees(s, m), [], 'after a clean restart');
  const before = new Set(m.keys());
  for (let i = 0; i < 500; i++) step(s, m, r, ino);
  for (const id of m.keys()) if (!before.has(id)) t.false(before.has(id));

  // A crash in the middle of a checkpoint: copy the files (what SIGKILL leaves) just after
  // the log rotated, and again after its first chunk reached the tables.
  let crashed = false;
  for (let i = 0; i < 2000 && !crashed; i++) {
    step(s, m, r, ino);
    s.flush();
    if (fs.existsSync(dir + '/state/identity.log.old')) {
      fs.cpSync(dir + '/state', dir + '/crash-rotated', { recursive: true });
      await new Promise((res) => setImmediate(res));
      s.flush();
      fs.cpSync(dir + '/state', dir + '/crash-applied', { recursive: true });
      crashed = true;
    }
  }
  t.true(crashed, 'a checkpoint was caught in flight');
  const snapshot = new Map(m);
  await s.close();
  for (const copy of ['crash-rotated', 'crash-applied']) {
    const c = openStore(`${dir}/${copy}`);
    t.deepEqual(agrees(c, snapshot), [], `after the crash (${copy})`);
    const fresh = c.alloc();
    t.true(fresh > Math.max(...snapshot.keys()), 'no id handed out before is reused');
    await c.close();
  }
});

test('a state directory of the earlier format (every record in identity.log, no manifest) opens with every record', async (t) => {
  const dir = tmpDir(t) + '/state';
  const { m, r, ino } = newModel(7);
  // written by a store whose checkpoints never ran: the log holds everything, as before
  let s = openStore(dir, 1 << 30);
  for (let i = 0; i < 500; i++) step(s, m, r, ino);
  s.flush();
  await s.sync();
  for (const f of fs.readdirSync(dir)) if (f !== 'key' && f !== 'identity.log') fs.rmSync(path.join(dir, f));
  s = openStore(dir);
  t.deepEqual(agrees(s, m), []);
  await s.close();
  s = openStore(dir);
  t.deepEqual(agrees(s, m), [], 'and after its first checkpoint');
  t.true(fs.statSync(path.join(dir, 'identity.log')).size < 4096, 'the log was checkpointed');
  await s.close();
});

test('a checkpoint that fails keeps every record in the log, and the store goes on', async (t) => {
  const dir = tmpDir(t) + '/state';
  const { m, r, ino } = newModel(11);
  let s = openStore(dir);
  fs.mkdirSync(path.join(dir, 'identity.manifest')); // the manifest cannot be replaced now
  for (let i = 0; i < 200; i++) {
    step(s, m, r, ino);
    if (i % 10 === 0) await new Promise((res) => setTimeout(res, 5));
  }
  await s.checkpoint(false);
  t.false(fs.existsSync(path.join(dir, 'identity.log.old')), 'the rotated log was folded back');
  t.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.new')), [], 'no temporary left');
  t.deepEqual(agrees(s, m), []);
  // a crash now (what the union flushed after each call): the log alone must hold everything
  s.flush();
  fs.cpSync(dir, dir + '-crash', { recursive: true });
  fs.rmdirSync(path.join(dir + '-crash', 'identity.manifest'));
  const c = openStore(dir + '-crash');
  t.deepEqual(agrees(c, m), [], 'after a crash');
  await c.close();
  fs.rmdirSync(path.join(dir, 'identity.manifest'));
  await s.close();
  s = openStore(dir);
  t.deepEqual(agrees(s, m), [], 'after the disk recovered and a clean stop');
  await s.close();
});

test('the on-disk hash table equals a Map through splits, removals, evictions and a reopen', (t) => {
  const dir = tmpDir(t);
  const fd = fs.openSync(dir + '/t', 'w+');
  t.teardown(() => fs.closeSync(fd));
  const r = unit(99);
  let tab = new BucketTable(fd, undefined, 2);
  const m = new Map<string, number>();
  const tag = (i: number): [number, number] => [(i * 2654435761) >>> 0, (Math.imul(i, 0x9e3779b1) ^ (i >>> 7)) >>> 0 || 1];
  for (let i = 1; i < 20_000; i++) {
    const [hi, lo] = tag(i);
    tab.put(hi, lo, i * 3, true);
    m.set(`${hi}:${lo}`, i * 3);
    if (r() < 0.3) {
      const j = 1 + Math.floor(r() * i);
      const [h2, l2] = tag(j);
      if (tab.remove(h2, l2) !== m.delete(`${h2}:${l2}`)) t.fail(`remove ${j}`);
    }
  }
  tab.flush();
  const state = tab.state();
  tab = new BucketTable(fd, state, 8);
  let wrong = 0;
  for (let i = 1; i < 20_000; i++) {
    const [hi, lo] = tag(i);
    const want = m.get(`${hi}:${lo}`);
    const got = tab.find(hi, lo);
    if (JSON.stringify(got) !== JSON.stringify(want === undefined ? [] : [want])) wrong++;
  }
  t.is(wrong, 0);
  t.true(state.depth >= 6, `depth ${state.depth}`);
  // several values under one tag
  t.is(tab.put(5, 5, 1, false), 'inserted');
  t.is(tab.put(5, 5, 2, false), 'inserted');
  t.is(tab.put(5, 5, 2, false), 'kept');
  t.deepEqual(tab.find(5, 5).sort(), [1, 2]);
  t.true(tab.remove(5, 5, 1));
  t.deepEqual(tab.find(5, 5), [2]);
});
