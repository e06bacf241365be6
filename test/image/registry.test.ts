/**
 * The registry client against a fake registry that behaves as the distribution spec says
 * (and as Docker Hub does for anonymous pulls): 401 with a Bearer challenge, a token service,
 * an image index for several platforms, blobs with Range support.
 */
import test from 'ava';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { createServer, get as httpGet, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ImageStore } from '../../src/image/index.js';
import { PLATFORM } from '../../src/image/manifest.js';
import { makeTar, sha256 } from './tar-fixture.js';

interface Fake {
  port: number;
  requests: { path: string; range?: string; auth?: string }[];
  tokensIssued: number;
  blobs: Map<string, Buffer>;
  close(): Promise<void>;
}

function image(): { blobs: Map<string, Buffer>; layer: Buffer } {
  const tar = makeTar([{ name: 'etc/hello', data: 'hello from the registry\n' }, { name: 'big', data: 'z'.repeat(200_000) }]);
  const layer = gzipSync(tar);
  const config = Buffer.from(JSON.stringify({ architecture: PLATFORM.architecture, os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(tar)] } }));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(layer), size: layer.length }],
  }));
  const other = Buffer.from('{"schemaVersion":2,"layers":[]}');
  const index = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256(other), size: other.length, platform: { os: 'linux', architecture: 'mips64le' } },
      { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256(manifest), size: manifest.length, platform: { os: 'linux', architecture: PLATFORM.architecture } },
    ],
  }));
  return { blobs: new Map([[sha256(config), config], [sha256(layer), layer], [sha256(manifest), manifest], [sha256(other), other], ['index', index]]), layer };
}

async function fakeRegistry(blobs: Map<string, Buffer>, challenge = 'bearer'): Promise<Fake> {
  const fake: Fake = { port: 0, requests: [], tokensIssued: 0, blobs, close: () => Promise.resolve() };
  const TOKEN = 'secret-token';
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    fake.requests.push({ path: url.pathname, ...(req.headers.range !== undefined && { range: req.headers.range }), ...(req.headers.authorization !== undefined && { auth: req.headers.authorization }) });
    if (url.pathname === '/token') {
      fake.tokensIssued++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ token: url.searchParams.get('scope') === 'repository:team/app:pull' ? TOKEN : 'wrong', expires_in: 300 }));
      return;
    }
    if (req.headers.authorization !== `Bearer ${TOKEN}`) {
      res.statusCode = 401;
      res.setHeader('www-authenticate', challenge === 'bearer'
        ? `Bearer realm="http://127.0.0.1:${fake.port}/token",service="fake",scope="repository:team/app:pull"` : 'Basic realm="fake"');
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return;
    }
    const m = /^\/v2\/team\/app\/(manifests|blobs)\/(.+)$/.exec(url.pathname);
    const key = m?.[2] === 'v1' ? 'index' : m?.[2];
    const body = key === undefined ? undefined : blobs.get(key);
    if (body === undefined) {
      res.statusCode = 404;
      res.end(`{"errors":[{"code":"${m?.[1] === 'manifests' ? 'MANIFEST_UNKNOWN' : 'BLOB_UNKNOWN'}","message":"unknown"}]}`);
      return;
    }
    if (m![1] === 'manifests') res.setHeader('content-type', key === 'index' ? 'application/vnd.oci.image.index.v1+json' : 'application/vnd.oci.image.manifest.v1+json');
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range !== null) {
      res.statusCode = 206;
      res.end(body.subarray(Number(range[1])));
      return;
    }
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  fake.port = (server.address() as { port: number }).port;
  fake.close = () => new Promise((resolve) => server.close(() => resolve()));
  return fake;
}

const caches: string[] = [];
function cacheDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'unfs-registry-'));
  caches.push(dir);
  return dir;
}

test.after.always(() => {
  for (const d of caches) rmSync(d, { recursive: true, force: true });
});

test('registry: a Bearer token is fetched for the repository, the platform picked from the index, the layer pulled and unpacked', async (t) => {
  const { blobs } = image();
  const fake = await fakeRegistry(blobs);
  try {
    const store = new ImageStore({ cacheDir: cacheDir(), plainHttp: true });
    const [dir] = await store.lowers(`docker://127.0.0.1:${fake.port}/team/app:v1`);
    t.is(readFileSync(join(dir!, 'etc/hello'), 'utf8'), 'hello from the registry\n');
    t.is(fake.tokensIssued, 1, 'one token, reused for every request');
    t.false(fake.requests.some((r) => r.path.includes(sha256(Buffer.from('{"schemaVersion":2,"layers":[]}')))), 'the other platform\'s manifest was never fetched');
    await store.close();
  } finally {
    await fake.close();
  }
});

test('registry: a stopped download resumes with a Range request and its first part is checked too', async (t) => {
  const { blobs, layer } = image();
  const fake = await fakeRegistry(blobs);
  try {
    const cache = cacheDir();
    const hex = sha256(layer).slice('sha256:'.length);
    mkdirSync(join(cache, 'blobs/sha256'), { recursive: true });
    const half = Math.floor(layer.length / 2);
    writeFileSync(join(cache, 'blobs/sha256', `${hex}.partial`), layer.subarray(0, half));
    const store = new ImageStore({ cacheDir: cache, plainHttp: true });
    const [dir] = await store.lowers(`docker://127.0.0.1:${fake.port}/team/app:v1`);
    t.is(readFileSync(join(dir!, 'etc/hello'), 'utf8'), 'hello from the registry\n');
    t.deepEqual(fake.requests.filter((r) => r.path.endsWith(hex)).map((r) => r.range), [`bytes=${half}-`]);
    t.deepEqual(readdirSync(join(cache, 'blobs/sha256')), [], 'the download is deleted once unpacked');

    // A partial file with wrong bytes: the resumed whole does not match and is thrown away.
    const cache2 = cacheDir();
    mkdirSync(join(cache2, 'blobs/sha256'), { recursive: true });
    writeFileSync(join(cache2, 'blobs/sha256', `${hex}.partial`), Buffer.alloc(half, 1));
    await t.throwsAsync(new ImageStore({ cacheDir: cache2, plainHttp: true }).lowers(`docker://127.0.0.1:${fake.port}/team/app:v1`), { message: /does not match its digest/ });
    t.false(existsSync(join(cache2, 'blobs/sha256', `${hex}.partial`)), 'the bad partial download is deleted, so the next pull starts afresh');
    t.false(existsSync(join(cache2, 'layers')), 'nothing unpacked');
  } finally {
    await fake.close();
  }
});

test('registry: a corrupt blob, an unknown tag and a registry that wants a password are refused with what went wrong', async (t) => {
  const { blobs, layer } = image();
  const corrupt = Buffer.from(layer);
  corrupt[corrupt.length >> 1] ^= 0xff;
  blobs.set(sha256(layer), corrupt);
  const fake = await fakeRegistry(blobs);
  const basic = await fakeRegistry(blobs, 'basic');
  try {
    const cache = cacheDir();
    await t.throwsAsync(new ImageStore({ cacheDir: cache, plainHttp: true }).lowers(`docker://127.0.0.1:${fake.port}/team/app:v1`),
      { message: new RegExp(`layer ${sha256(layer)}: content does not match its digest`) });
    t.false(existsSync(join(cache, 'layers')));
    await t.throwsAsync(new ImageStore({ cacheDir: cache, plainHttp: true }).lowers(`docker://127.0.0.1:${fake.port}/team/app:v9`),
      { message: /manifest: the registry answered 404: MANIFEST_UNKNOWN/ });
    await t.throwsAsync(new ImageStore({ cacheDir: cache, plainHttp: true }).lowers(`docker://127.0.0.1:${basic.port}/team/app:v1`),
      { message: /wants Basic credentials/ });
  } finally {
    await fake.close();
    await basic.close();
  }
});

test('registry: a registry that cannot be reached is not fatal when an earlier pull left every layer of the reference here', async (t) => {
  const { blobs } = image();
  const fake = await fakeRegistry(blobs);
  const ref = `docker://127.0.0.1:${fake.port}/team/app:v1`;
  const cache = cacheDir();
  const first = await new ImageStore({ cacheDir: cache, plainHttp: true }).lowers(ref);
  await fake.close();
  t.deepEqual(await new ImageStore({ cacheDir: cache, plainHttp: true }).lowers(ref), first, 'the layers of the last pull');
  await t.throwsAsync(new ImageStore({ cacheDir: cacheDir(), plainHttp: true }).lowers(ref), { message: /ECONNREFUSED/ }, 'nothing pulled before: the error stands');
  rmSync(first[0]!, { recursive: true });
  await t.throwsAsync(new ImageStore({ cacheDir: cache, plainHttp: true }).lowers(ref), { message: /ECONNREFUSED/ }, 'a layer gone from the cache: the error stands');
});

test('registry: HTTPS is checked against the system\'s CA bundle (SSL_CERT_FILE), and refused without the CA', async (t) => {
  const dir = cacheDir();
  const ssl = (args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  ssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=test CA', '-keyout', 'ca.key', '-out', 'ca.crt',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign']);
  ssl(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', 'srv.key', '-out', 'srv.csr']);
  writeFileSync(join(dir, 'ext'), 'subjectAltName=IP:127.0.0.1\n');
  ssl(['x509', '-req', '-in', 'srv.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-extfile', 'ext', '-out', 'srv.crt']);
  const { blobs } = image();
  const plain = await fakeRegistry(blobs);
  // The fake registry behind an HTTPS front that relays each request to it.
  const server = createHttpsServer({ key: readFileSync(join(dir, 'srv.key')), cert: readFileSync(join(dir, 'srv.crt')) }, (req, res) => {
    const up = httpGet({ host: '127.0.0.1', port: plain.port, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as { port: number }).port;
  try {
    const ref = `docker://127.0.0.1:${port}/team/app:v1`;
    await t.throwsAsync(new ImageStore({ cacheDir: cacheDir(), plainHttp: false }).lowers(ref), { message: /certificate/ }, 'an unknown CA is refused');
    // In a process of its own, whose environment names the CA (the bundle is read once); not
    // spawnSync, which would stop this process's fake registry from answering.
    const child = await promisify(execFile)(process.execPath, ['--input-type=module', '-e',
      `import { ImageStore } from ${JSON.stringify(new URL('../../src/image/index.js', import.meta.url).href)};` +
      `const [d] = await new ImageStore({ cacheDir: ${JSON.stringify(cacheDir())}, plainHttp: false }).lowers(${JSON.stringify(ref)}); console.log(d);`],
    { env: { ...process.env, SSL_CERT_FILE: join(dir, 'ca.crt') }, encoding: 'utf8', timeout: 30_000 });
    t.is(readFileSync(join(child.stdout.trim(), 'etc/hello'), 'utf8'), 'hello from the registry\n', 'pulled over HTTPS with the CA from SSL_CERT_FILE');
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await plain.close();
  }
});
