/**
 * Test layers: one logical description (three lowers L1 top-most .. L3 bottom-most, plus an
 * optional upper) rendered on disk in either whiteout format:
 *   - 'overlayfs': whiteout = char device 0/0 (mknod), opaque = trusted.overlay.opaque=y (setfattr)
 *   - 'oci':       whiteout = empty file .wh.<name>, opaque = file .wh..wh..opq in the directory
 * The kernel overlayfs oracle always gets the overlayfs rendering (it cannot read OCI markers);
 * the server gets either. Both renderings describe the same merged tree.
 *
 * What the lowers exercise: a file hiding a directory below it and a directory above that file
 * (not merged with the bottom one), whiteouts of files and directories, opaque directories,
 * merged subdirectories three deep, hard links, FIFOs and a char device, symlinks pointing
 * outside (absolute, ../../..), dangling and to directories, a 3 MB file (multi-READ), owners
 * and odd modes, and hostile names (newline, tab, space, invalid UTF-8, 255 bytes, '.wh'
 * look-alikes that are not markers, backslash, leading dash).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, linkSync, lchownSync, lutimesSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';

export type WhiteoutFormat = 'overlayfs' | 'oci';

export type Node =
  | { kind: 'file'; path: string; data: Buffer | string; mode?: number; uid?: number; gid?: number }
  | { kind: 'dir'; path: string; mode?: number; uid?: number; gid?: number; opaque?: boolean }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'hardlink'; path: string; to: string }
  | { kind: 'fifo'; path: string; mode?: number }
  | { kind: 'chardev'; path: string; major: number; minor: number }
  | { kind: 'whiteout'; path: string };

export interface LayerSet {
  lowers: Node[][];
  upper: Node[];
}

/** Deterministic pseudo-random bytes (so both renderings and re-runs are byte-identical). */
export function bytes(seed: string, n: number): Buffer {
  const out = Buffer.alloc(n);
  let off = 0;
  for (let i = 0; off < n; i++) {
    const h = createHash('sha256').update(`${seed}:${i}`).digest();
    off += h.copy(out, off);
  }
  return out;
}

const p = (s: string) => Buffer.from(s, 'latin1');

export const HOSTILE_NAMES: Buffer[] = [
  p('sp ace'), p('new\nline'), p('tab\tx'), p('-dash'), Buffer.from('ümlaut-€', 'utf8'), Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe]),
  p('%41%2F'), p('x'.repeat(255)), p('.hidden'), p('...'), p('x.wh.y'), p('.whx'), p('back\\slash'), p('q"uo\'te'), p('*?[glob]'),
];

/** The standard three-lower (+ upper) layer set used by the read, differential and identity tests. */
export function standardLayers(): LayerSet {
  const L3: Node[] = [
    { kind: 'dir', path: 'a' },
    { kind: 'file', path: 'a/f1', data: 'l3 a/f1\n' },
    { kind: 'file', path: 'a/f2', data: 'l3 a/f2 (whited out by L1)\n' },
    { kind: 'dir', path: 'a/sub' },
    { kind: 'dir', path: 'a/sub/deeper', mode: 0o750 },
    { kind: 'file', path: 'a/sub/deeper/deep.txt', data: 'deep in l3\n' },
    { kind: 'file', path: 'a/sub/l3.txt', data: 'l3 sub\n' },
    { kind: 'dir', path: 'b' },
    { kind: 'file', path: 'b/x', data: 'l3 b/x hidden by the L2 file b\n' },
    { kind: 'file', path: 'top.txt', data: 'l3 top\n' },
    { kind: 'dir', path: 'gone' },
    { kind: 'file', path: 'gone/inner', data: 'hidden by an L1 whiteout\n' },
    { kind: 'dir', path: 'opq' },
    { kind: 'file', path: 'opq/old1', data: 'old1\n' },
    { kind: 'file', path: 'opq/old2', data: 'old2\n' },
    { kind: 'dir', path: 'hl' },
    { kind: 'file', path: 'hl/one', data: 'hard linked\n' },
    { kind: 'hardlink', path: 'hl/two', to: 'hl/one' },
    { kind: 'hardlink', path: 'hl-three', to: 'hl/one' },
    { kind: 'file', path: 'wh-me.txt', data: 'whited out by L2\n' },
    { kind: 'file', path: 'big.bin', data: bytes('big', 3 * 1024 * 1024 + 17) },
    { kind: 'file', path: 'owned.txt', data: 'owned\n', mode: 0o640, uid: 1234, gid: 5678 },
    { kind: 'file', path: 'setuid', data: '#!/bin/sh\n', mode: 0o4755 },
    { kind: 'file', path: 'empty', data: '' },
    { kind: 'fifo', path: 'pipe', mode: 0o644 },
    { kind: 'chardev', path: 'null3', major: 1, minor: 3 },
    { kind: 'symlink', path: 'abs-link', target: '/etc/passwd' },
    { kind: 'symlink', path: 'up-link', target: '../../../etc/passwd' },
    { kind: 'symlink', path: 'a/sub/up2', target: '../../../../../../../etc' },
    { kind: 'symlink', path: 'rel-link', target: 'a/f1' },
    { kind: 'symlink', path: 'dangling', target: 'does/not/exist' },
    { kind: 'symlink', path: 'dir-link', target: 'a' },
    { kind: 'dir', path: 'sticky', mode: 0o1777 },
    { kind: 'dir', path: 'ren' },
    { kind: 'dir', path: 'ren/lowerdir' },
    { kind: 'file', path: 'ren/lowerdir/a', data: 'lower dir content a\n' },
    { kind: 'dir', path: 'ren/lowerdir/nested' },
    { kind: 'file', path: 'ren/lowerdir/nested/b', data: 'lower dir content b\n' },
    { kind: 'dir', path: 'tree' },
  ];
  for (let i = 0; i < 12; i++) {
    L3.push({ kind: 'dir', path: `tree/d${i}` });
    for (let j = 0; j < 5; j++) L3.push({ kind: 'file', path: `tree/d${i}/f${j}`, data: `tree ${i} ${j} l3\n` });
  }
  const L2: Node[] = [
    { kind: 'dir', path: 'a' },
    { kind: 'file', path: 'a/f1', data: 'l2 a/f1 is longer than l3\n' },
    { kind: 'file', path: 'a/l2only', data: 'l2 only\n', mode: 0o600 },
    { kind: 'dir', path: 'a/sub' },
    { kind: 'file', path: 'a/sub/l2.txt', data: 'l2 sub\n' },
    { kind: 'file', path: 'b', data: 'L2 file b hides the L3 dir b\n' },
    { kind: 'file', path: 'top.txt', data: 'l2 top\n' },
    { kind: 'whiteout', path: 'wh-me.txt' },
    { kind: 'dir', path: 'opq', opaque: true },
    { kind: 'file', path: 'opq/new', data: 'new in opaque\n' },
    { kind: 'dir', path: 'hostile' },
    { kind: 'dir', path: 'tree' },
  ];
  for (const name of HOSTILE_NAMES) L2.push({ kind: 'file', path: `hostile/${name.toString('latin1')}`, data: Buffer.concat([p('name: '), name, p('\n')]) });
  for (let i = 0; i < 12; i += 2) {
    L2.push({ kind: 'dir', path: `tree/d${i}` });
    L2.push({ kind: 'file', path: `tree/d${i}/f0`, data: `tree ${i} 0 l2\n` });
    L2.push({ kind: 'file', path: `tree/d${i}/l2-${i}`, data: `tree ${i} l2 only\n` });
  }
  const L1: Node[] = [
    { kind: 'dir', path: 'a' },
    { kind: 'whiteout', path: 'a/f2' },
    { kind: 'dir', path: 'a/sub' },
    { kind: 'dir', path: 'a/sub/deeper', mode: 0o750 },
    { kind: 'file', path: 'a/sub/deeper/l1.txt', data: 'l1 deeper\n' },
    { kind: 'dir', path: 'b', mode: 0o700 },
    { kind: 'file', path: 'b/y', data: 'L1 b/y (L3 b/x stays hidden)\n' },
    { kind: 'whiteout', path: 'gone' },
    { kind: 'file', path: 'newtop', data: 'l1 newtop\n', mode: 0o755 },
    { kind: 'dir', path: 'tree' },
    { kind: 'dir', path: 'tree/d1' },
    { kind: 'file', path: 'tree/d1/f1', data: 'tree 1 1 l1\n' },
    { kind: 'whiteout', path: 'tree/d3' },
    { kind: 'dir', path: 'tree/d5', opaque: true },
    { kind: 'file', path: 'tree/d5/only', data: 'opaque d5\n' },
  ];
  const upper: Node[] = [
    { kind: 'dir', path: 'a' },
    { kind: 'file', path: 'a/upper.txt', data: 'from upper\n' },
    { kind: 'dir', path: 'a/sub' },
    { kind: 'whiteout', path: 'a/sub/l3.txt' },
    { kind: 'file', path: 'top.txt', data: 'upper top\n', mode: 0o664 },
  ];
  return { lowers: [L1, L2, L3], upper };
}

const FIXED_TIME = 1_600_000_000;

function ensureDir(path: Buffer): void {
  mkdirSync(path, { recursive: true });
}

function join(root: string, rel: string): Buffer {
  return Buffer.concat([Buffer.from(root), Buffer.from('/'), Buffer.from(rel, 'latin1')]);
}

/** Render one layer into `root` (created) in the given whiteout format. */
export function renderLayer(nodes: Node[], root: string, format: WhiteoutFormat): void {
  ensureDir(Buffer.from(root));
  const dirs: { path: Buffer; mode: number }[] = [];
  for (const n of nodes) {
    const abs = join(root, n.path);
    const slash = abs.lastIndexOf(0x2f);
    ensureDir(abs.subarray(0, slash));
    switch (n.kind) {
      case 'dir':
        ensureDir(abs);
        if (n.opaque) {
          if (format === 'oci') writeFileSync(Buffer.concat([abs, Buffer.from('/.wh..wh..opq')]), '');
          else execFileSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', abs.toString('latin1')]);
        }
        if (n.uid !== undefined) lchownSync(abs, n.uid, n.gid ?? 0);
        dirs.push({ path: abs, mode: n.mode ?? 0o755 });
        break;
      case 'file':
        writeFileSync(abs, n.data);
        chmodSync(abs, n.mode ?? 0o644);
        if (n.uid !== undefined) lchownSync(abs, n.uid, n.gid ?? 0);
        lutimesSync(abs, FIXED_TIME, FIXED_TIME);
        break;
      case 'symlink':
        symlinkSync(Buffer.from(n.target, 'latin1'), abs);
        lutimesSync(abs, FIXED_TIME, FIXED_TIME);
        break;
      case 'hardlink':
        linkSync(join(root, n.to), abs);
        break;
      case 'fifo':
        execFileSync('mknod', ['-m', (n.mode ?? 0o644).toString(8), abs.toString('latin1'), 'p']);
        lutimesSync(abs, FIXED_TIME, FIXED_TIME);
        break;
      case 'chardev':
        execFileSync('mknod', ['-m', '0644', abs.toString('latin1'), 'c', String(n.major), String(n.minor)]);
        lutimesSync(abs, FIXED_TIME, FIXED_TIME);
        break;
      case 'whiteout': {
        if (format === 'oci') {
          const wh = Buffer.concat([abs.subarray(0, slash + 1), Buffer.from('.wh.'), abs.subarray(slash + 1)]);
          writeFileSync(wh, '');
        } else {
          execFileSync('mknod', [abs.toString('latin1'), 'c', '0', '0']);
        }
        break;
      }
    }
  }
  // Directory modes and times last: children were created inside them.
  dirs.push({ path: Buffer.from(root), mode: 0o755 });
  for (const d of dirs.reverse()) {
    chmodSync(d.path, d.mode);
    lutimesSync(d.path, FIXED_TIME, FIXED_TIME);
  }
}

export interface RenderedLayers {
  lowers: string[];
  upper?: string;
  workdir?: string;
}

/** Render the lowers (and the upper, if withUpper) under base/: base/l1..l3, base/upper, base/work. */
export function renderLayers(set: LayerSet, base: string, format: WhiteoutFormat, withUpper: boolean): RenderedLayers {
  const lowers = set.lowers.map((nodes, i) => {
    const dir = `${base}/l${i + 1}`;
    renderLayer(nodes, dir, format);
    return dir;
  });
  if (!withUpper) return { lowers };
  const upper = `${base}/upper`;
  renderLayer(set.upper, upper, format);
  const workdir = `${base}/work`;
  mkdirSync(workdir, { recursive: true });
  return { lowers, upper, workdir };
}
