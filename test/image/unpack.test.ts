import test from 'ava';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unpackLayer } from '../../src/image/unpack.js';
import { ImageError } from '../../src/image/errors.js';
import { parseDigest } from '../../src/image/digest.js';
import type { LayerDescriptor } from '../../src/image/manifest.js';
import { Progress } from '../../src/image/progress.js';
import { makeTar, sha256, type FixtureEntry } from './tar-fixture.js';

const dirs: string[] = [];
function tmp(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

test.after.always(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function unpack(entries: FixtureEntry[], opts: { diffId?: string } = {}): Promise<string> {
  const tar = makeTar(entries);
  const dir = tmp('unfs-unpack-');
  const file = join(dir, 'layer.tar');
  writeFileSync(file, tar);
  const layer: LayerDescriptor = {
    mediaType: 'application/vnd.oci.image.layer.v1.tar', compression: 'none', size: tar.length,
    digest: parseDigest(sha256(tar), 'test'), diffId: parseDigest(opts.diffId ?? sha256(tar), 'test'),
  };
  const into = join(dir, 'layer');
  mkdirSync(into);
  await unpackLayer(file, layer, into, new Progress('test', tar.length));
  return into;
}

test('unpack: whiteouts and opaque markers stay files whatever their order; implied parents; later entries replace earlier ones', async (t) => {
  const root = await unpack([
    { name: '.wh.gone' },
    { name: 'opq/kept', data: 'kept' },
    { name: 'opq/.wh..wh..opq' },
    { name: 'a/b/c', data: 'implied parents' },
    { name: 'x', data: 'first' },
    { name: 'x', kind: 'dir', mode: 0o700 },
    { name: 'x/inside', data: 'in the dir that replaced the file' },
    { name: 'file', data: 'data', mode: 0o640 },
    { name: 'link', kind: 'hardlink', link: 'file' },
    { name: 'sym', kind: 'symlink', link: '/etc/passwd' },
  ]);
  t.deepEqual(readdirSync(root).sort(), ['.wh.gone', 'a', 'file', 'link', 'opq', 'sym', 'x']);
  t.deepEqual(readdirSync(join(root, 'opq')).sort(), ['.wh..wh..opq', 'kept']);
  t.is(readFileSync(join(root, 'a/b/c'), 'utf8'), 'implied parents');
  t.is(statSync(join(root, 'a')).mode & 0o7777, 0o755);
  t.true(statSync(join(root, 'x')).isDirectory());
  t.is(statSync(join(root, 'x')).mode & 0o7777, 0o700);
  t.is(statSync(join(root, 'file')).ino, statSync(join(root, 'link')).ino);
  t.is(statSync(join(root, 'file')).mode & 0o7777, 0o640);
  t.is(readlinkSync(join(root, 'sym')), '/etc/passwd');
  t.is(statSync(join(root, 'file')).mtimeMs, 1700000000 * 1000);
});

test('unpack: nothing is written outside the layer, through .. or through a symlink the layer made', async (t) => {
  await t.throwsAsync(unpack([{ name: '../escape', data: 'x' }]), { instanceOf: ImageError, message: /leaves the layer/ });
  await t.throwsAsync(unpack([{ name: 'a/../../escape', data: 'x' }]), { instanceOf: ImageError, message: /leaves the layer/ });
  const outside = tmp('unfs-unpack-outside-');
  await t.throwsAsync(unpack([{ name: 'evil', kind: 'symlink', link: outside }, { name: 'evil/planted', data: 'x' }]),
    { instanceOf: ImageError, message: /lies below 'evil', which is not a directory/ });
  t.deepEqual(readdirSync(outside), []);
  await t.throwsAsync(unpack([{ name: 'h', kind: 'hardlink', link: '/etc/passwd' }]), { instanceOf: ImageError, message: /not in this layer|not a file made earlier/ });
  await t.throwsAsync(unpack([{ name: 'h', kind: 'hardlink', link: '../x' }]), { instanceOf: ImageError, message: /leaves the layer/ });
});

test('unpack: a tar that is not the diff_id the configuration names is refused', async (t) => {
  await t.throwsAsync(unpack([{ name: 'f', data: 'x' }], { diffId: `sha256:${'0'.repeat(64)}` }), { instanceOf: ImageError, message: /does not match its digest/ });
});
