/**
 * OCI images as lower layers (--image REF): a reference resolved to its manifest for this
 * platform, each layer unpacked once into the shared cache (cache.ts), and the layer
 * directories handed to the union as lowers, top-most first (overlayfs order; an image lists
 * its layers bottom first).
 *
 *   oci:DIR[:TAG] ─▶ LayoutSource ─┐                  ┌▶ layers/sha256/<diff_id> ─▶ lower N
 *                                  ├▶ manifest.ts ─▶ ─┤   (cache.ts, unpack.ts)
 *   docker://HOST/NAME ─▶ Registry ┘   (diff_ids)     └▶ ...
 */
import { child } from '../log.js';
import { LayerCache } from './cache.js';
import { ImageError } from './errors.js';
import { LayoutSource } from './layout-source.js';
import { isIndex, layersOf, mediaTypeOf, parseManifest, pickPlatform, type LayerDescriptor } from './manifest.js';
import { parseImageRef } from './reference.js';
import { RegistrySource } from './registry.js';
import type { ImageSource } from './source.js';

export { ImageError } from './errors.js';
export { parseImageRef } from './reference.js';

const log = child('image');

export interface ImageOptions {
  /** The layer cache (default $XDG_STATE_HOME/union-nfsd/images). */
  readonly cacheDir: string;
  /** Speak plain HTTP to registries (--plain-http); HTTPS otherwise. */
  readonly plainHttp: boolean;
}

/** Nested indexes (an index of indexes) are followed this deep. */
const MAX_NESTING = 4;

/** The layers of the image `source` names, bottom first, with their diff_ids. */
export async function resolveLayers(source: ImageSource): Promise<LayerDescriptor[]> {
  let { bytes, mediaType } = await source.root();
  let type = mediaTypeOf(bytes, mediaType, source.what);
  for (let depth = 0; isIndex(type); depth++) {
    if (depth === MAX_NESTING) throw new ImageError(`${source.what}: indexes nested deeper than ${MAX_NESTING}`);
    const desc = pickPlatform(bytes, source.what);
    bytes = await source.document(desc, 'manifest');
    type = mediaTypeOf(bytes, desc.mediaType, source.what);
  }
  const manifest = parseManifest(bytes, source.what);
  const config = await source.document(manifest.config, 'blob');
  return layersOf(manifest.layers, config, source.what);
}

export class ImageStore {
  readonly cache: LayerCache;

  constructor(private readonly o: ImageOptions) {
    this.cache = new LayerCache(o.cacheDir);
  }

  private source(text: string): ImageSource {
    const ref = parseImageRef(text);
    return ref.kind === 'oci' ? new LayoutSource(ref.dir, ref.tag, text) : new RegistrySource(ref, this.cache.blobsDir, this.o.plainHttp);
  }

  /**
   * The lower directories of image `text`, top-most first, pulled and unpacked as needed.
   * A registry that cannot be reached is not fatal when an earlier pull of the same reference
   * left all its layers here: those are served, with a warning (a fleet's servers restart
   * while their registry is down). A registry that answers with an error is.
   */
  async lowers(text: string): Promise<string[]> {
    const source = this.source(text);
    let layers: LayerDescriptor[];
    try {
      layers = await resolveLayers(source);
      if (source instanceof RegistrySource) await this.cache.remember(text, layers);
    } catch (err) {
      const known = err instanceof ImageError && err.unreachable ? await this.cache.recall(text) : undefined;
      if (known === undefined) throw err;
      log.warn(`${(err as Error).message}; serving the layers ${text} named when it was pulled at ${known.at}`);
      layers = known.layers;
    }
    const dirs: string[] = [];
    // One layer after another: a pull's bandwidth and disk go to one unpack at a time.
    for (const l of layers) dirs.push(await this.cache.layer(l, source));
    await this.cache.markInUse(layers);
    log.info(`image ${text}: ${layers.length} layer(s) ready`);
    return dirs.reverse();
  }

  close(): Promise<void> {
    return this.cache.unmark();
  }
}
