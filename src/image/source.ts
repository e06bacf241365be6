/**
 * Where an image's documents and blobs come from: an OCI image layout directory
 * (layout-source.ts) or a registry (registry.ts). Both hand out only verified content: a
 * document checked against its digest, a layer blob as a local file already checked against
 * its digest (the unpacker then checks the uncompressed tar against the diff_id).
 */
import type { Descriptor } from './manifest.js';
import type { Progress } from './progress.js';

/** The largest manifest, index or configuration accepted (the distribution spec's 4 MiB). */
export const MAX_DOCUMENT = 4 * 1024 * 1024;

export interface ImageSource {
  /** The reference, for messages. */
  readonly what: string;
  /** The document the reference names, with its media type (an index or a manifest). */
  root(): Promise<{ bytes: Buffer; mediaType: string | undefined }>;
  /** A manifest or configuration by descriptor, checked against its digest. */
  document(desc: Descriptor, kind: 'manifest' | 'blob'): Promise<Buffer>;
  /** A local file holding the blob, fetched if need be and checked against its digest. */
  blobFile(desc: Descriptor, progress: Progress): Promise<string>;
  /** The blob's local file is no longer needed (a download is deleted; a layout's stays). */
  release(desc: Descriptor): Promise<void>;
}
