/**
 * Issue 16: OCI images as lower layers. One image, built offline with umoci (three layers with
 * deletions, an opaque directory and whiteouts in both orders, image/build.ts), is served
 *  - from its image layout (oci:DIR:TAG),
 *  - from a distribution registry on loopback it was pushed to with skopeo (docker://),
 *  - with zstd-compressed layers (skopeo's copy of the layout),
 * and every merged tree, walked through libnfs, must equal what `umoci unpack` makes of the
 * image. The exports of the first server share layers (the same image twice, and the image
 * without its last layer): each layer is unpacked once. A corrupted blob, in a layout or in the registry, is refused with a clear error and
 * leaves nothing in the cache. `--image-gc` keeps what a running server uses.
 */
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, openSync, readdirSync, readFileSync, writeSync, closeSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { compileDriver, runOk } from './libnfs/driver.js';
import { gate, missing, serverCli } from './libnfs/env.js';
import { cleanupTemp, makeTemp } from './libnfs/oracle.js';
import { TestServer, type Ready } from './libnfs/server.js';
import { diffTrees, parseTree, walkLocal, type Tree } from './libnfs/tree.js';
import { buildTestImage, IMAGE_TOOLS, zstdCopy, type TestImage } from './image/build.js';
import { TestRegistry } from './image/registry.js';

function unmet(): string[] {
  const tools = IMAGE_TOOLS.filter((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0);
  return [...missing({ root: true, libnfsDev: true, server: true }), ...tools.map((c) => `${c} (apt-get install umoci skopeo docker-registry attr python3)`)];
}

function url(ready: Ready, path: string): string {
  return `nfs://127.0.0.1${path}?nfsport=${ready.nfsPort}&mountport=${ready.mountPort}`;
}

function configFile(dir: string, cache: string, exports: { path: string; image: string }[]): string {
  const file = join(dir, `config-${exports.map((e) => e.path.slice(1)).join('-')}.yaml`);
  writeFileSync(file, [
    `image-cache: ${cache}`,
    'plain-http: true',
    'exports:',
    ...exports.flatMap((e) => [`  - path: ${e.path}`, `    image: ${e.image}`, '    clients: 127.0.0.1(ro,no_root_squash)']),
  ].join('\n') + '\n');
  return file;
}

const FIELDS = ['type', 'mode', 'uid', 'gid', 'nlink', 'size', 'extra'] as const;

async function walkEquals(t: import('ava').ExecutionContext, walk: string, at: string, oracle: Tree, what: string): Promise<void> {
  const tree = parseTree(await runOk(walk, [at], { timeoutMs: 60_000 }));
  const d = diffTrees(oracle, tree, [...FIELDS]);
  t.deepEqual(d, [], `${what}: the merged tree differs from umoci unpack:\n${d.slice(0, 30).join('\n')}`);
  t.true(tree.entries.size >= 20, `${what}: ${tree.entries.size} entries`);
}

/** Flip the byte in the middle of a blob. */
function corrupt(file: string): void {
  const size = statSync(file).size;
  const fd = openSync(file, 'r+');
  const at = Math.floor(size / 2);
  writeSync(fd, Buffer.from([readFileSync(file)[at]! ^ 0xff]), 0, 1, at);
  closeSync(fd);
}

function largestBlob(layout: string): { path: string; hex: string } {
  const dir = join(layout, 'blobs/sha256');
  const hex = readdirSync(dir).sort((a, b) => statSync(join(dir, b)).size - statSync(join(dir, a)).size)[0]!;
  return { path: join(dir, hex), hex };
}

function layersIn(cache: string): string[] {
  const dir = join(cache, 'layers/sha256');
  return existsSync(dir) ? readdirSync(dir) : [];
}

test.serial('images: an image from its layout, from a registry and with zstd layers serves the tree umoci unpacks; shared layers unpack once; corrupt blobs are refused; gc keeps what is served', async (t) => {
  if (!gate(t, 'image e2e', unmet())) return;
  t.timeout(5 * 60_000);
  const base = makeTemp('images');
  const registry = new TestRegistry(join(base, 'registry'));
  const servers: TestServer[] = [];
  const serve = async (config: string): Promise<Ready> => {
    const s = new TestServer({ lowers: [], config });
    servers.push(s);
    return s.start(120_000);
  };
  try {
    const image: TestImage = buildTestImage(base);
    const oracle = walkLocal(image.rootfs);
    t.true(oracle.entries.has('opq/kept') && !oracle.entries.has('opq/hidden') && !oracle.entries.has('new') && !oracle.entries.has('gone'),
      'the oracle applied the whiteouts (umoci unpack)');
    const walk = await compileDriver('walk');
    await registry.start();
    const remote = registry.push(image.layout, image.tag, 'test/image');

    // Layout and registry in one server, one cache, and a third export of the image before its
    // last layer (tag v2): three layers in all, each unpacked once.
    const cache = join(base, 'cache');
    const both = await serve(configFile(base, cache, [
      { path: '/layout', image: `oci:${image.layout}:${image.tag}` }, { path: '/registry', image: remote }, { path: '/v2', image: `oci:${image.layout}:v2` },
    ]));
    await walkEquals(t, walk, url(both, '/layout'), oracle, 'oci layout');
    await walkEquals(t, walk, url(both, '/registry'), oracle, 'registry');
    const v2 = parseTree(await runOk(walk, [url(both, '/v2')], { timeoutMs: 60_000 }));
    t.true(v2.entries.has('new') && v2.entries.has('opq/hidden') && !v2.entries.has('opq/kept'), 'v2 is the image without layer 3');
    const unpacks = servers[0]!.lines().filter((l) => /fetching and unpacking/.test(l));
    t.is(unpacks.length, 3, `each of the 3 layers unpacked once for the three exports:\n${unpacks.join('\n')}`);
    t.is(layersIn(cache).length, 3);
    const xattr = layersIn(cache).map((h) => join(cache, 'layers/sha256', h, 'xattr')).find((p) => existsSync(p));
    t.truthy(xattr, 'layer 1 holds the file with an xattr');
    t.is(execFileSync('getfattr', ['--absolute-names', '--only-values', '-n', 'user.test', xattr!]).toString(), 'value', 'the user.test xattr is kept');

    // gc while that server runs keeps its layers; after it stops, removes them.
    const gc = (): string => execFileSync(process.execPath, [serverCli, '--image-gc', '--image-cache', cache]).toString();
    t.regex(gc(), /: 0 removed/);
    t.is(layersIn(cache).length, 3);
    await servers[0]!.stop();
    t.regex(gc(), /: 3 removed/);
    t.is(layersIn(cache).length, 0);

    // zstd layers, from a fresh cache.
    const zstd = zstdCopy(image, join(base, 'zstd'));
    const z = await serve(configFile(base, join(base, 'cache-zstd'), [{ path: '/zstd', image: `oci:${zstd}:${image.tag}` }]));
    await walkEquals(t, walk, url(z, '/zstd'), oracle, 'zstd layers');
    t.true(servers[1]!.lines().some((l) => /\(zstd\)/.test(l)), 'the layers were zstd');
    await servers[1]!.stop();

    // A corrupted blob in a layout, then in the registry: refused by name, nothing cached.
    const bad = join(base, 'bad-layout');
    cpSync(image.layout, bad, { recursive: true });
    const blob = largestBlob(bad);
    corrupt(blob.path);
    for (const [what, ref, cacheDir] of [
      ['layout', `oci:${bad}:${image.tag}`, join(base, 'cache-bad')],
      ['registry', (() => { corrupt(registry.blobData(largestBlob(image.layout).hex)); return remote; })(), join(base, 'cache-bad-registry')],
    ] as const) {
      const r = spawnSync(process.execPath, [serverCli, '--config', configFile(base, cacheDir, [{ path: '/bad', image: ref }]), '--port', '0', '--no-portmap'], { encoding: 'utf8', timeout: 60_000 });
      t.not(r.status, 0, `${what}: the server must not start on a corrupt blob`);
      t.regex(r.stderr, /does not match its digest sha256:[0-9a-f]{64}/, `${what}: says which blob is corrupt:\n${r.stderr}`);
      // The corrupt blob is layer 1's (the largest), the first unpacked: nothing may be cached.
      t.deepEqual(layersIn(cacheDir), [], `${what}: no layer unpacked from the corrupt blob`);
      const left = (sub: string): string[] => (existsSync(join(cacheDir, sub)) ? readdirSync(join(cacheDir, sub), { recursive: true }) as string[] : []);
      t.deepEqual(left('tmp'), [], `${what}: no half-unpacked layer left`);
      t.deepEqual(left('blobs').filter((p) => /[0-9a-f]{64}/.test(p)), [], `${what}: the corrupt download is not kept`);
    }
  } finally {
    for (const s of servers) await s.stop();
    registry.stop();
    cleanupTemp(base);
  }
});
