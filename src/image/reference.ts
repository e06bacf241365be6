/**
 * Image references, as skopeo writes them (containers-transports(5)):
 *   oci:DIR[:TAG]                       an OCI image layout directory; without TAG the layout
 *                                       must hold exactly one image
 *   docker://HOST[:PORT]/NAME[:TAG]     an image in a registry (distribution API v2);
 *   docker://HOST[:PORT]/NAME@sha256:.. without tag or digest, :latest
 * A first component without a dot, colon or 'localhost' is a Docker Hub name
 * (docker://debian:12 is docker.io/library/debian:12), as docker and skopeo read it.
 */
import { ImageError } from './errors.js';
import { parseDigest, type Digest } from './digest.js';

export type ImageRef =
  | { readonly kind: 'oci'; readonly dir: string; readonly tag?: string; readonly text: string }
  | { readonly kind: 'docker'; readonly host: string; readonly name: string; readonly tag?: string; readonly digest?: Digest; readonly text: string };

const DOCKER_HUB = 'docker.io';
/** The distribution spec's repository name grammar (lower-case path components). */
const NAME = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

export function parseImageRef(text: string): ImageRef {
  if (text.startsWith('oci:')) {
    const rest = text.slice(4);
    // The tag follows the last colon, unless that colon belongs to the directory (a path
    // with a colon and no tag is written oci:DIR: ... rarely); a tag never contains '/'.
    const colon = rest.lastIndexOf(':');
    const tag = colon >= 0 && !rest.slice(colon + 1).includes('/') ? rest.slice(colon + 1) : undefined;
    const dir = tag === undefined ? rest : rest.slice(0, colon);
    if (dir === '') throw new ImageError(`${text}: oci: wants a directory (oci:DIR[:TAG])`);
    if (tag !== undefined && !TAG.test(tag)) throw new ImageError(`${text}: '${tag}' is not a valid tag`);
    return { kind: 'oci', dir, ...(tag !== undefined && { tag }), text };
  }
  if (text.startsWith('docker://')) {
    let rest = text.slice('docker://'.length);
    let digest: Digest | undefined;
    const at = rest.indexOf('@');
    if (at >= 0) {
      digest = parseDigest(rest.slice(at + 1), text);
      rest = rest.slice(0, at);
    }
    let tag: string | undefined;
    const lastColon = rest.lastIndexOf(':');
    if (lastColon > rest.lastIndexOf('/')) {
      tag = rest.slice(lastColon + 1);
      rest = rest.slice(0, lastColon);
      if (!TAG.test(tag)) throw new ImageError(`${text}: '${tag}' is not a valid tag`);
    }
    const slash = rest.indexOf('/');
    const first = slash < 0 ? '' : rest.slice(0, slash);
    const isHost = first.includes('.') || first.includes(':') || first === 'localhost';
    const host = isHost ? first : DOCKER_HUB;
    let name = isHost ? rest.slice(slash + 1) : rest;
    if (host === DOCKER_HUB && !name.includes('/')) name = `library/${name}`;
    if (!NAME.test(name)) throw new ImageError(`${text}: '${name}' is not a valid repository name`);
    return { kind: 'docker', host, name, ...(tag !== undefined && { tag }), ...(digest !== undefined && { digest }), text };
  }
  throw new ImageError(`'${text}' is not an image reference: use oci:DIR[:TAG] or docker://HOST[:PORT]/NAME[:TAG|@sha256:...]`);
}
