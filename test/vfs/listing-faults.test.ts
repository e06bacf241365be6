/**
 * A layer that cannot be read: a listing is whole or an error, never short, and never cached
 * short (issue 12). Faults are injected into opendir(3) in this process: fs.opendirSync is
 * replaced for the paths of one layer, and syncBuiltinESMExports() makes the VFS's
 * `import * as fs` see the replacement.
 */
import test from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { openUnion } from '../../src/vfs/index.js';
import type { UnionFs } from '../../src/vfs/types.js';
import { canOverlayFormat, makeLayers, rootCred, treeDigest, type Entry, type Format } from '../helpers/layers.js';

const require = createRequire(import.meta.url);
const cjsFs = require('node:fs') as typeof fs;
const realOpendir = cjsFs.opendirSync;
const b = (s: string): Buffer => Buffer.from(s);

/** opendir of any path under `root` fails with `code` until the returned function is called. */
function failOpendir(root: string, code: string): () => void {
  cjsFs.opendirSync = ((p: fs.PathLike, o?: fs.OpenDirOptions) => {
    // the union opens a layer's directories through /proc/self/fd (vfs/beneath.ts)
    if (cjsFs.realpathSync(p as Buffer | string).startsWith(root)) {
      throw Object.assign(new Error(`${code}: injected, opendir '${String(p)}'`), { code });
    }
    return realOpendir(p, o);
  }) as typeof fs.opendirSync;
  syncBuiltinESMExports();
  return () => {
    cjsFs.opendirSync = realOpendir;
    syncBuiltinESMExports();
  };
}

function names(u: UnionFs, dir: number): string[] {
  return u.readdir(dir, 0n, 1000, false, rootCred).entries.map((e) => e.name.toString()).filter((n) => n !== '.' && n !== '..').sort();
}

const lower: Entry[] = [['d/', 'dir'], ['d/one', 'file', '1'], ['d/two', 'file', '2'], ['d/three', 'file', '3'], ['keep', 'file', 'k']];
// The upper already holds a copy of d with a whiteout: d is merged, its names come from the lower.
const upper: Entry[] = [['d/', 'dir'], ['d/gone', 'whiteout']];

for (const format of ['oci', 'overlayfs'] as Format[]) {
  for (const code of ['EMFILE', 'EIO']) {
    test.serial(`${format}: with the lower's opendir failing (${code}), RMDIR and READDIR fail and delete nothing, LOOKUP still finds; after the fault all is right`, async (t) => {
      if (format === 'overlayfs' && !canOverlayFormat()) {
        if (process.env['CI'] === 'true') t.fail('overlayfs-format layers need root (mknod, trusted xattrs)');
        else t.log('SKIPPED: overlayfs-format layers need root (mknod, trusted xattrs)');
        return;
      }
      const L = makeLayers(format, [lower], upper);
      t.teardown(() => L.cleanup());
      const before = [treeDigest(L.lowers[0]!), treeDigest(L.upper)];
      const u = await openUnion({ lowers: L.lowers, upper: L.upper, workdir: L.workdir, whiteoutFormat: format });
      t.teardown(() => u.close());
      const d = u.lookup(u.root, b('d'), rootCred);
      const restore = failOpendir(L.lowers[0]!, code);
      try {
        await t.throwsAsync(u.rmdir(u.root, b('d'), rootCred), { code }, 'RMDIR of a directory whose listing cannot be read');
        t.throws(() => u.readdir(d, 0n, 100, false, rootCred), { code });
        // lookups, which would list the directory after repeated walks, walk the layers instead
        for (let i = 0; i < 10; i++) t.throws(() => u.lookup(d, b(`absent-${i}`), rootCred), { code: 'ENOENT' });
        t.truthy(u.lookup(d, b('two'), rootCred), 'a name of the unlistable layer is still found');
      } finally {
        restore();
      }
      t.deepEqual([treeDigest(L.lowers[0]!), treeDigest(L.upper)], before, 'nothing was deleted, no whiteout written');
      t.deepEqual(names(u, d), ['one', 'three', 'two'], 'the next READDIR reads the layers again: no short listing was cached');
      t.truthy(u.lookup(d, b('two'), rootCred));
      await t.throwsAsync(u.rmdir(u.root, b('d'), rootCred), { code: 'ENOTEMPTY' });
      for (const n of ['one', 'two', 'three']) await u.remove(d, b(n), rootCred);
      await u.rmdir(u.root, b('d'), rootCred);
      t.deepEqual(names(u, u.root), ['keep']);
      // (in the overlayfs format, upper/d is now the whiteout device hiding the lower's d)
      t.false(fs.lstatSync(path.join(L.upper, 'd'), { throwIfNoEntry: false })?.isDirectory() ?? false, 'the upper copy went with rmdir(2), its whiteouts first');
    });
  }
}

test.serial('RMDIR never deletes what the listing did not show: an entry that is no marker stops it', async (t) => {
  const L = makeLayers('oci', [[['d/', 'dir']]], [['d/', 'dir']]);
  t.teardown(() => L.cleanup());
  const u = await openUnion({ lowers: L.lowers, upper: L.upper, workdir: L.workdir, whiteoutFormat: 'oci' });
  t.teardown(() => u.close());
  const d = u.lookup(u.root, b('d'), rootCred);
  t.deepEqual(names(u, d), []);
  // Someone else writes into the upper behind the server's back (the cached listing is now wrong).
  fs.writeFileSync(path.join(L.upper, 'd', 'intruder'), 'x');
  await t.throwsAsync(u.rmdir(u.root, b('d'), rootCred), { code: 'ENOTEMPTY' });
  t.true(fs.existsSync(path.join(L.upper, 'd', 'intruder')), 'not deleted');
});
