/**
 * Content digests (OCI image spec, "Digests"): `algorithm:hex`, of which sha256 and sha512
 * are registered. Everything fetched by digest is checked against it before it is used.
 */
import { createHash, type Hash } from 'node:crypto';
import { ImageError } from './errors.js';

const FORMS: Record<string, number> = { sha256: 64, sha512: 128 };

export interface Digest {
  readonly algorithm: 'sha256' | 'sha512';
  readonly hex: string;
  /** The digest as written: 'sha256:<hex>'. */
  readonly text: string;
}

export function parseDigest(text: unknown, what: string): Digest {
  const m = typeof text === 'string' ? /^(sha256|sha512):([0-9a-f]+)$/.exec(text) : null;
  if (m === null || m[2]!.length !== FORMS[m[1]!]) throw new ImageError(`${what}: '${String(text)}' is not a sha256 or sha512 digest`);
  return { algorithm: m[1] as Digest['algorithm'], hex: m[2]!, text: m[0] };
}

/** Hashes bytes as they pass and says whether they were the digest's content. */
export class Verifier {
  private readonly hash: Hash;
  bytes = 0;

  constructor(readonly expected: Digest) {
    this.hash = createHash(expected.algorithm);
  }

  update(b: Buffer): void {
    this.hash.update(b);
    this.bytes += b.length;
  }

  /** Throws unless the bytes seen hash to the expected digest. */
  check(what: string): void {
    const got = this.hash.digest('hex');
    if (got !== this.expected.hex) {
      throw new ImageError(`${what}: content does not match its digest ${this.expected.text} (got ${this.expected.algorithm}:${got}); refusing it`);
    }
  }
}

export function digestOf(b: Buffer, algorithm: Digest['algorithm'] = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(b).digest('hex')}`;
}
