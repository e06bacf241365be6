/**
 * HTTP(S) GETs for registries: TLS checked against Node's roots plus the system's bundle
 * (/etc/ssl/certs/ca-certificates.crt, where Debian's update-ca-certificates puts local CAs;
 * or the file SSL_CERT_FILE names, as OpenSSL, curl and Go read it),
 * redirects followed (blob downloads go to storage elsewhere) without carrying the
 * registry's Authorization to another host, and a time limit on every wait.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { ImageError } from './errors.js';

const SYSTEM_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
const bundle = (): string => process.env['SSL_CERT_FILE'] ?? SYSTEM_BUNDLE;
/** No byte for this long (headers or body) ends the request. */
export const STALL_MS = 60_000;
const MAX_REDIRECTS = 5;

let ca: string[] | undefined;
function roots(): string[] {
  if (ca === undefined) {
    let system: string[] = [];
    try {
      system = [readFileSync(bundle(), 'utf8')];
    } catch { /* Node's own roots only */ }
    ca = [...rootCertificates, ...system];
  }
  return ca;
}

/** GET `url`; resolves with the response (any status) once its headers arrive. */
export function get(url: URL, headers: Record<string, string>, redirects = 0): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const mod = url.protocol === 'https:' ? https : http;
    const req = mod.get(url, { headers, ...(url.protocol === 'https:' && { ca: roots() }) }, (res) => {
      const location = res.headers.location;
      if (res.statusCode !== undefined && [301, 302, 303, 307, 308].includes(res.statusCode) && location !== undefined) {
        res.resume();
        if (redirects >= MAX_REDIRECTS) {
          reject(new ImageError(`${url.host}: more than ${MAX_REDIRECTS} redirects`));
          return;
        }
        const next = new URL(location, url);
        const { authorization: _dropped, ...rest } = headers;
        get(next, next.host === url.host ? headers : rest, redirects + 1).then(resolve, reject);
        return;
      }
      res.setTimeout(STALL_MS, () => res.destroy(new ImageError(`${url.host}: no data for ${STALL_MS / 1000} s`, true)));
      resolve(res);
    });
    req.setTimeout(STALL_MS, () => req.destroy(new ImageError(`${url.host}: no answer for ${STALL_MS / 1000} s`, true)));
    req.on('error', (err) => reject(err instanceof ImageError ? err : new ImageError(`${url.origin}: ${err.message}`, true)));
  });
}

/** The whole body, refusing more than `max` bytes (manifests and configurations are small). */
export async function readBody(res: http.IncomingMessage, max: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > max) {
      res.destroy();
      throw new ImageError(`${what}: larger than ${max} bytes`);
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}
