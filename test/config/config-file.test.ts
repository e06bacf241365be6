// The configuration file: what it accepts, and errors that name the file and line.
import * as fs from 'node:fs';
import * as path from 'node:path';
import test from 'ava';
import { parseConfig, pathFsid } from '../../src/config-file.js';
import { parseCommandLine, UsageError } from '../../src/config.js';
import { DEFAULT_OPTIONS } from '../../src/exports/client-rules.js';
import { checkLayout } from '../../src/exports/layout.js';
import { mkTmp } from '../helpers/layers.js';

const FLEET = `# two exports over one base
host: 0.0.0.0
port: 2049
mount-port: 20048
portmap: false
exports:
  - path: /base/
    lower: [/srv/app, /srv/os]
    clients: "10.0.0.0/24(ro) 10.0.9.1(rw)"
  - path: /node7
    lower: /srv/app:/srv/os
    upper: /srv/n7/upper
    workdir: /srv/n7/work
    whiteout: overlayfs
    fsid: 7
    clients:
      - 10.0.0.7(rw,no_root_squash)
      - 10.0.0.8(rw,insecure)
`;

test('a fleet file: listening settings, exports with their layers, rules and fsids', (t) => {
  const c = parseConfig(FLEET, 'fleet.yaml');
  t.like(c, { host: '0.0.0.0', port: 2049, mountPort: 20048, portmap: false, busyPollUs: 200 });
  const [base, node7] = c.exports;
  t.like(base, { path: '/base', lowers: ['/srv/app', '/srv/os'], whiteoutFormat: 'oci', fsid: pathFsid('/base'), source: 'fleet.yaml:7' });
  t.is(base?.upper, undefined);
  t.deepEqual(base?.clients.map((r) => [r.spec, r.options.rw]), [['10.0.0.0/24', false], ['10.0.9.1', true]]);
  t.like(node7, { path: '/node7', lowers: ['/srv/app', '/srv/os'], upper: '/srv/n7/upper', workdir: '/srv/n7/work', whiteoutFormat: 'overlayfs', fsid: 7 });
  t.deepEqual(node7?.clients.map((r) => r.options), [{ ...DEFAULT_OPTIONS, rw: true, squash: 'none' }, { ...DEFAULT_OPTIONS, rw: true, secure: false }]);
});

test('default fsids are stable, 24-bit and never the command line\'s 0', (t) => {
  t.is(pathFsid('/base'), pathFsid('/base'));
  t.not(pathFsid('/base'), pathFsid('/node7'));
  for (const p of ['/', '/a', '/union', '/x'.repeat(300)]) {
    const f = pathFsid(p);
    t.true(f > 0 && f <= 0xffffff, p);
  }
});

test('every mistake names the file and the line', (t) => {
  const one = (body: string) => `exports:\n  - path: /a\n    lower: /l\n${body}`;
  const cases: [string, RegExp][] = [
    ['exports: [\n', /^f\.yaml:\d+: /],
    ['- just a list\n', /^f\.yaml:1: the file must be a mapping/],
    ['hosts: 1.2.3.4\nexports: []\n', /^f\.yaml:1: unknown setting 'hosts'/],
    ['exports: []\n', /^f\.yaml:1: `exports:` must be a list/],
    [one('    clients: "*(ro)"\n    client: x\n'), /^f\.yaml:5: unknown export key 'client'/],
    [one(''), /^f\.yaml:2: an export needs `clients:`/],
    [one('    clients: "10.0.0.1(rw,sqush)"\n'), /^f\.yaml:4: clients: unknown option 'sqush'/],
    [one('    clients:\n      - "10.0.0.1(rw)"\n      - "*.lab"\n'), /^f\.yaml:6: clients: '\*\.lab': wildcard/],
    [one('    clients: "*"\n    upper: /u\n'), /^f\.yaml:2: `upper:` and `workdir:` go together/],
    [one('    clients: "*"\n    whiteout: aufs\n'), /^f\.yaml:5: whiteout is oci or overlayfs/],
    [one('    clients: "*"\n    fsid: 16777216\n'), /^f\.yaml:5: fsid wants an integer 0-16777215/],
    [one('    clients: "*"\n    fsid: "7"\n'), /^f\.yaml:5: fsid wants an integer/],
    [one('    clients: ""\n'), /^f\.yaml:4: `clients:` names no client/],
    ['port: 70000\nexports:\n  - {path: /a, lower: /l, clients: "*"}\n', /^f\.yaml:1: port wants an integer 0-65535/],
    ['portmap: "no"\nexports:\n  - {path: /a, lower: /l, clients: "*"}\n', /^f\.yaml:1: wants a boolean/],
    ['exports:\n  - {path: a, lower: /l, clients: "*"}\n', /^f\.yaml:2: path must be an absolute path/],
    ['exports:\n  - {path: /a, lower: /l, clients: "*"}\n  - {path: /a/, lower: /m, clients: "*"}\n', /^f\.yaml:3: export path \/a is also the path of the export at f\.yaml:2/],
    ['exports:\n  - {path: /a, lower: /l, clients: "*", fsid: 3}\n  - {path: /b, lower: /m, clients: "*", fsid: 3}\n', /^f\.yaml:3: fsid 3 is also the fsid of \/a/],
    ['exports:\n  - {path: /a, lower: /l, clients: "*", path: /b}\n', /^f\.yaml:\d+: .*[Mm]ap keys must be unique/],
  ];
  for (const [text, re] of cases) {
    const e = t.throws(() => parseConfig(text, 'f.yaml'), { instanceOf: UsageError }, text);
    t.regex(e?.message ?? '', re, text);
  }
});

test('the command line: --clients is parsed, --config excludes the one-export options', (t) => {
  const p = parseCommandLine(['--lower', '/l', '--clients', '10.0.0.0/24(rw)']);
  t.deepEqual(p.options.exports[0]?.clients.map((r) => r.spec), ['10.0.0.0/24']);
  t.false(p.options.exports[0]?.defaultClients);
  t.is(p.options.exports[0]?.fsid, 0);
  const d = parseCommandLine(['--lower', '/l']);
  t.true(d.options.exports[0]?.defaultClients);
  t.throws(() => parseCommandLine(['--lower', '/l', '--clients', '10.0.0.1(bogus)']), { instanceOf: UsageError, message: /--clients: unknown option 'bogus'/ });
  t.throws(() => parseCommandLine(['--lower', '/l', '--clients', ' ']), { instanceOf: UsageError, message: /names no client/ });
  t.throws(() => parseCommandLine(['--config', 'f.yaml', '--lower', '/l']), { instanceOf: UsageError, message: /--lower describes the one export/ });
  const c = parseCommandLine(['--config', 'f.yaml', '--port', '3049']);
  t.is(c.config, 'f.yaml');
  t.false(c.demo);
  t.deepEqual([...c.given], ['port']);
});

test('layout: a directory a union writes may not overlap any layer or other written directory', (t) => {
  const base = mkTmp('unfs-layout-');
  t.teardown(() => fs.rmSync(base, { recursive: true, force: true }));
  for (const d of ['os', 'app', 'n1/upper', 'n1/work', 'n2/upper', 'n2/work', 'os/inner']) fs.mkdirSync(path.join(base, d), { recursive: true });
  fs.symlinkSync(path.join(base, 'n1/upper'), path.join(base, 'alias'));
  const d = (p: string) => path.join(base, p);
  const exp = (name: string, o: { lowers?: string[]; upper?: string; workdir?: string; state?: string }) => ({
    path: `/${name}`, lowers: o.lowers ?? [d('app'), d('os')], whiteoutFormat: 'oci' as const, fsid: name.length,
    clients: [], defaultClients: false, source: `f.yaml:${name.length}`,
    ...(o.upper !== undefined && { upper: o.upper }), ...(o.workdir !== undefined && { workdir: o.workdir }), ...(o.state !== undefined && { state: o.state }),
  });
  // Shared lowers are the point of a fleet.
  t.notThrows(() => checkLayout([exp('a', { upper: d('n1/upper'), workdir: d('n1/work') }), exp('bb', { upper: d('n2/upper'), workdir: d('n2/work') }), exp('ccc', {})]));
  const refused: [ReturnType<typeof exp>[], RegExp][] = [
    [[exp('a', { upper: d('n1/upper'), workdir: d('n1/upper') })], /workdir .* is the same directory as upper/],
    [[exp('a', { upper: d('n1'), workdir: d('n1/work') })], /workdir .* lies inside upper/],
    [[exp('a', { upper: d('os/inner'), workdir: d('n1/work') })], /upper .* lies inside lower 2/],
    [[exp('a', { lowers: [d('n1')], upper: d('n1/upper'), workdir: d('n1/work') })], /upper .* lies inside lower 1/],
    [[exp('a', { upper: d('n1/upper'), workdir: d('n1/work') }), exp('bb', { lowers: [d('alias')] })], /lower 1 .*alias is the same directory as upper .* of export \/a/],
    [[exp('a', { upper: d('n1/upper'), workdir: d('n1/work') }), exp('bb', { upper: d('n1/upper'), workdir: d('n2/work') })], /export \/bb: upper .* is the same directory as upper/],
    [[exp('a', { state: d('os') })], /state .* is the same directory as lower 2/],
  ];
  for (const [exports, re] of refused) {
    const e = t.throws(() => checkLayout(exports), { instanceOf: UsageError });
    t.regex(e?.message ?? '', re);
  }
  t.throws(() => checkLayout([exp('a', { lowers: [d('missing')] })]), { instanceOf: UsageError, message: /f\.yaml:1: lower 1 .*missing: ENOENT/ });
});

test('--metrics and metrics: take PORT, HOST:PORT or [IPV6]:PORT, loopback unless a host is given', (t) => {
  t.deepEqual(parseCommandLine(['--lower', '/l', '--metrics', '9464']).options.metrics, { host: '127.0.0.1', port: 9464 });
  t.deepEqual(parseCommandLine(['--lower', '/l', '--metrics', '0.0.0.0:9464']).options.metrics, { host: '0.0.0.0', port: 9464 });
  t.deepEqual(parseCommandLine(['--lower', '/l', '--metrics', '[::1]:9464']).options.metrics, { host: '::1', port: 9464 });
  t.is(parseCommandLine(['--lower', '/l']).options.metrics, undefined, 'off by default');
  for (const bad of ['', 'x', '70000', 'host:', '[nothost]:1', '::1:9464']) {
    t.throws(() => parseCommandLine(['--lower', '/l', '--metrics', bad]), { instanceOf: UsageError, message: /--metrics/ }, bad);
  }
  const exp = 'exports:\n  - {path: /a, lower: /l, clients: "*"}\n';
  t.deepEqual(parseConfig(`metrics: 9464\n${exp}`, 'f.yaml').metrics, { host: '127.0.0.1', port: 9464 });
  t.deepEqual(parseConfig(`metrics: "10.0.0.1:9464"\n${exp}`, 'f.yaml').metrics, { host: '10.0.0.1', port: 9464 });
  t.throws(() => parseConfig(`metrics: [1]\n${exp}`, 'f.yaml'), { instanceOf: UsageError, message: /^f\.yaml:1: metrics wants PORT or HOST:PORT/ });
  const c = parseCommandLine(['--config', 'f.yaml', '--metrics', '9000']);
  t.true(c.given.has('metrics'), 'the command line overrides the file');
});

test('--grace-period and --nsm-dir (grace-period:, nsm-dir: in the file)', (t) => {
  t.is(parseCommandLine(['--lower', '/l']).options.graceSeconds, undefined, 'the server\'s default');
  t.is(parseCommandLine(['--lower', '/l', '--grace-period', '0']).options.graceSeconds, 0);
  t.is(parseCommandLine(['--lower', '/l', '--grace-period', '45', '--nsm-dir', '/var/lib/x']).options.nsmDir, '/var/lib/x');
  for (const bad of ['1.5', 'x', '3601', '-1']) {
    t.throws(() => parseCommandLine(['--lower', '/l', `--grace-period=${bad}`]), { instanceOf: UsageError, message: /--grace-period wants seconds 0-3600/ }, bad);
  }
  const exp = 'exports:\n  - {path: /a, lower: /l, clients: "*"}\n';
  const f = parseConfig(`grace-period: 30\nnsm-dir: /srv/nsm\n${exp}`, 'f.yaml');
  t.deepEqual([f.graceSeconds, f.nsmDir], [30, '/srv/nsm']);
  t.throws(() => parseConfig(`grace-period: 99999\n${exp}`, 'f.yaml'), { instanceOf: UsageError, message: /^f\.yaml:1: grace-period wants seconds/ });
  t.true(parseCommandLine(['--config', 'f.yaml', '--grace-period', '5']).given.has('graceSeconds'), 'the command line overrides the file');
});

test('--log-format is text or json; --check-config takes a file and nothing to serve', (t) => {
  t.is(parseCommandLine(['--lower', '/l']).logFormat, 'text');
  t.is(parseCommandLine(['--lower', '/l', '--log-format', 'json']).logFormat, 'json');
  t.throws(() => parseCommandLine(['--lower', '/l', '--log-format', 'xml']), { instanceOf: UsageError, message: /--log-format is text or json/ });
  t.is(parseCommandLine(['--check-config', 'f.yaml']).checkConfig, 'f.yaml');
  t.throws(() => parseCommandLine(['--check-config', 'f.yaml', '--port', '1']), { instanceOf: UsageError, message: /--port does not go with it/ });
});

test('--image, --image-cache, --plain-http, --image-gc (image:, image-cache:, plain-http: in the file)', (t) => {
  const p = parseCommandLine(['--image', 'oci:/srv/images/debian:12', '--upper', '/u', '--workdir', '/w']);
  t.false(p.demo, 'an image alone is something to serve');
  t.deepEqual([p.options.exports[0]!.image, p.options.exports[0]!.lowers], ['oci:/srv/images/debian:12', []]);
  t.is(parseCommandLine(['--lower', '/l', '--image', 'docker://reg.lan:5000/os:1', '--plain-http', '--image-cache', '/c']).options.plainHttp, true);
  for (const bad of ['debian:12', 'docker://reg.lan/UPPER:1', 'oci:', 'docker://reg.lan/os:bad/tag', 'docker://reg.lan/os@sha256:abc']) {
    t.throws(() => parseCommandLine(['--image', bad]), { instanceOf: UsageError, message: /^--image: / }, bad);
  }
  t.throws(() => parseCommandLine(['--config', 'f.yaml', '--image', 'oci:/x']), { instanceOf: UsageError, message: /--image describes the one export/ });
  const gc = parseCommandLine(['--image-gc', '--image-cache', '/c']);
  t.deepEqual([gc.imageGc, gc.options.imageCache], [true, '/c']);
  t.throws(() => parseCommandLine(['--image-gc', '--lower', '/l']), { instanceOf: UsageError, message: /--lower does not go with it/ });

  const f = parseConfig('image-cache: /var/cache/images\nplain-http: true\nexports:\n  - path: /vm\n    image: docker://reg.lan:5000/debian:12\n    clients: "*"\n', 'f.yaml');
  t.deepEqual([f.imageCache, f.plainHttp, f.exports[0]!.image, f.exports[0]!.lowers], ['/var/cache/images', true, 'docker://reg.lan:5000/debian:12', []]);
  t.throws(() => parseConfig('exports:\n  - path: /vm\n    image: debian\n    clients: "*"\n', 'f.yaml'), { instanceOf: UsageError, message: /^f\.yaml:3: image: 'debian' is not an image reference/ });
  t.throws(() => parseConfig('exports:\n  - path: /vm\n    clients: "*"\n', 'f.yaml'), { instanceOf: UsageError, message: /needs `lower:` .* or `image:`/ });
});

test('the limits: --max-connections ... --max-udp-calls, in their units, and the same keys in the file', (t) => {
  const p = parseCommandLine(['--lower', '/l', '--max-connections', '100', '--idle-timeout', '30', '--buffer-budget', '64', '--record-timeout', '5']);
  t.deepEqual(p.options.limits, { maxConnections: 100, idleTimeoutMs: 30_000, bufferBudget: 64 << 20, recordTimeoutMs: 5000 });
  t.true(p.given.has('limits'));
  t.is(parseCommandLine(['--lower', '/l']).options.limits, undefined, 'the defaults otherwise');
  for (const bad of ['0', '-1', '1.5', 'x']) {
    t.throws(() => parseCommandLine(['--lower', '/l', `--max-calls=${bad}`]), { instanceOf: UsageError, message: /--max-calls wants an integer 1-/ }, bad);
  }
  const f = parseConfig('max-connections-per-client: 8\nmax-udp-calls: 32\nexports:\n  - {path: /a, lower: /l, clients: "*"}\n', 'f.yaml');
  t.deepEqual(f.limits, { maxConnectionsPerClient: 8, maxUdpCalls: 32 });
  t.throws(() => parseConfig('idle-timeout: 0\nexports:\n  - {path: /a, lower: /l, clients: "*"}\n', 'f.yaml'), { instanceOf: UsageError, message: /^f\.yaml:1: idle-timeout wants an integer/ });
});
