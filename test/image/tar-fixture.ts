/**
 * Tar archives for the image tests, written by python's tarfile (a writer nobody here wrote),
 * from a list of entries: [name, kind, data?, extra?].
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';

export interface FixtureEntry {
  name: string;
  kind?: 'file' | 'dir' | 'symlink' | 'hardlink' | 'fifo';
  data?: string;
  link?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  /** pax records (SCHILY.xattr.user.x = value, ...) */
  pax?: Record<string, string>;
}

const WRITER = `
import io, json, sys, tarfile
spec = json.load(sys.stdin)
fmt = {'pax': tarfile.PAX_FORMAT, 'gnu': tarfile.GNU_FORMAT}[spec['format']]
out = io.BytesIO()
kinds = {'file': tarfile.REGTYPE, 'dir': tarfile.DIRTYPE, 'symlink': tarfile.SYMTYPE, 'hardlink': tarfile.LNKTYPE, 'fifo': tarfile.FIFOTYPE}
with tarfile.open(fileobj=out, mode='w', format=fmt) as t:
    for e in spec['entries']:
        ti = tarfile.TarInfo(e['name'])
        ti.type = kinds[e.get('kind', 'file')]
        ti.mode = e.get('mode', 0o644)
        ti.uid = e.get('uid', 0)
        ti.gid = e.get('gid', 0)
        ti.mtime = 1700000000
        ti.linkname = e.get('link', '')
        ti.pax_headers = e.get('pax', {})
        data = e.get('data', '').encode()
        ti.size = len(data) if ti.type == tarfile.REGTYPE else 0
        t.addfile(ti, io.BytesIO(data) if ti.type == tarfile.REGTYPE else None)
sys.stdout.buffer.write(out.getvalue())
`;

export function makeTar(entries: FixtureEntry[], format: 'pax' | 'gnu' = 'pax'): Buffer {
  return execFileSync('python3', ['-c', WRITER], { input: JSON.stringify({ format, entries }), maxBuffer: 64 << 20 });
}

export function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}
