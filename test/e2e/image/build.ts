/**
 * A test image built offline with umoci, three layers that use what the image spec allows:
 *  1. (umoci repack) files, a 1 MiB file, owners other than root, setuid, a symlink, a hard
 *     link, a FIFO, a character device, a user.* xattr, a path longer than ustar's 100 bytes;
 *  2. (umoci repack) deletions of a file and of a file in a subdirectory, a changed file, a
 *     new file;
 *  3. (umoci raw add-layer, a tar written by python's tarfile so the order is ours) an opaque
 *     directory whose `.wh..wh..opq` comes AFTER the entry it keeps, and a whiteout of layer
 *     2's new file that comes FIRST in the archive.
 * `umoci unpack` of the result is the oracle: the merged tree an image tool gives.
 */
import { execFileSync } from 'node:child_process';
import { chownSync, linkSync, mkdirSync, rmSync, symlinkSync, writeFileSync, readFileSync, chmodSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { bytes } from '../libnfs/layers.js';

export const IMAGE_TOOLS = ['umoci', 'skopeo', 'docker-registry', 'python3', 'setfattr', 'mknod', 'mkfifo'] as const;

export interface TestImage {
  /** The OCI image layout directory. */
  readonly layout: string;
  /** Its tag for all three layers. */
  readonly tag: string;
  /** `umoci unpack` of the image: the oracle's root. */
  readonly rootfs: string;
}

function sh(cmd: string, args: string[], cwd?: string): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], ...(cwd !== undefined && { cwd }) });
}

const LAYER3 = `
import io, sys, tarfile
with tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT) as t:
    def add(name, data=None, kind=tarfile.REGTYPE, mode=0o644):
        ti = tarfile.TarInfo(name); ti.type = kind; ti.mode = mode; ti.mtime = 1700000000
        ti.size = 0 if data is None else len(data)
        t.addfile(ti, None if data is None else io.BytesIO(data))
    add('.wh.new', b'')
    add('opq', kind=tarfile.DIRTYPE, mode=0o750)
    add('opq/kept', b'kept in layer 3\\n')
    add('opq/.wh..wh..opq', b'')
    add('late', b'layer 3\\n')
`;

export function buildTestImage(base: string): TestImage {
  const layout = join(base, 'layout');
  const bundle = join(base, 'bundle');
  const tag = 'v3';
  sh('umoci', ['init', '--layout', layout]);
  sh('umoci', ['new', '--image', `${layout}:v1`]);
  sh('umoci', ['unpack', '--image', `${layout}:v1`, bundle]);
  const r = join(bundle, 'rootfs');
  mkdirSync(join(r, 'etc/d'), { recursive: true });
  writeFileSync(join(r, 'etc/os-release'), 'NAME=test\n');
  writeFileSync(join(r, 'etc/d/a'), 'a\n');
  writeFileSync(join(r, 'etc/d/b'), 'b\n');
  writeFileSync(join(r, 'gone'), 'deleted in layer 2\n');
  writeFileSync(join(r, 'big'), bytes('big', 1 << 20));
  mkdirSync(join(r, 'home/user'), { recursive: true });
  writeFileSync(join(r, 'home/user/notes'), 'private\n', { mode: 0o640 });
  chownSync(join(r, 'home/user/notes'), 1000, 1000);
  chownSync(join(r, 'home/user'), 1000, 1000);
  mkdirSync(join(r, 'bin'));
  writeFileSync(join(r, 'bin/tool'), '#!/bin/sh\n');
  chmodSync(join(r, 'bin/tool'), 0o4755);
  symlinkSync('etc/os-release', join(r, 'sym'));
  writeFileSync(join(r, 'file'), 'two names\n');
  linkSync(join(r, 'file'), join(r, 'hard'));
  sh('mkfifo', [join(r, 'fifo')]);
  mkdirSync(join(r, 'dev'));
  sh('mknod', [join(r, 'dev/null'), 'c', '1', '3']);
  writeFileSync(join(r, 'xattr'), 'with a user xattr\n');
  sh('setfattr', ['-n', 'user.test', '-v', 'value', join(r, 'xattr')]);
  const deep = join(r, 'long', 'd'.repeat(60), 'e'.repeat(60));
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, 'f'.repeat(40)), 'past ustar\'s 100 bytes\n');
  mkdirSync(join(r, 'opq'));
  writeFileSync(join(r, 'opq/hidden'), 'hidden by layer 3\n');
  sh('umoci', ['repack', '--image', `${layout}:v1`, bundle]);
  rmSync(bundle, { recursive: true });

  sh('umoci', ['unpack', '--image', `${layout}:v1`, bundle]);
  unlinkSync(join(r, 'gone'));
  unlinkSync(join(r, 'etc/d/b'));
  writeFileSync(join(r, 'etc/os-release'), `${readFileSync(join(r, 'etc/os-release'), 'utf8')}VERSION=2\n`);
  writeFileSync(join(r, 'new'), 'added in layer 2, deleted in layer 3\n');
  sh('umoci', ['repack', '--image', `${layout}:v2`, bundle]);
  rmSync(bundle, { recursive: true });

  const l3 = join(base, 'layer3.tar');
  execFileSync('python3', ['-c', LAYER3, l3]);
  sh('umoci', ['raw', 'add-layer', '--image', `${layout}:v2`, '--tag', tag, l3]);
  const oracle = join(base, 'oracle');
  sh('umoci', ['unpack', '--image', `${layout}:${tag}`, oracle]);
  return { layout, tag, rootfs: join(oracle, 'rootfs') };
}

/** The same image with zstd-compressed layers (skopeo), in a layout of its own. */
export function zstdCopy(image: TestImage, into: string): string {
  sh('skopeo', ['copy', '--dest-compress-format', 'zstd', `oci:${image.layout}:${image.tag}`, `oci:${into}:${image.tag}`]);
  return into;
}
