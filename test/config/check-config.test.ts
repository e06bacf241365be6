// `union-nfsd --check-config FILE`, run as a user runs it: exit status, stdout, stderr.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import test from 'ava';
import { serverCli } from '../e2e/libnfs/env.js';
import { mkTmp } from '../helpers/layers.js';

function check(file: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [serverCli, '--check-config', file], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('--check-config prints what a valid file serves, creates nothing, listens on nothing', (t) => {
  const base = mkTmp('unfs-check-');
  t.teardown(() => fs.rmSync(base, { recursive: true, force: true }));
  for (const d of ['os', 'app', 'fleet']) fs.mkdirSync(path.join(base, d));
  const file = path.join(base, 'u.yaml');
  fs.writeFileSync(file, [
    'port: 3049',
    'metrics: 9464',
    'exports:',
    `  - {path: /base, lower: [${base}/app, ${base}/os], clients: "10.0.0.0/24(ro) 10.0.0.9(rw) *(ro,all_squash)", fsid: 5}`,
    '  - path: /fleet',
    `    lower: ${base}/os`,
    `    upper: ${base}/fleet/{client}/upper`,
    `    workdir: ${base}/fleet/{client}/work`,
    '    names: {node1: 10.0.1.1}',
    '    clients: 10.0.1.0/24(rw,no_root_squash)',
    '',
  ].join('\n'));
  const before = fs.readdirSync(base, { recursive: true }).sort();
  const r = check(file);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, new RegExp(`^${file}: valid; it serves 2 export\\(s\\)`));
  t.regex(r.stdout, /export \/base {2}\(.*u\.yaml:4; fsid 5; read-only\)/);
  t.regex(r.stdout, new RegExp(`lower 1 {2}${base}/app\\n {2}lower 2 {2}${base}/os`));
  // Rules in matching order (host, network, *), every option spelled out.
  t.regex(r.stdout, /client {3}10\.0\.0\.9\(rw,root_squash,secure\)\n {2}client {3}10\.0\.0\.0\/24\(ro,root_squash,secure\)\n {2}client {3}\*\(ro,all_squash,secure\)/);
  t.regex(r.stdout, /export \/fleet .*a union per client/);
  t.regex(r.stdout, /name {5}node1 = 10\.0\.1\.1/);
  t.regex(r.stdout, /listen 0\.0\.0\.0:3049, portmap on, metrics http:\/\/127\.0\.0\.1:9464\/metrics/);
  t.deepEqual(fs.readdirSync(base, { recursive: true }).sort(), before, 'nothing created');
});

test('--check-config refuses a bad file with its line, exit 2', (t) => {
  const base = mkTmp('unfs-check-');
  t.teardown(() => fs.rmSync(base, { recursive: true, force: true }));
  for (const d of ['os/u', 'w']) fs.mkdirSync(path.join(base, d), { recursive: true });
  const cases: [string, RegExp][] = [
    ['exports:\n  - {path: /a, lower: /nonexistent-layer, clients: "*"}\n', /u\.yaml:2: lower 1 \/nonexistent-layer: ENOENT/],
    [`exports:\n  - {path: /a, lower: ${base}/os, upper: ${base}/os/u, workdir: ${base}/w, clients: "*"}\n`, /u\.yaml:2: export \/a: upper .* lies inside lower 1/],
    [`exports:\n  - {path: /a, lower: ${base}/os, clients: "no-such-host.invalid(rw)"}\n`, /u\.yaml:2: export \/a: clients: .*no-such-host\.invalid/],
    ['exports:\n  - {path: /a, lower: /l, clients: "*", colour: red}\n', /u\.yaml:2: unknown export key 'colour'/],
  ];
  for (const [text, re] of cases) {
    fs.writeFileSync(path.join(base, 'u.yaml'), text);
    const r = check(path.join(base, 'u.yaml'));
    t.is(r.status, 2, text);
    t.is(r.stdout, '', text);
    t.regex(r.stderr, re, text);
  }
});
