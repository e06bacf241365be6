/**
 * An OCI image layout directory (image-layout.md: `oci-layout`, `index.json`,
 * `blobs/<alg>/<hex>`), as skopeo, umoci and buildah write it. A tag is the
 * `org.opencontainers.image.ref.name` annotation of an index.json entry; without a tag the
 * layout must hold exactly one image.
 */
import { createReadStream, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { ImageError } from './errors.js';
import { Verifier } from './digest.js';
import { indexEntries, MEDIA, type Descriptor } from './manifest.js';
import type { Progress } from './progress.js';
import { MAX_DOCUMENT, type ImageSource } from './source.js';

const REF_NAME = 'org.opencontainers.image.ref.name';

export class LayoutSource implements ImageSource {
  constructor(private readonly dir: string, private readonly tag: string | undefined, readonly what: string) {}

  private blobPath(desc: Descriptor): string {
    return join(this.dir, 'blobs', desc.digest.algorithm, desc.digest.hex);
  }

  private async read(path: string, what: string): Promise<Buffer> {
    try {
      const st = await fsp.stat(path);
      if (st.size > MAX_DOCUMENT) throw new ImageError(`${what}: larger than ${MAX_DOCUMENT} bytes`);
      return await fsp.readFile(path);
    } catch (err) {
      if (err instanceof ImageError) throw err;
      throw new ImageError(`${what}: ${(err as Error).message}`);
    }
  }

  async root(): Promise<{ bytes: Buffer; mediaType: string | undefined }> {
    const layout = await this.read(join(this.dir, 'oci-layout'), `${this.what}: oci-layout`).catch(() => {
      throw new ImageError(`${this.what}: ${this.dir} is not an OCI image layout (no oci-layout file)`);
    });
    if ((JSON.parse(layout.toString('utf8')) as { imageLayoutVersion?: unknown }).imageLayoutVersion !== '1.0.0') {
      throw new ImageError(`${this.what}: unsupported imageLayoutVersion in ${this.dir}/oci-layout`);
    }
    const entries = indexEntries(await this.read(join(this.dir, 'index.json'), `${this.what}: index.json`), `${this.what}: index.json`);
    const named = this.tag === undefined ? entries : entries.filter((e) => e.annotations[REF_NAME] === this.tag);
    if (named.length !== 1) {
      const tags = entries.map((e) => e.annotations[REF_NAME]).filter((t) => t !== undefined).join(', ');
      throw new ImageError(this.tag === undefined
        ? `${this.what}: the layout holds ${entries.length} images; name one with oci:DIR:TAG (tags: ${tags || 'none'})`
        : `${this.what}: no image tagged '${this.tag}' in ${this.dir} (tags: ${tags || 'none'})`);
    }
    const desc = named[0]!.desc;
    return { bytes: await this.document(desc, 'manifest'), mediaType: desc.mediaType ?? MEDIA.ociManifest };
  }

  async document(desc: Descriptor, _kind: 'manifest' | 'blob'): Promise<Buffer> {
    const what = `${this.what}: ${desc.digest.text}`;
    const bytes = await this.read(this.blobPath(desc), what);
    const v = new Verifier(desc.digest);
    v.update(bytes);
    v.check(what);
    return bytes;
  }

  /** The blob's file in the layout, read through once to check it against its digest. */
  async blobFile(desc: Descriptor, progress: Progress): Promise<string> {
    const path = this.blobPath(desc);
    const v = new Verifier(desc.digest);
    try {
      for await (const c of createReadStream(path) as AsyncIterable<Buffer>) {
        v.update(c);
        progress.add(c.length);
      }
    } catch (err) {
      throw new ImageError(`${this.what}: blob ${desc.digest.text}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? `missing from ${this.dir}` : (err as Error).message}`);
    }
    v.check(`${this.what}: layer ${desc.digest.text}`);
    return path;
  }

  async release(): Promise<void> { /* the layout's own file */ }
}
