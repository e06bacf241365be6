/**
 * Issue 5, with an independent client (driver/identity.c: raw NFSv3 over libnfs):
 *   1. a handle taken for a lower file keeps resolving to the same fileid after the file is
 *      written (copy-up), chmodded, renamed into another directory, and after the server is
 *      SIGKILLed and restarted; once removed it answers NFS3ERR_STALE (also after a restart);
 *   2. 10,000 random single-bit / byte / length changes to valid handles never resolve to
 *      another object (BADHANDLE or STALE, or - if the server ignores the changed byte - the
 *      same fileid);
 *   3. a READDIRPLUS walk of a 100,000-entry directory merged from three layers returns each
 *      name exactly once while another client creates, removes and copies up entries in it,
 *      and a walk stopped half-way resumes by cookie after a server restart (SIGKILL) exactly
 *      where it left off.
 */
import test, { type ExecutionContext } from 'ava';
import { mkdirSync, writeFileSync } from 'node:fs';
import { compileDriver, runOk } from './libnfs/driver.js';
import { requireEnv } from './libnfs/env.js';
import { renderLayers, standardLayers } from './libnfs/layers.js';
import { cleanupTemp, layerFingerprint, makeTemp } from './libnfs/oracle.js';
import { TestServer } from './libnfs/server.js';

const NEEDS = { root: true, libnfsDev: true, server: true } as const;
const NFS3ERR_STALE = 70;

interface Attr { status: number; fileid: string; type: number; mode: string; size: string }

async function getattr(bin: string, url: string, hex: string): Promise<Attr> {
  const out = await runOk(bin, ['getattr', url, hex], { timeoutMs: 30_000 });
  const m = /STATUS (-?\d+) FILEID (\d+) TYPE (\d+) MODE (\d+) SIZE (\d+)/.exec(out);
  if (!m) throw new Error(`bad getattr output: ${out}`);
  return { status: Number(m[1]), fileid: m[2] ?? '', type: Number(m[3]), mode: m[4] ?? '', size: m[5] ?? '' };
}

async function handle(bin: string, url: string, path: string): Promise<{ fh: string; fileid: string }> {
  const out = await runOk(bin, ['handle', url, path], { timeoutMs: 30_000 });
  const m = /FH ([0-9a-f]+) FILEID (\d+)/.exec(out);
  if (!m) throw new Error(`bad handle output: ${out}`);
  return { fh: m[1] ?? '', fileid: m[2] ?? '' };
}

async function withServer(t: ExecutionContext, server: TestServer, base: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    t.log(`server output:\n${server.output()}`);
    throw e;
  } finally {
    await server.stop('SIGKILL');
    if (process.env.UNFS_KEEP_TEMP) t.log(`kept ${base}`);
    else cleanupTemp(base);
  }
}

test.serial('a lower file\'s handle survives copy-up, chmod, rename across directories and SIGKILL+restart; STALE once removed', async (t) => {
  if (!requireEnv(t, NEEDS)) return;
  t.timeout(3 * 60_000);
  const base = makeTemp('id-handle');
  const layers = renderLayers(standardLayers(), `${base}/l`, 'oci', true);
  const server = new TestServer({ lowers: layers.lowers, upper: layers.upper, workdir: layers.workdir });
  await withServer(t, server, base, async () => {
    const before = layers.lowers.map(layerFingerprint);
    const [id, ops] = await Promise.all([compileDriver('identity'), compileDriver('ops')]);
    await server.start();
    const op = (script: string) => runOk(ops, [server.url()], { input: `${script}\n`, timeoutMs: 30_000 });
    const expectOk = (out: string) => t.notRegex(out, /\tERR\t/, `operation failed: ${out}`);

    const f = await handle(id, server.url(), '/a/f1'); // L2's a/f1 (also in L3)
    const d = await handle(id, server.url(), '/ren/lowerdir'); // a lower directory
    const gone = await handle(id, server.url(), '/tree/d0/f1'); // removed without copy-up
    t.not(f.fileid, '0');
    const same = async (h: { fh: string; fileid: string }, what: string) => {
      const a = await getattr(id, server.url(), h.fh);
      t.is(a.status, 0, `${what}: GETATTR status ${a.status}`);
      t.is(a.fileid, h.fileid, `${what}: fileid changed`);
      return a;
    };
    await same(f, 'fresh');

    expectOk(await op('write a/f1 0 4 1'));
    const w = await same(f, 'after copy-up by WRITE');
    t.is(w.size, '26', 'size after the in-place write');
    expectOk(await op('chmod a/f1 0600'));
    const c = await same(f, 'after chmod');
    t.is(c.mode, '600');
    expectOk(await op('rename a/f1 b/f1-renamed'));
    await same(f, 'after rename into another directory');
    const byPath = await handle(id, server.url(), '/b/f1-renamed');
    t.is(byPath.fileid, f.fileid, 'LOOKUP of the new name gives another fileid');
    t.is(byPath.fh, f.fh, 'LOOKUP of the new name gives another handle (issue 5: the same handle)');
    expectOk(await op('rename ren/lowerdir lowerdir-moved'));
    await same(d, 'lower directory after rename');

    await server.restart('SIGKILL');
    await same(f, 'after SIGKILL + restart');
    await same(d, 'lower directory after SIGKILL + restart');
    t.is((await handle(id, server.url(), '/b/f1-renamed')).fileid, f.fileid, 'path lookup after restart');
    t.is((await handle(id, server.url(), '/lowerdir-moved')).fileid, d.fileid, 'renamed lower dir after restart');

    expectOk(await op('unlink b/f1-renamed\nunlink tree/d0/f1'));
    t.is((await getattr(id, server.url(), f.fh)).status, NFS3ERR_STALE, 'removed (copied-up) file must be STALE');
    t.is((await getattr(id, server.url(), gone.fh)).status, NFS3ERR_STALE, 'whited-out lower file must be STALE');
    await server.restart('SIGKILL');
    t.is((await getattr(id, server.url(), f.fh)).status, NFS3ERR_STALE, 'removed file must stay STALE after restart');
    t.is((await getattr(id, server.url(), gone.fh)).status, NFS3ERR_STALE, 'whited-out file must stay STALE after restart');
    await server.stop();
    t.deepEqual(layers.lowers.map(layerFingerprint), before, 'lower layers changed');
  });
});

test.serial('10,000 mutated handles never resolve to another object', async (t) => {
  if (!requireEnv(t, NEEDS)) return;
  t.timeout(3 * 60_000);
  const base = makeTemp('id-fuzz');
  const layers = renderLayers(standardLayers(), `${base}/l`, 'oci', true);
  const server = new TestServer({ lowers: layers.lowers, upper: layers.upper, workdir: layers.workdir });
  await withServer(t, server, base, async () => {
    const id = await compileDriver('identity');
    await server.start();
    const out = await runOk(id, ['fuzz', server.url(), '10000', '7'], { timeoutMs: 150_000 });
    const m = /HANDLES (\d+) TRIED (\d+) SAME (\d+) BADHANDLE (\d+) STALE (\d+) OTHER (\d+) WRONG (\d+)/.exec(out);
    t.truthy(m, out);
    if (!m) return;
    t.log(m[0]);
    t.true(Number(m[1]) >= 20, 'too few handles collected');
    t.true(Number(m[2]) >= 9900, 'too few mutations tried');
    t.is(Number(m[7]), 0, `mutated handles resolved to OTHER objects:\n${out.split('\n').filter((l) => l.startsWith('WRONG')).slice(0, 10).join('\n')}`);
    t.is(Number(m[6]), 0, `mutated handles got statuses other than BADHANDLE/STALE:\n${out.split('\n').filter((l) => /^(OTHERSTATUS|RPCERR)/.test(l)).join('\n')}`);
    // The server must still answer normally afterwards.
    const root = await handle(id, server.url(), '/');
    t.is((await getattr(id, server.url(), root.fh)).status, 0);
  });
});

/** Big merged directory: f000000..f099999 spread over three lowers (every 10th also in L3), w00000..w00299 in L3 whited out by L1. */
function bigLayers(base: string): { lowers: string[]; upper: string; workdir: string; names: string[] } {
  const lowers = [1, 2, 3].map((i) => `${base}/l${i}`);
  for (const l of lowers) mkdirSync(`${l}/big`, { recursive: true });
  const names: string[] = [];
  for (let i = 0; i < 100_000; i++) {
    const name = `f${String(i).padStart(6, '0')}`;
    names.push(name);
    writeFileSync(`${lowers[i % 3]}/big/${name}`, i % 50 === 0 ? `content ${i}\n` : '');
    if (i % 10 === 0 && i % 3 !== 2) writeFileSync(`${lowers[2]}/big/${name}`, 'shadowed\n');
  }
  for (let j = 0; j < 300; j++) {
    const w = `w${String(j).padStart(5, '0')}`;
    writeFileSync(`${lowers[2]}/big/${w}`, '');
    writeFileSync(`${lowers[0]}/big/.wh.${w}`, '');
  }
  const upper = `${base}/upper`;
  const workdir = `${base}/work`;
  mkdirSync(upper);
  mkdirSync(workdir);
  return { lowers, upper, workdir, names };
}

interface Walk { names: string[]; errors: string[]; stop: { cookie: string; verf: string; eof: boolean; pages: number } | undefined }

function parseWalk(out: string): Walk {
  const names: string[] = [];
  const errors: string[] = [];
  let stop: Walk['stop'];
  for (const line of out.split('\n')) {
    if (line.startsWith('E ')) names.push(line.split(' ')[1] ?? '');
    else if (line.startsWith('ERR')) errors.push(line);
    else if (line.startsWith('STOP ')) {
      const [, cookie, verf, eof, pages] = line.split(' ');
      stop = { cookie: cookie ?? '0', verf: verf ?? '', eof: eof === '1', pages: Number(pages) };
    }
  }
  return { names, errors, stop };
}

function duplicates(names: string[]): string[] {
  const seen = new Set<string>();
  const d: string[] = [];
  for (const n of names) {
    if (seen.has(n)) d.push(n);
    seen.add(n);
  }
  return d;
}

test.serial('READDIRPLUS of a 100,000-entry merged directory: each name once under concurrent changes; resumes by cookie after a restart', async (t) => {
  if (!requireEnv(t, NEEDS)) return;
  t.timeout(5 * 60_000);
  const base = makeTemp('id-big');
  const big = bigLayers(base);
  const server = new TestServer({ lowers: big.lowers, upper: big.upper, workdir: big.workdir });
  await withServer(t, server, base, async () => {
    const [id, ops] = await Promise.all([compileDriver('identity'), compileDriver('ops')]);
    await server.start();
    const url = server.url();
    const removed = new Set<string>();
    const created: string[] = [];
    const script: string[] = [];
    for (let k = 0; k < 600; k++) {
      const r = big.names[(k * 97 + 5) % 100_000] ?? '';
      const u = big.names[(k * 89 + 7) % 100_000] ?? '';
      if (!removed.has(r)) {
        removed.add(r);
        script.push(`unlink big/${r}`);
      }
      const n = `n${String(k).padStart(5, '0')}`;
      created.push(n);
      script.push(`create big/${n} 0644`);
      if (!removed.has(u)) script.push(`write big/${u} 0 8 ${k}`);
    }
    const stable = big.names.filter((n) => !removed.has(n));

    const t0 = Date.now();
    const walkP = runOk(id, ['walk', url, '/big', '0', '0', '0000000000000000', '0'], { timeoutMs: 120_000 }).then((o) => ({ o, ms: Date.now() - t0 }));
    const mutP = runOk(ops, [url], { input: `${script.join('\n')}\n`, timeoutMs: 120_000 }).then((o) => ({ o, ms: Date.now() - t0 }));
    const [walk, mut] = await Promise.all([walkP, mutP]);
    t.log(`walk under mutation: ${walk.ms} ms; ${script.length} concurrent changes took ${mut.ms} ms`);
    t.notRegex(mut.o, /\tERR\t/, 'a concurrent change failed');
    const w = parseWalk(walk.o);
    t.deepEqual(w.errors, [], 'walk errors');
    t.true(w.stop?.eof, 'walk did not reach eof');
    t.deepEqual(duplicates(w.names).slice(0, 20), [], 'names returned twice while the directory changed');
    const got = new Set(w.names);
    const missing = stable.filter((n) => !got.has(n));
    t.deepEqual(missing.slice(0, 20), [], `${missing.length} names that existed throughout were omitted`);
    const allowed = new Set([...big.names, ...created]);
    const foreign = w.names.filter((n) => !allowed.has(n));
    t.deepEqual(foreign.slice(0, 20), [], 'names that never existed (whiteouts / markers?) were listed');

    // Quiet directory now: a complete walk is the reference, then a walk interrupted by a restart.
    const full = parseWalk(await runOk(id, ['walk', url, '/big', '0', '0', '0000000000000000', '0'], { timeoutMs: 120_000 }));
    const expected = [...stable, ...created].sort();
    t.deepEqual([...full.names].sort(), expected, 'quiet full walk is not (lowers - removed + created)');
    const first = parseWalk(await runOk(id, ['walk', url, '/big', '300', '0', '0000000000000000', '0'], { timeoutMs: 120_000 }));
    t.truthy(first.stop && !first.stop.eof, 'the first half of the walk reached eof already');
    await server.restart('SIGKILL');
    const stop = first.stop ?? { cookie: '0', verf: '0000000000000000' };
    const second = parseWalk(await runOk(id, ['walk', server.url(), '/big', '0', stop.cookie, stop.verf, '0'], { timeoutMs: 120_000 }));
    t.deepEqual(second.errors, [], `resume after restart failed (cookie ${stop.cookie})`);
    const joined = [...first.names, ...second.names];
    t.deepEqual(duplicates(joined).slice(0, 20), [], 'resumed walk repeated names');
    t.is(joined.length, expected.length, `resumed walk: ${first.names.length} + ${second.names.length} names, expected ${expected.length}`);
    t.deepEqual([...joined].sort(), expected, 'resumed walk differs from the full listing');
  });
});
