/**
 * The one error type of image handling: a reference that cannot be parsed, a registry that
 * refuses, content that does not match its digest, a layer that cannot be unpacked. Its
 * message is meant for the operator as is; the export that named the image prefixes it.
 */
export class ImageError extends Error {
  override name = 'ImageError';

  /** `unreachable`: the registry could not be reached at all (no answer, refused, no route). */
  constructor(message: string, readonly unreachable = false) {
    super(message);
  }
}
