/**
 * Issue 17: the metrics endpoint, scraped while clients nobody here wrote (libnfs's nfs-cat
 * and nfs-cp) and a scripted client with a source address of its own make calls at once.
 * Every count the scripted client can know exactly (its NFS calls, the bytes it read and
 * wrote, the one copy-up it caused) and every byte libnfs moved must show up exactly; every
 * histogram must agree with its counters. The endpoint refuses all but GET /metrics, and with
 * --log-format json every line on stderr is a JSON record, MNT and refusals carrying the
 * client and the export.
 */
import test from 'ava';
import http from 'node:http';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { XdrWriter } from '@nfs-ts/xdr';
import { run } from './libnfs/driver.js';
import { requireEnv } from './libnfs/env.js';
import { cleanupTemp, layerFingerprint, makeTemp } from './libnfs/oracle.js';
import { TestServer } from './libnfs/server.js';
import { RpcClient } from '../helpers/rpc-client.js';
import { MOUNT_PROGRAM, MOUNTPROC3 } from '../../src/mount/program.js';
import { NFS_PROGRAM, NFSPROC3 } from '../../src/nfs3/constants.js';

const NEEDS = { root: true, libnfsUtils: true, server: true } as const;

/** The scripted client's source address, and one no rule admits. */
const SCRIPTED = '127.0.0.5';
const STRANGER = '127.0.0.9';

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

/** GET (or another method) on the endpoint: status and body. */
function request(port: number, path: string, method = 'GET'): Promise<{ status: number; body: string; allow?: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, ...(res.headers.allow !== undefined && { allow: res.headers.allow }) }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Prometheus text exposition -> series ('name{a="x",b="y"}' with labels sorted) -> value. */
function parseExposition(text: string): Map<string, number> {
  const series = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) throw new Error(`not exposition format: ${line}`);
    const labels = [...(m[2] ?? '').matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)].map((l) => `${l[1]}="${l[2]}"`).sort();
    series.set(`${m[1]}{${labels.join(',')}}`, Number(m[3]));
  }
  return series;
}

/** The sum of every series of `name` whose labels include all of `labels`. */
function value(series: Map<string, number>, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let sum = 0;
  for (const [key, v] of series) {
    const at = key.indexOf('{');
    if (key.slice(0, at) !== name) continue;
    const have = key.slice(at + 1, -1).split(',');
    if (want.every((w) => have.includes(w))) sum += v;
  }
  return sum;
}

async function scrape(port: number): Promise<Map<string, number>> {
  const r = await request(port, '/metrics');
  if (r.status !== 200) throw new Error(`GET /metrics answered ${r.status}`);
  return parseExposition(r.body);
}

test('metrics count what libnfs and a scripted client did, at once; the endpoint serves GET /metrics only; JSON logs', async (t) => {
  if (!requireEnv(t, NEEDS)) return;
  const dir = makeTemp('unfs-metrics-');
  const server = new TestServer({
    lowers: [join(dir, 'lower')], upper: join(dir, 'upper'), workdir: join(dir, 'work'),
    clients: `127.0.0.1(rw,no_root_squash) ${SCRIPTED}(rw,no_root_squash,insecure)`,
    extraArgs: ['--metrics', '0', '--log-format', 'json'],
  });
  try {
    mkdirSync(join(dir, 'lower'));
    mkdirSync(join(dir, 'upper'));
    mkdirSync(join(dir, 'work'));
    const big = pattern(3 * 1024 * 1024 + 5, 1);
    const small = pattern(64 * 1024, 2);
    const seed = pattern(100_000, 3);
    const local = pattern(1024 * 1024 + 7, 4);
    writeFileSync(join(dir, 'lower/big'), big);
    writeFileSync(join(dir, 'lower/small'), small);
    writeFileSync(join(dir, 'lower/seed'), seed);
    writeFileSync(join(dir, 'local'), local);
    const lowerBefore = layerFingerprint(join(dir, 'lower'));
    const ready = await server.start();
    const port = ready.metricsPort;
    if (port === undefined) return t.fail('no metrics= in the ready line');
    const before = await scrape(port);
    t.is(value(before, 'union_nfsd_client_requests_total'), 0, 'nothing counted before any call');

    // libnfs: four whole-file reads and one copy into the export, as separate processes.
    const cats = Array.from({ length: 4 }, () => run('nfs-cat', [server.url('/big')], { timeoutMs: 120_000 }));
    const cp = run('nfs-cp', [join(dir, 'local'), server.url('/copied')], { timeoutMs: 120_000 });

    // The scripted client: every call in flight together, each counted here.
    const c = await RpcClient.connect('tcp', '127.0.0.1', ready.nfsPort, { localAddress: SCRIPTED, timeoutMs: 30_000 });
    const mnt = await c.ok(MOUNT_PROGRAM, 3, MOUNTPROC3.MNT, (w) => w.string('/union'));
    t.is(mnt.enum(), 0);
    const root = Buffer.from(mnt.opaque(64));
    const lookup = async (name: string): Promise<{ status: number; fh?: Buffer }> => {
      const r = await c.ok(NFS_PROGRAM, 3, NFSPROC3.LOOKUP, (w) => w.opaque(root).string(name));
      const status = r.uint32();
      return status === 0 ? { status, fh: Buffer.from(r.opaque(64)) } : { status };
    };
    const [smallFh, seedFh] = await Promise.all([lookup('small'), lookup('seed')]).then((l) => l.map((x) => x.fh!));
    let nfsCalls = 2;
    const scrapesDuring: Promise<Map<string, number>>[] = [];
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < 50; i++) calls.push(c.ok(NFS_PROGRAM, 3, NFSPROC3.GETATTR, (w) => w.opaque(smallFh!)));
    for (let i = 0; i < 20; i++) calls.push(lookup(`missing-${i}`).then((l) => t.is(l.status, 2, 'NOENT')));
    for (let i = 0; i < 10; i++) {
      calls.push(c.ok(NFS_PROGRAM, 3, NFSPROC3.READ, (w) => w.opaque(smallFh!).uint64(BigInt(i * 4096)).uint32(4096)));
      if (i % 3 === 0) scrapesDuring.push(scrape(port));
    }
    const data = pattern(1000, 9);
    for (let i = 0; i < 5; i++) {
      calls.push(c.ok(NFS_PROGRAM, 3, NFSPROC3.WRITE, (w: XdrWriter) => w.opaque(seedFh!).uint64(BigInt(i * 1000)).uint32(1000).uint32(2).opaque(data)));
    }
    nfsCalls += calls.length;
    await Promise.all(calls);
    for (const r of await Promise.all([...cats, cp])) t.is(r.code, 0, r.stderr);
    c.close();

    // A client no rule admits: refused, counted and logged.
    const stranger = await RpcClient.connect('tcp', '127.0.0.1', ready.nfsPort, { localAddress: STRANGER });
    const refused = await stranger.ok(NFS_PROGRAM, 3, NFSPROC3.GETATTR, (w) => w.opaque(smallFh!));
    t.is(refused.uint32(), 13, 'NFS3ERR_ACCES');
    stranger.close();

    t.true((await Promise.all(scrapesDuring)).length > 0, 'scraped while the calls ran');
    const m = await scrape(port);
    t.is(value(m, 'union_nfsd_client_requests_total', { client: SCRIPTED }), nfsCalls, 'every NFS call of the scripted client');
    t.is(value(m, 'union_nfsd_client_read_bytes_total', { client: SCRIPTED }), 10 * 4096);
    t.is(value(m, 'union_nfsd_client_written_bytes_total', { client: SCRIPTED }), 5 * 1000);
    t.is(value(m, 'union_nfsd_client_read_bytes_total', { client: '127.0.0.1' }), 4 * big.length, 'libnfs: four whole files');
    t.is(value(m, 'union_nfsd_client_written_bytes_total', { client: '127.0.0.1' }), local.length, 'libnfs: the copied file');
    t.is(value(m, 'union_nfsd_export_read_bytes_total', { export: '/union' }), 4 * big.length + 10 * 4096);
    t.is(value(m, 'union_nfsd_export_written_bytes_total', { export: '/union' }), local.length + 5 * 1000);
    t.is(value(m, 'union_nfsd_client_requests_total', { client: STRANGER }), 1);
    t.is(value(m, 'union_nfsd_nfs_errors_total', { procedure: 'getattr', status: 'NFS3ERR_ACCES' }), 1);
    t.true(value(m, 'union_nfsd_nfs_errors_total', { procedure: 'lookup', status: 'NFS3ERR_NOENT' }) >= 20);
    t.is(value(m, 'union_nfsd_copy_ups_total'), 1, 'seed copied up once, by the first WRITE');
    t.is(value(m, 'union_nfsd_copy_up_bytes_total'), seed.length);
    t.true(value(m, 'union_nfsd_requests_total', { program: 'mount3', procedure: 'mnt' }) >= 6, 'MNT: scripted client, four nfs-cat, nfs-cp');

    // Histograms agree with the counters, per program and procedure.
    const procs = [...m.keys()].filter((k) => k.startsWith('union_nfsd_requests_total{')).map((k) => k.slice(k.indexOf('{')));
    t.true(procs.length >= 6);
    for (const labels of procs) {
      const count = m.get(`union_nfsd_requests_total${labels}`)!;
      t.is(m.get(`union_nfsd_request_duration_seconds_count${labels}`), count, labels);
      const inf = labels.replace('{', '{le="+Inf",');
      t.is(m.get(`union_nfsd_request_duration_seconds_bucket${inf}`), count, `${labels} +Inf bucket`);
      t.true(m.get(`union_nfsd_request_duration_seconds_sum${labels}`)! > 0, `${labels} time`);
    }
    // Every NFS call but NULL passes the NFS program's observer, whoever made it.
    const nfs = value(m, 'union_nfsd_requests_total', { program: 'nfs3' }) - value(m, 'union_nfsd_requests_total', { program: 'nfs3', procedure: 'null' });
    t.is(value(m, 'union_nfsd_client_requests_total'), nfs);
    t.is(value(m, 'union_nfsd_export_requests_total', { export: '/union' }), nfs, 'the stranger\'s refused call included: its handle named the export');
    t.is(value(m, 'union_nfsd_requests_in_flight'), 0);
    t.true(value(m, 'union_nfsd_node_cache_nodes', { export: '/union' }) >= 4);
    t.true(value(m, 'process_resident_memory_bytes') > 0);
    t.true(m.has('nodejs_eventloop_lag_p99_seconds{}'));

    t.is(layerFingerprint(join(dir, 'lower')), lowerBefore, 'the lower layer is byte-identical after the copy-up and the writes');

    // Nothing but GET /metrics.
    for (const [path, method, status] of [['/metrics', 'POST', 405], ['/metrics', 'PUT', 405], ['/metrics', 'HEAD', 405], ['/metrics', 'DELETE', 405],
      ['/', 'GET', 404], ['/metrics/', 'GET', 404], ['/debug', 'GET', 404], ['/metricsx', 'GET', 404]] as const) {
      const r = await request(port, path, method);
      t.is(r.status, status, `${method} ${path}`);
      if (status === 405) t.is(r.allow, 'GET');
    }

    // JSON lines: every line a record; MNT and the refusal name the client and the export.
    await server.waitFor(new RegExp(`refused ${STRANGER.replaceAll('.', '\\.')}`));
    const records = server.output().split('\n').filter((l) => !l.startsWith('union-nfsd ready')).map((l) => JSON.parse(l) as Record<string, unknown>);
    t.true(records.every((r) => typeof r['timestamp'] === 'string' && typeof r['level'] === 'string' && typeof r['message'] === 'string'));
    t.true(records.some((r) => String(r['message']).startsWith('MNT') && r['client'] === SCRIPTED && r['export'] === '/union'));
    t.true(records.some((r) => r['level'] === 'warn' && r['client'] === STRANGER && r['export'] === '/union'));
  } finally {
    await server.stop();
    cleanupTemp(dir);
  }
});
