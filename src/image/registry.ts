/**
 * An image in a registry, through the distribution API v2 (distribution-spec "pull"):
 * GET /v2/<name>/manifests/<tag|digest> and /v2/<name>/blobs/<digest>.
 *
 * Rule: requests go out anonymously; a 401 with a Bearer challenge is answered by fetching a
 * token for `repository:<name>:pull` from the challenge's realm (the Docker token protocol,
 * as Docker Hub, GHCR, Quay and a distribution registry with token auth use it), reused until
 * it expires. HTTPS unless plain HTTP was asked for (--plain-http). A manifest asked for by
 * digest is checked against it. A layer blob is downloaded into the cache's blobs/ directory
 * as `<hex>.partial`, resumed with a Range request where an earlier pull stopped, checked
 * against its digest, and only then renamed to `<hex>`; one that does not match is deleted
 * and refused.
 */
import { createReadStream, promises as fsp } from 'node:fs';
import { dirname, join } from 'node:path';
import type { IncomingMessage } from 'node:http';
import { ImageError } from './errors.js';
import { Verifier } from './digest.js';
import { get, readBody } from './http.js';
import { MANIFEST_ACCEPT, type Descriptor } from './manifest.js';
import type { Progress } from './progress.js';
import { MAX_DOCUMENT, type ImageSource } from './source.js';
import type { ImageRef } from './reference.js';

type DockerRef = Extract<ImageRef, { kind: 'docker' }>;

export class RegistrySource implements ImageSource {
  readonly what: string;
  private readonly base: string;
  private token: { value: string; until: number } | undefined;

  constructor(private readonly ref: DockerRef, private readonly blobsDir: string, plainHttp: boolean) {
    this.what = ref.text;
    const host = ref.host === 'docker.io' ? 'registry-1.docker.io' : ref.host;
    this.base = `${plainHttp ? 'http' : 'https'}://${host}/v2/${ref.name}`;
  }

  /** GET with the token, fetching one when the registry challenges. */
  private async request(path: string, headers: Record<string, string>): Promise<IncomingMessage> {
    const url = new URL(this.base + path);
    const auth = (): Record<string, string> => (this.token !== undefined && this.token.until > Date.now() ? { authorization: `Bearer ${this.token.value}` } : {});
    let res = await get(url, { ...headers, ...auth() });
    if (res.statusCode === 401) {
      res.resume();
      await this.authenticate(res.headers['www-authenticate']);
      res = await get(url, { ...headers, ...auth() });
    }
    return res;
  }

  private async authenticate(challenge: string | undefined): Promise<void> {
    const m = /^Bearer\s+(.*)$/i.exec(challenge ?? '');
    if (m === null) {
      throw new ImageError(`${this.what}: the registry wants ${challenge?.split(' ')[0] ?? 'unknown'} credentials; union-nfsd pulls anonymously (serve the image from a layout or a pull-through mirror)`);
    }
    const params = new Map([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((p) => [p[1]!.toLowerCase(), p[2]!]));
    const realm = params.get('realm');
    if (realm === undefined) throw new ImageError(`${this.what}: the registry's Bearer challenge names no realm`);
    const url = new URL(realm);
    if (params.has('service')) url.searchParams.set('service', params.get('service')!);
    url.searchParams.set('scope', params.get('scope') ?? `repository:${this.ref.name}:pull`);
    const res = await get(url, {});
    const body = await readBody(res, 1 << 20, `${this.what}: token from ${url.origin}`);
    if (res.statusCode !== 200) throw new ImageError(`${this.what}: the token service ${url.origin} answered ${res.statusCode}: ${body.toString('utf8').slice(0, 200)}`);
    const t = JSON.parse(body.toString('utf8')) as { token?: string; access_token?: string; expires_in?: number };
    const value = t.token ?? t.access_token;
    if (typeof value !== 'string') throw new ImageError(`${this.what}: the token service ${url.origin} sent no token`);
    // The spec's default lifetime is 60 s; a margin so a token does not expire in flight.
    this.token = { value, until: Date.now() + Math.max(10, (t.expires_in ?? 60) - 10) * 1000 };
  }

  private async failed(res: IncomingMessage, what: string): Promise<never> {
    const body = await readBody(res, 1 << 16, what).catch(() => Buffer.alloc(0));
    let detail = body.toString('utf8').slice(0, 300);
    try {
      const errors = (JSON.parse(detail) as { errors?: { code?: string; message?: string }[] }).errors ?? [];
      if (errors.length > 0) detail = errors.map((e) => `${e.code ?? ''} ${e.message ?? ''}`.trim()).join('; ');
    } catch { /* not JSON: the text as it came */ }
    throw new ImageError(`${what}: the registry answered ${res.statusCode}${detail !== '' ? `: ${detail}` : ''}`);
  }

  async root(): Promise<{ bytes: Buffer; mediaType: string | undefined }> {
    const reference = this.ref.digest?.text ?? this.ref.tag ?? 'latest';
    const res = await this.request(`/manifests/${reference}`, { accept: MANIFEST_ACCEPT });
    if (res.statusCode !== 200) return this.failed(res, `${this.what}: manifest`);
    const bytes = await readBody(res, MAX_DOCUMENT, `${this.what}: manifest`);
    if (this.ref.digest !== undefined) {
      const v = new Verifier(this.ref.digest);
      v.update(bytes);
      v.check(`${this.what}: manifest`);
    }
    return { bytes, mediaType: res.headers['content-type'] };
  }

  async document(desc: Descriptor, kind: 'manifest' | 'blob'): Promise<Buffer> {
    const what = `${this.what}: ${desc.digest.text}`;
    const res = await this.request(`/${kind === 'manifest' ? 'manifests' : 'blobs'}/${desc.digest.text}`, kind === 'manifest' ? { accept: MANIFEST_ACCEPT } : {});
    if (res.statusCode !== 200) return this.failed(res, what);
    const bytes = await readBody(res, MAX_DOCUMENT, what);
    const v = new Verifier(desc.digest);
    v.update(bytes);
    v.check(what);
    return bytes;
  }

  private file(desc: Descriptor): string {
    return join(this.blobsDir, desc.digest.algorithm, desc.digest.hex);
  }

  async blobFile(desc: Descriptor, progress: Progress): Promise<string> {
    const final = this.file(desc);
    const partial = `${final}.partial`;
    const what = `${this.what}: layer ${desc.digest.text}`;
    await fsp.mkdir(dirname(final), { recursive: true });
    // What an earlier pull left: its bytes are hashed again rather than trusted.
    let have = await fsp.stat(partial).then((s) => s.size, () => 0);
    if (have > desc.size) {
      await fsp.truncate(partial, 0);
      have = 0;
    }
    let v = new Verifier(desc.digest);
    if (have > 0) for await (const c of createReadStream(partial) as AsyncIterable<Buffer>) v.update(c);
    if (have < desc.size) {
      const res = await this.request(`/blobs/${desc.digest.text}`, have > 0 ? { range: `bytes=${have}-` } : {});
      if (res.statusCode === 200 && have > 0) {
        // The server ignored the range: start over.
        await fsp.truncate(partial, 0);
        have = 0;
        v = new Verifier(desc.digest);
      } else if (res.statusCode !== 200 && res.statusCode !== 206) {
        return this.failed(res, what);
      }
      progress.add(have);
      const out = await fsp.open(partial, 'a');
      try {
        for await (const c of res as AsyncIterable<Buffer>) {
          if (v.bytes + c.length > desc.size) {
            res.destroy();
            throw new ImageError(`${what}: the registry sent more than the ${desc.size} bytes the manifest gives`);
          }
          v.update(c);
          await out.write(c);
          progress.add(c.length);
        }
        await out.sync();
      } finally {
        await out.close();
      }
    }
    if (v.bytes !== desc.size) {
      throw new ImageError(`${what}: got ${v.bytes} of ${desc.size} bytes (the download stopped; the next start resumes it)`);
    }
    try {
      v.check(what);
    } catch (err) {
      await fsp.rm(partial, { force: true });
      throw err;
    }
    await fsp.rename(partial, final);
    return final;
  }

  async release(desc: Descriptor): Promise<void> {
    await fsp.rm(this.file(desc), { force: true });
  }
}
