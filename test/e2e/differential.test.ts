/**
 * Issue 4, differential: one scripted sequence of 300+ operations (script.ts: every modifying
 * procedure — create, write, append, truncate, chmod, chown, utimes, mkdir, rmdir, rmdir+mkdir
 * opaque, symlink, mknod fifo, remove, rename of files across layers and of lower directories,
 * link to lower files, rm -rf of a merged tree — plus interleaved reads) runs
 *   - through our server, by driver/ops.c over libnfs, and
 *   - on kernel overlayfs (redirect_dir=on,index=on) over a copy of the same three lowers +
 *     upper, by the same ops.c compiled against plain syscalls.
 * Every operation's outcome (OK + what it read, or the errno) must match, then the merged trees
 * must match (names, types, sizes, contents, modes, owners, symlink targets, link counts), and
 * the server's lower layers must be byte-identical (content, metadata, xattrs) afterwards.
 * Then each upper is stacked as a lower under the same lowers (its renamed lower directories
 * are redirects): a read-only union through libnfs must show the kernel's mount of that stack,
 * and must leave that upper as it was.
 *
 * Where overlayfs and the server may legitimately differ is listed in KNOWN_DIFFERENCES, each
 * with its reason; nothing else is tolerated.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { compileDriver, runOk } from './libnfs/driver.js';
import { requireEnv } from './libnfs/env.js';
import { renderLayers, standardLayers, type LayerSet, type WhiteoutFormat } from './libnfs/layers.js';
import { cleanupTemp, layerFingerprint, makeTemp, mountOverlay } from './libnfs/oracle.js';
import { differentialScript } from './libnfs/script.js';
import { TestServer } from './libnfs/server.js';
import { diffTrees, parseTree, walkLocal } from './libnfs/tree.js';

/**
 * Operations whose outcome may differ, by the op text (a RegExp on "<op line>"), and why. Only
 * an error-versus-another-error difference is tolerated (both sides must fail).
 */
const KNOWN_DIFFERENCES: { op: RegExp; why: string }[] = [
  {
    op: /^link a a\/dirlink$/,
    why: 'hard link to a directory: Linux link(2) says EPERM; over NFS the server answers PERM, ISDIR (knfsd) or INVAL (ganesha); any refusal is right',
  },
];

function compareResults(nfsOut: string, ovlOut: string): string[] {
  const a = nfsOut.trimEnd().split('\n');
  const b = ovlOut.trimEnd().split('\n');
  const diffs: string[] = [];
  if (a.length !== b.length) diffs.push(`server ran ${a.length} ops, overlayfs ${b.length}`);
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] === b[i]) continue;
    const op = (b[i] ?? '').split('\t')[1] ?? '';
    const bothErr = /\tERR\t/.test(a[i] ?? '') && /\tERR\t/.test(b[i] ?? '');
    if (bothErr && KNOWN_DIFFERENCES.some((k) => k.op.test(op))) continue;
    diffs.push(`op ${i + 1}: overlayfs: ${b[i]}\n         server:    ${a[i]}`);
  }
  return diffs;
}

/**
 * In overlayfs format `.wh.*` is a name like any other (issue 11): lower files so named, and
 * operations on such names, after the common script (in a directory it never touches).
 */
function addMarkerNamedFiles(set: LayerSet): void {
  set.lowers[0]!.push({ kind: 'dir', path: 'whnames' }, { kind: 'file', path: 'whnames/.wh.user', data: 'a user file named .wh.user\n' },
    { kind: 'file', path: 'whnames/user', data: 'not hidden by .wh.user\n' }, { kind: 'file', path: 'whnames/.wh..wh..opq', data: 'no opaque mark\n' });
  set.lowers[1]!.push({ kind: 'dir', path: 'whnames' }, { kind: 'file', path: 'whnames/below', data: 'merged: whnames is not opaque\n' });
}
const MARKER_NAMED_OPS = ['ls whnames', 'cat whnames/.wh.user', 'cat whnames/user', 'cat whnames/below', 'create whnames/.wh.made 0644',
  'write whnames/.wh.made 0 100 7', 'cat whnames/.wh.made', 'rename whnames/.wh.user whnames/.wh.renamed', 'link whnames/.wh.made whnames/.wh.linked',
  'stat whnames/.wh.linked', 'unlink whnames/.wh.made', 'mkdir whnames/.wh.dir 0755', 'create whnames/.wh.dir/.wh..wh..opq 0644',
  'ls whnames/.wh.dir', 'unlink whnames/.wh..wh..opq', 'create whnames/below 0644', 'ls whnames', 'stat whnames/.wh.renamed'];

/**
 * A lower directory renamed and never touched after: overlayfs (redirect_dir=on) moves it
 * alone, so it and the directory below it keep their mtimes (the layers' fixed time); the
 * server, which copies the subtree up, must show the same (issue 11).
 */
function addRenamedUntouched(set: LayerSet): void {
  set.lowers[2]!.push({ kind: 'dir', path: 'renkeep' }, { kind: 'dir', path: 'renkeep/tree' }, { kind: 'dir', path: 'renkeep/tree/sub' },
    { kind: 'file', path: 'renkeep/tree/sub/f', data: 'kept\n' }, { kind: 'file', path: 'renkeep/tree/g', data: 'kept too\n' });
}
const RENAMED_UNTOUCHED_OPS = ['rename renkeep/tree renkeep/moved', 'mtime renkeep/moved', 'mtime renkeep/moved/sub', 'ls renkeep/moved', 'cat renkeep/moved/sub/f'];

for (const format of ['oci', 'overlayfs'] as WhiteoutFormat[]) {
  test.serial(`differential: 300+ ops through libnfs vs kernel overlayfs (layers and upper in ${format} format)`, async (t) => {
    if (!requireEnv(t, { root: true, overlay: true, libnfsDev: true, server: true, xattr: true })) return;
    t.timeout(4 * 60_000);
    const base = makeTemp(`diff-${format}`);
    const server = new TestServer({ lowers: [], whiteout: format });
    try {
      const set = standardLayers();
      addRenamedUntouched(set);
      if (format === 'overlayfs') addMarkerNamedFiles(set);
      const srvLayers = renderLayers(set, `${base}/srv`, format, true);
      const oraLayers = renderLayers(set, `${base}/ora`, 'overlayfs', true);
      const before = srvLayers.lowers.map(layerFingerprint);
      const [ops, opsPosix, walk] = await Promise.all([compileDriver('ops'), compileDriver('ops', { posix: true }), compileDriver('walk')]);
      const script = `${[...differentialScript(), ...RENAMED_UNTOUCHED_OPS, ...(format === 'overlayfs' ? MARKER_NAMED_OPS : [])].join('\n')}\n`;
      writeFileSync(`${base}/script.txt`, script);
      t.true(script.split('\n').filter((l) => l && !l.startsWith('#')).length >= 200);

      Object.assign(server.args, { lowers: srvLayers.lowers, upper: srvLayers.upper, workdir: srvLayers.workdir });
      await server.start();
      const nfsOut = await runOk(ops, [server.url()], { input: script, timeoutMs: 120_000 });
      const nfsTree = parseTree(await runOk(walk, [server.url()], { timeoutMs: 60_000 }));
      await server.stop();

      const m = mountOverlay(oraLayers, `${base}/mnt`);
      t.log(`overlayfs options: ${m.options.replace(/\/tmp\/[^,:]*\//g, '…/')}`);
      let ovlOut: string;
      let ovlTree;
      try {
        ovlOut = await runOk(opsPosix, [m.mnt], { input: script, timeoutMs: 60_000 });
        ovlTree = walkLocal(m.mnt);
      } finally {
        m.unmount();
      }
      writeFileSync(`${base}/server.out`, nfsOut);
      writeFileSync(`${base}/overlayfs.out`, ovlOut);

      // Each upper, its renamed directories recorded as redirects, stacked as a lower under the
      // same lowers: a read-only union through libnfs against the kernel's mount of that stack.
      const upperBefore = layerFingerprint(srvLayers.upper!);
      const stacked = new TestServer({ lowers: [srvLayers.upper!, ...srvLayers.lowers], whiteout: format, state: `${base}/stacked-state` });
      let stackedTree;
      try {
        await stacked.start();
        stackedTree = parseTree(await runOk(walk, [stacked.url()], { timeoutMs: 60_000 }));
      } finally {
        await stacked.stop('SIGKILL');
      }
      mkdirSync(`${base}/mnt2`);
      execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${[oraLayers.upper!, ...oraLayers.lowers].join(':')},redirect_dir=follow`, `${base}/mnt2`]);
      let kernelStacked;
      try {
        kernelStacked = walkLocal(`${base}/mnt2`);
      } finally {
        execFileSync('umount', [`${base}/mnt2`]);
      }

      const opDiffs = compareResults(nfsOut, ovlOut);
      const fields = ['type', 'mode', 'uid', 'gid', 'nlink', 'size', 'extra'] as const;
      const treeDiffs = diffTrees(ovlTree, nfsTree, [...fields]);
      const stackedDiffs = diffTrees(kernelStacked, stackedTree, [...fields]);
      const after = srvLayers.lowers.map(layerFingerprint);

      const problems = [
        ...opDiffs.slice(0, 40).map((d) => `outcome ${d}`),
        ...treeDiffs.slice(0, 60).map((d) => `final tree: ${d}`),
        ...stackedDiffs.slice(0, 60).map((d) => `upper stacked as a lower: ${d}`),
        ...before.filter((b, i) => after[i] !== b).map((_, i) => `lower layer l${i + 1} changed`),
        ...(layerFingerprint(srvLayers.upper!) === upperBefore ? [] : ['the upper, served as a lower, changed']),
      ];
      t.log(`${opDiffs.length} operation outcome differences, ${treeDiffs.length} final tree differences, ${stackedDiffs.length} stacked (outputs in ${base} with UNFS_KEEP_TEMP=1)`);
      t.deepEqual(problems, [], `server vs kernel overlayfs:\n${problems.join('\n')}`);
    } catch (e) {
      t.log(`server output:\n${server.output()}`);
      throw e;
    } finally {
      await server.stop('SIGKILL');
      if (process.env.UNFS_KEEP_TEMP) t.log(`kept ${base}`);
      else cleanupTemp(base);
    }
  });
}

test.serial('OCI format: names that would be whiteout markers (.wh.*) are refused, and the lowers stay untouched', async (t) => {
  if (!requireEnv(t, { root: true, libnfsDev: true, server: true })) return;
  t.timeout(2 * 60_000);
  const base = makeTemp('diff-markers');
  const server = new TestServer({ lowers: [] });
  try {
    const layers = renderLayers(standardLayers(), `${base}/srv`, 'oci', true);
    const before = layers.lowers.map(layerFingerprint);
    Object.assign(server.args, { lowers: layers.lowers, upper: layers.upper, workdir: layers.workdir });
    const ops = await compileDriver('ops');
    await server.start();
    // Each of these would create or remove an OCI marker if passed through to the upper layer.
    const script = ['create .wh.foo 0644', 'create a/.wh.f1 0644', 'mkdir .wh..wh..opq 0755', 'create a/.wh..wh..opq 0644',
      'symlink x .wh.top.txt', 'mkfifo .wh.pipe 0644', 'rename n-none .wh.x', 'create okfile 0644', 'rename okfile .wh.okfile',
      'link okfile .wh.link', 'ls .', 'ls a', 'cat a/f1', 'cat top.txt'];
    const out = await runOk(ops, [server.url()], { input: `${script.join('\n')}\n`, timeoutMs: 30_000 });
    const lines = out.trimEnd().split('\n');
    const problems: string[] = [];
    for (const l of lines) {
      const [, op = '', res = ''] = l.split('\t');
      if (/\.wh\./.test(op) && res === 'OK') problems.push(`accepted: ${op}`);
      if (/^ls /.test(op) && /\.wh\./.test(l)) problems.push(`listing shows a marker: ${l}`);
      if (/^cat /.test(op) && res !== 'OK') problems.push(`lower content lost: ${l}`);
    }
    await server.stop();
    const after = layers.lowers.map(layerFingerprint);
    if (after.join() !== before.join()) problems.push('a lower layer changed');
    t.deepEqual(problems, [], `${problems.join('\n')}\n--- driver output ---\n${out}`);
  } catch (e) {
    t.log(`server output:\n${server.output()}`);
    throw e;
  } finally {
    await server.stop('SIGKILL');
    cleanupTemp(base);
  }
});
