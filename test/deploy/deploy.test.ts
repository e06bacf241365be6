/**
 * Issue 17: what deploy/ ships is checked, not just kept: systemd accepts the unit and rates
 * its exposure low; the example configuration parses and every directory it writes lies where
 * the unit lets the server write; the unit's command line parses; the container file copies
 * what exists and starts node as the server's own first line does; the Grafana dashboard
 * type-checks against Grafana's published dashboard schema (@grafana/schema), and every
 * metric its queries name is one the server exposes.
 */
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../../src/config-file.js';
import { parseCommandLine } from '../../src/config.js';
import { ServerMetrics } from '../../src/metrics/metrics.js';
import { gate, repoRoot } from '../e2e/libnfs/env.js';

const deploy = (f: string): string => join(repoRoot, 'deploy', f);
const UNIT = deploy('union-nfsd.service');

function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** The unit's settings: key -> values, continuation lines joined. */
function unitSettings(): Map<string, string[]> {
  const text = fs.readFileSync(UNIT, 'utf8').replace(/\\\n\s*/g, ' ');
  const m = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (kv) m.set(kv[1]!, [...(m.get(kv[1]!) ?? []), kv[2]!]);
  }
  return m;
}

test('systemd accepts the unit, and rates its exposure at most 4.0', (t) => {
  if (!gate(t, 'deploy', hasCommand('systemd-analyze') ? [] : ['systemd-analyze (systemd package)'])) return;
  const verify = spawnSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8' });
  t.is(verify.status, 0, verify.stderr);
  t.is(verify.stderr.trim(), '', 'no warnings');
  const security = spawnSync('systemd-analyze', ['security', '--offline=true', '--threshold=40', '--no-pager', UNIT], { encoding: 'utf8' });
  t.is(security.status, 0, security.stdout.split('\n').slice(-3).join('\n'));
  t.log(security.stdout.trim().split('\n').at(-1) ?? '');
});

test('the unit\'s command line parses, and the example configuration writes only where the unit allows', (t) => {
  const s = unitSettings();
  const exec = s.get('ExecStart')?.[0]?.split(/\s+/) ?? [];
  t.deepEqual(exec.slice(0, 2), ['/usr/bin/env', 'union-nfsd']);
  const parsed = parseCommandLine(exec.slice(2));
  t.is(parsed.config, '/etc/union-nfsd/union-nfsd.yaml');
  t.is(parsed.logFormat, 'json');

  const file = parseConfig(fs.readFileSync(deploy('union-nfsd.yaml'), 'utf8'), 'union-nfsd.yaml');
  t.true(file.exports.length >= 3);
  const writable = (s.get('ReadWritePaths') ?? []).flatMap((v) => v.split(/\s+/));
  const state = (s.get('StateDirectory') ?? []).map((d) => `/var/lib/${d}`);
  for (const e of file.exports) {
    for (const d of [e.upper, e.workdir, e.state]) {
      if (d === undefined) continue;
      t.true([...writable, ...state].some((w) => d.startsWith(`${w}/`)), `${e.path}: ${d} is writable under the unit`);
    }
  }
  t.deepEqual(file.metrics, { host: '127.0.0.1', port: 9464 });
  const prometheus = fs.readFileSync(deploy('prometheus.yml'), 'utf8');
  t.regex(prometheus, /targets: \['127\.0\.0\.1:9464'\]/, 'the scrape snippet points at the example\'s endpoint');
});

test('the container file copies what exists and starts node as dist/src/cli.js\'s first line does', (t) => {
  const text = fs.readFileSync(deploy('Containerfile'), 'utf8');
  for (const m of text.matchAll(/^COPY (?!--from)(.+)$/gm)) {
    const parts = m[1]!.trim().split(/\s+/);
    for (const src of parts.slice(0, -1)) t.true(fs.existsSync(join(repoRoot, src)), `COPY ${src}`);
  }
  const shebang = fs.readFileSync(join(repoRoot, 'src/cli.ts'), 'utf8').split('\n')[0]!;
  const flags = shebang.split(/\s+/).filter((w) => w.startsWith('--'));
  const tunables = /GLIBC_TUNABLES=(\S+)/.exec(shebang)?.[1];
  const entry = JSON.parse(/^ENTRYPOINT (.+)$/m.exec(text)?.[1] ?? '[]') as string[];
  t.deepEqual(entry, ['node', ...flags, 'dist/src/cli.js']);
  t.regex(text, new RegExp(`GLIBC_TUNABLES=${tunables?.replaceAll('.', '\\.')}`));
  const cmd = JSON.parse(/^CMD (.+)$/m.exec(text)?.[1] ?? '[]') as string[];
  t.is(parseCommandLine(cmd).config, '/etc/union-nfsd/union-nfsd.yaml');
});

test('the Grafana dashboard type-checks against @grafana/schema, and queries only metrics the server exposes', async (t) => {
  const json = fs.readFileSync(deploy('grafana-dashboard.json'), 'utf8');
  const dashboard = JSON.parse(json) as { panels: { id: number; type: string; targets?: { expr: string }[] }[] };
  // Grafana's schema as TypeScript: the dashboard as an object literal must satisfy Dashboard.
  const dir = join(repoRoot, '.cache/dashboard-check');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(join(dir, 'dashboard.ts'), `import type { Dashboard } from '@grafana/schema';\nexport const dashboard = ${json.trim()} satisfies Dashboard;\n`);
  fs.writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
    extends: '../../tsconfig.base.json',
    compilerOptions: { noEmit: true, composite: false, declaration: false, sourceMap: false },
    files: ['dashboard.ts'],
  }));
  const tsc = spawnSync(process.execPath, [join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', dir], { encoding: 'utf8' });
  t.is(tsc.status, 0, tsc.stdout + tsc.stderr);

  const ids = dashboard.panels.map((p) => p.id);
  t.is(new Set(ids).size, ids.length, 'panel ids unique');
  const exprs = dashboard.panels.flatMap((p) => p.targets ?? []).map((q) => q.expr);
  t.true(exprs.length >= 20);
  const metrics = new ServerMetrics({ exports: () => [], drcEntries: () => 0, locks: () => ({ held: 0, blocked: 0, grace: false }) });
  const exposed = new Set<string>();
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    exposed.add(m.name);
    if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) exposed.add(m.name + s);
  }
  for (const e of exprs) {
    const names = [...e.matchAll(/\b((?:union_nfsd|process|nodejs)_[a-z0-9_]+)/g)].map((m) => m[1]!);
    t.true(names.length > 0, e);
    for (const n of names) t.true(exposed.has(n), `${n} in ${e}`);
  }
  const referenced = new Set(exprs.flatMap((e) => [...e.matchAll(/\bunion_nfsd_[a-z0-9_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, ''))));
  const unused = [...exposed].filter((n) => n.startsWith('union_nfsd_') && !/_(bucket|sum|count)$/.test(n) && !referenced.has(n));
  t.deepEqual(unused, [], 'every union_nfsd metric has a panel');
});

test('the example configuration passes --check-config once its directories exist', (t) => {
  if (!gate(t, 'deploy', fs.existsSync(join(repoRoot, 'dist/src/cli.js')) ? [] : ['a built server'])) return;
  // The example's directories, made under a temporary root and substituted into the file.
  const root = fs.mkdtempSync('/tmp/unfs-deploy-');
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const text = fs.readFileSync(deploy('union-nfsd.yaml'), 'utf8').replaceAll('/srv/', `${root}/srv/`);
  for (const d of ['srv/layers/app', 'srv/layers/os', 'srv/union/fleet', 'srv/union/build/upper', 'srv/union/build/work']) fs.mkdirSync(join(root, d), { recursive: true });
  fs.writeFileSync(join(root, 'u.yaml'), text);
  const out = execFileSync(process.execPath, [join(repoRoot, 'dist/src/cli.js'), '--check-config', join(root, 'u.yaml')], { encoding: 'utf8' });
  t.regex(out, /valid; it serves 3 export\(s\)/);
});
