// Reloading exports and unions per client, on real directories.
import * as fs from 'node:fs';
import * as path from 'node:path';
import test from 'ava';
import type { ExportConfig } from '../../src/config.js';
import { parseClientRules } from '../../src/exports/client-rules.js';
import { ExportSet } from '../../src/exports/export-set.js';
import { auth_flavor } from '../../src/rpc/message.js';
import type { Credential, Peer } from '../../src/rpc/types.js';
import { buildLayer, mkTmp } from '../helpers/layers.js';

const ROOT: Credential = { flavor: auth_flavor.AUTH_SYS, uid: 0, gid: 0, gids: [], machinename: 't' };
const peer = (address: string): Peer => ({ address, port: 700, transport: 'tcp' });

function setup(t: { teardown: (f: () => void | Promise<void>) => void }) {
  const base = mkTmp('unfs-set-');
  const lower = buildLayer(path.join(base, 'lower'), 'oci', [['f', 'file', 'base'], ['d', 'dir']]);
  fs.chmodSync(lower, 0o1777);
  const set = new ExportSet();
  t.teardown(async () => {
    await set.close();
    fs.rmSync(base, { recursive: true, force: true });
  });
  const exp = (p: string, o: Partial<ExportConfig> & { rules?: string } = {}): ExportConfig => {
    const { rules, ...rest } = o;
    return {
      path: p, lowers: [lower], whiteoutFormat: 'oci', fsid: p.length, clients: parseClientRules(rules ?? '*(rw,no_root_squash,insecure)'),
      defaultClients: false, source: `test:${p}`, ...rest,
    };
  };
  const rw = (name: string) => {
    fs.mkdirSync(path.join(base, name, 'upper'), { recursive: true });
    fs.mkdirSync(path.join(base, name, 'work'), { recursive: true });
    return { upper: path.join(base, name, 'upper'), workdir: path.join(base, name, 'work') };
  };
  return { base, lower, set, exp, rw };
}

test('reload keeps the unions of unchanged exports (same handles, same union), swaps rules, adds and drops exports', async (t) => {
  const { set, exp, rw } = setup(t);
  const a = exp('/a', { ...rw('a'), rules: '10.0.0.1(rw,insecure)' });
  await set.apply([a, exp('/bb', rw('bb'))]);
  const m = await set.table().mnt(Buffer.from('/a'), peer('10.0.0.1'), ROOT);
  const unionBefore = m.exp.unions.peek('10.0.0.1');
  await t.throwsAsync(set.table().mnt(Buffer.from('/a'), peer('10.0.0.2'), ROOT), { code: 'EACCES' });

  // New rule for /a, /bb gone, /ccc new.
  await set.apply([{ ...a, clients: parseClientRules('10.0.0.0/24(rw,insecure)') }, exp('/ccc', rw('ccc'))]);
  const after = set.table().route(m.fh);
  t.is(after.unions.peek('10.0.0.2'), unionBefore, 'the same union object: caches and handles intact');
  t.is((await set.table().mnt(Buffer.from('/a'), peer('10.0.0.2'), ROOT)).fh.toString('hex'), m.fh.toString('hex'));
  await t.throwsAsync(set.table().mnt(Buffer.from('/bb'), peer('10.0.0.1'), ROOT), { code: 'ENOENT' });
  t.truthy(await set.table().mnt(Buffer.from('/ccc'), peer('10.0.0.1'), ROOT));

  // A changed union setting (another whiteout format) reopens that export.
  await set.apply([{ ...a, whiteoutFormat: 'overlayfs' }, exp('/ccc', rw('ccc'))]);
  t.not(set.table().route(m.fh).unions.peek('10.0.0.1'), unionBefore);
});

test('a bad reload is refused whole and the previous exports go on being served', async (t) => {
  const { set, exp, rw, lower } = setup(t);
  const a = exp('/a', rw('a'));
  await set.apply([a]);
  const before = set.table();
  await t.throwsAsync(set.apply([a, exp('/b', { upper: lower, workdir: rw('b').workdir })]), { message: /upper .* is the same directory as lower 1/ });
  await t.throwsAsync(set.apply([exp('/a', { ...rw('a'), rules: 'no-such-host.invalid' })]), { message: /does not resolve/ });
  t.is(set.table(), before);
});

test('{client}: each client gets its own union over the shared lower, created on its first call', async (t) => {
  const { base, lower, set, exp } = setup(t);
  fs.mkdirSync(path.join(base, 'fleet'));
  await set.apply([exp('/fleet', {
    upper: path.join(base, 'fleet/{client}/upper'), workdir: path.join(base, 'fleet/{client}/work'), names: { node1: '10.0.1.1' },
  })]);
  const one = await set.table().mnt(Buffer.from('/fleet'), peer('10.0.1.1'), ROOT);
  const two = await set.table().mnt(Buffer.from('/fleet'), peer('::ffff:10.0.1.2'), ROOT);
  t.deepEqual(fs.readdirSync(path.join(base, 'fleet')).sort(), ['10.0.1.2', 'node1']);
  t.is(fs.statSync(path.join(base, 'fleet/node1/upper')).mode & 0o7777, 0o1777, 'the upper root looks like the lower root');
  const u1 = one.exp.unions.peek('10.0.1.1')!;
  const u2 = one.exp.unions.peek('10.0.1.2')!;
  t.not(u1, u2);
  await u1.create(u1.root, Buffer.from('mine'), { mode: 'unchecked', attr: {} }, ROOT);
  t.true(fs.existsSync(path.join(base, 'fleet/node1/upper/mine')));
  t.throws(() => u2.lookup(u2.root, Buffer.from('mine'), ROOT), { code: 'ENOENT' });
  t.is(u2.lookup(u2.root, Buffer.from('f'), ROOT), u2.lookup(u2.root, Buffer.from('f'), ROOT));
  // One client's handle means nothing in another client's union (its own key).
  const h1 = u1.handleOf(u1.lookup(u1.root, Buffer.from('mine'), ROOT));
  t.throws(() => u2.resolve(h1), { code: 'EBADHANDLE' });
  t.not(one.fh.toString('hex'), two.fh.toString('hex'));

  // Reset node1: its upper goes, 10.0.1.2's stays, and node1's next call starts from the base.
  fs.writeFileSync(path.join(base, 'fleet/10.0.1.2/upper/theirs'), 'x');
  await set.reset('/fleet', 'node1');
  t.false(fs.existsSync(path.join(base, 'fleet/node1/upper')));
  t.false(fs.existsSync(path.join(base, 'fleet/node1/work')));
  t.true(fs.existsSync(path.join(base, 'fleet/10.0.1.2/upper/theirs')));
  t.is(one.exp.unions.peek('10.0.1.1'), undefined);
  const again = await set.table().mnt(Buffer.from('/fleet'), peer('10.0.1.1'), ROOT);
  const u1b = again.exp.unions.peek('10.0.1.1')!;
  t.throws(() => u1b.lookup(u1b.root, Buffer.from('mine'), ROOT), { code: 'ENOENT' });
  t.throws(() => u1b.resolve(h1), { code: 'EBADHANDLE' }, 'a new key: handles from before the reset are refused');
  await t.throwsAsync(set.reset('/fleet', '10.9.9.9'), { code: 'ENOENT' });
  await t.throwsAsync(set.reset('/nope', 'node1'), { code: 'ENOENT' });
  t.is(fs.readFileSync(path.join(lower, 'f'), 'utf8'), 'base');
});

test('reset of an export with one union for everyone is refused', async (t) => {
  const { set, exp, rw } = setup(t);
  await set.apply([exp('/a', rw('a'))]);
  await t.throwsAsync(set.reset('/a', '10.0.0.1'), { code: 'ENOTSUP' });
});

test('{client}: a client\'s handles survive a restart (its union reopens from its own state)', async (t) => {
  const { base, exp } = setup(t);
  fs.mkdirSync(path.join(base, 'fleet'));
  const fleet = exp('/fleet', { upper: path.join(base, 'fleet/{client}/upper'), workdir: path.join(base, 'fleet/{client}/work') });
  const first = new ExportSet();
  await first.apply([fleet]);
  const m = await first.table().mnt(Buffer.from('/fleet'), peer('10.0.1.1'), ROOT);
  const u = m.exp.unions.peek('10.0.1.1')!;
  const made = await u.create(u.root, Buffer.from('kept'), { mode: 'unchecked', attr: {} }, ROOT);
  const fh = u.handleOf(made);
  const lowerFh = u.handleOf(u.lookup(u.root, Buffer.from('f'), ROOT));
  await first.close();

  const second = new ExportSet();
  t.teardown(() => second.close());
  await second.apply([fleet]);
  const exp2 = second.table().route(fh);
  t.is(exp2.unions.peek('10.0.1.1'), undefined, 'not open until the client comes back');
  const u2 = await exp2.unions.open('10.0.1.1');
  t.is(u2.resolve(fh), made);
  t.is(u2.getattr(u2.resolve(lowerFh)).size, 4);
  await t.throwsAsync(async () => (await exp2.unions.open('10.0.1.2')).resolve(fh), { code: 'EBADHANDLE' }, 'and still nobody else\'s');
});

test('{client}: first calls in flight together open one union; a reset in flight with calls leaves no union half-open', async (t) => {
  const { base, set, exp } = setup(t);
  fs.mkdirSync(path.join(base, 'fleet'));
  await set.apply([exp('/fleet', { upper: path.join(base, 'fleet/{client}/upper'), workdir: path.join(base, 'fleet/{client}/work') })]);
  const unions = set.table().exports[0]!.unions;
  const opened = await Promise.all(Array.from({ length: 8 }, () => unions.open('10.0.1.1')));
  t.true(opened.every((u) => u === opened[0]));
  await opened[0]!.create(opened[0]!.root, Buffer.from('old'), { mode: 'unchecked', attr: {} }, ROOT);
  // A reset and new calls at once: the calls wait for the reset and get a fresh union.
  const [, after] = await Promise.all([set.reset('/fleet', '10.0.1.1'), unions.open('10.0.1.1')]);
  t.not(after, opened[0]);
  t.throws(() => after.lookup(after.root, Buffer.from('old'), ROOT), { code: 'ENOENT' });
  t.is(unions.peek('10.0.1.1'), after);
});
