/**
 * Manifests, indexes and image configurations (OCI image spec; Docker's schema 2 forms are
 * read the same way): from the document a reference names down to the ordered list of layers,
 * each with the digest of its blob and the diff_id (digest of its uncompressed tar) that the
 * configuration lists for it.
 *
 * Rule: an index (or Docker manifest list) picks the manifest for this machine's platform,
 * linux and the architecture Node runs on (GOARCH spelling); the layers are listed bottom
 * first, as in the manifest. Layers must be tar, tar+gzip or tar+zstd; anything else
 * (encrypted layers, foreign artifacts) is refused by name.
 */
import { ImageError } from './errors.js';
import { parseDigest, type Digest } from './digest.js';

export const MEDIA = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
} as const;

/** What a registry is told we accept, most wanted first. */
export const MANIFEST_ACCEPT = [MEDIA.ociIndex, MEDIA.ociManifest, MEDIA.dockerList, MEDIA.dockerManifest].join(', ');

export type Compression = 'none' | 'gzip' | 'zstd';

const LAYER_MEDIA: Record<string, Compression> = {
  'application/vnd.oci.image.layer.v1.tar': 'none',
  'application/vnd.oci.image.layer.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd': 'zstd',
  'application/vnd.oci.image.layer.nondistributable.v1.tar': 'none',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd': 'zstd',
  'application/vnd.docker.image.rootfs.diff.tar': 'none',
  'application/vnd.docker.image.rootfs.diff.tar.gzip': 'gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip': 'gzip',
};

export interface Descriptor {
  readonly mediaType: string;
  readonly digest: Digest;
  readonly size: number;
}

export interface LayerDescriptor extends Descriptor {
  readonly compression: Compression;
  /** The digest of the uncompressed tar, from the configuration: the unpacked layer's key. */
  readonly diffId: Digest;
}

/** Node's process.arch in the GOARCH spelling OCI platforms use. */
const GOARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
export const PLATFORM = { os: 'linux', architecture: GOARCH[process.arch] ?? process.arch };

function json(bytes: Buffer, what: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(bytes.toString('utf8'));
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch { /* below */ }
  throw new ImageError(`${what} is not a JSON object`);
}

function descriptor(v: unknown, what: string): Descriptor {
  const d = v as Record<string, unknown> | null;
  if (typeof d !== 'object' || d === null || typeof d['mediaType'] !== 'string' || !Number.isSafeInteger(d['size']) || (d['size'] as number) < 0) {
    throw new ImageError(`${what}: a descriptor needs mediaType, digest and size`);
  }
  return { mediaType: d['mediaType'], digest: parseDigest(d['digest'], what), size: d['size'] as number };
}

/** The media type of a manifest document: the response's, else the document's own field. */
export function mediaTypeOf(bytes: Buffer, given: string | undefined, what: string): string {
  const own = json(bytes, what)['mediaType'];
  const t = given !== undefined && given !== '' && given !== 'application/json' && given !== 'application/octet-stream'
    ? given.split(';')[0]!.trim() : typeof own === 'string' ? own : '';
  if (t === '') {
    // An OCI index without mediaType (allowed before spec 1.1) is told apart by its field.
    return Array.isArray(json(bytes, what)['manifests']) ? MEDIA.ociIndex : MEDIA.ociManifest;
  }
  return t;
}

export function isIndex(mediaType: string): boolean {
  return mediaType === MEDIA.ociIndex || mediaType === MEDIA.dockerList;
}

/** The descriptors an index lists, with their annotations and platforms. */
export function indexEntries(bytes: Buffer, what: string): { desc: Descriptor; annotations: Record<string, string>; platform?: { os?: string; architecture?: string } }[] {
  const doc = json(bytes, what);
  if (!Array.isArray(doc['manifests'])) throw new ImageError(`${what}: an index needs a manifests list`);
  return doc['manifests'].map((m: Record<string, unknown>) => ({
    desc: descriptor(m, what),
    annotations: (typeof m['annotations'] === 'object' && m['annotations'] !== null ? m['annotations'] : {}) as Record<string, string>,
    ...(typeof m['platform'] === 'object' && m['platform'] !== null && { platform: m['platform'] as { os?: string; architecture?: string } }),
  }));
}

/** The manifest of an index for this machine's platform (or its only one). */
export function pickPlatform(bytes: Buffer, what: string): Descriptor {
  const entries = indexEntries(bytes, what);
  const match = entries.find((e) => e.platform?.os === PLATFORM.os && e.platform.architecture === PLATFORM.architecture)
    ?? (entries.length === 1 && entries[0]!.platform === undefined ? entries[0] : undefined);
  if (match === undefined) {
    const have = entries.map((e) => `${e.platform?.os ?? '?'}/${e.platform?.architecture ?? '?'}`).join(', ');
    throw new ImageError(`${what}: no manifest for ${PLATFORM.os}/${PLATFORM.architecture} (the index has ${have || 'none'})`);
  }
  return match.desc;
}

/** An image manifest: its configuration's descriptor and its layers, bottom first. */
export function parseManifest(bytes: Buffer, what: string): { config: Descriptor; layers: Descriptor[] } {
  const doc = json(bytes, what);
  if (doc['schemaVersion'] !== 2) throw new ImageError(`${what}: schemaVersion ${String(doc['schemaVersion'])} is not supported (want 2)`);
  if (!Array.isArray(doc['layers'])) throw new ImageError(`${what}: a manifest needs a layers list`);
  return { config: descriptor(doc['config'], `${what} config`), layers: doc['layers'].map((l: unknown, i: number) => descriptor(l, `${what} layer ${i}`)) };
}

/** The layers with their diff_ids from the image configuration. */
export function layersOf(layers: readonly Descriptor[], configBytes: Buffer, what: string): LayerDescriptor[] {
  const config = json(configBytes, `${what} configuration`);
  const rootfs = config['rootfs'] as { type?: unknown; diff_ids?: unknown } | undefined;
  if (rootfs?.type !== 'layers' || !Array.isArray(rootfs.diff_ids)) throw new ImageError(`${what}: the configuration has no rootfs.diff_ids`);
  if (rootfs.diff_ids.length !== layers.length) {
    throw new ImageError(`${what}: the manifest lists ${layers.length} layers, the configuration ${rootfs.diff_ids.length} diff_ids`);
  }
  const ids = rootfs.diff_ids;
  return layers.map((l, i) => {
    const compression = LAYER_MEDIA[l.mediaType];
    if (compression === undefined) throw new ImageError(`${what}: layer ${l.digest.text} has media type ${l.mediaType}, which is not a tar layer this server unpacks (tar, tar+gzip, tar+zstd)`);
    return { ...l, compression, diffId: parseDigest(ids[i], `${what} diff_id ${i}`) };
  });
}
