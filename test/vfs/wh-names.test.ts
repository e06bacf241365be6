/**
 * Issue 11: names starting with `.wh.` follow each layer's format, as kernel overlayfs reads an
 * overlayfs layer: in an overlayfs-format layer they are names like any other (listed, looked
 * up, created, removed with a char 0/0 whiteout); in an OCI-format layer they are whiteout
 * markers, invisible, and an OCI-format upper refuses to create them. An image's layers are
 * OCI whatever the upper's format (lowerFormats).
 */
import test from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openUnion } from '../../src/vfs/index.js';
import { canOverlayFormat, makeLayers, rootCred, treeDigest, type Entry } from '../helpers/layers.js';
import { cat, ls, walk } from '../helpers/union-paths.js';

const b = (s: string): Buffer => Buffer.from(s);

// the top lower holds files named like OCI markers; the one below holds what they would hide
const top: Entry[] = [['d/.wh.x', 'file', 'a file named .wh.x'], ['d/.wh..wh..opq', 'file', 'not an opaque mark'], ['.wh.top', 'file', 'top']];
const below: Entry[] = [['d/x', 'file', 'x below'], ['d/y', 'file', 'y below']];

test('overlayfs format: .wh.* names are files like any other, made, read, renamed and removed', async (t) => {
  if (!canOverlayFormat()) { t.log('SKIPPED: needs root for overlayfs-format layers'); t.pass(); return; }
  const L = makeLayers('overlayfs', [top, below]);
  const before = L.lowers.map(treeDigest);
  try {
    const u = await openUnion({ lowers: L.lowers, upper: L.upper, workdir: L.workdir, whiteoutFormat: 'overlayfs' });
    t.deepEqual(ls(u, 'd'), ['.wh..wh..opq', '.wh.x', 'x', 'y'], 'nothing hidden, nothing opaque');
    t.is(await cat(u, 'd/.wh.x'), 'a file named .wh.x');
    t.is(await cat(u, 'd/x'), 'x below');
    const made = await u.create(walk(u, 'd'), b('.wh.y'), { mode: 'guarded', attr: { mode: 0o644 } }, rootCred);
    t.is(made, walk(u, 'd/.wh.y'));
    t.true(fs.lstatSync(path.join(L.upper, 'd/.wh.y')).isFile(), 'a plain file in the upper');
    t.is(await cat(u, 'd/y'), 'y below', 'd/.wh.y hides nothing');
    // made over y's name, .wh.y stays: it is no marker here
    await u.remove(walk(u, 'd'), b('y'), rootCred);
    await u.create(walk(u, 'd'), b('y'), { mode: 'guarded', attr: { mode: 0o644 } }, rootCred);
    t.true(fs.existsSync(path.join(L.upper, 'd/.wh.y')));
    await u.rename(walk(u, 'd'), b('.wh.x'), walk(u, 'd'), b('.wh.moved'), rootCred);
    await u.remove(walk(u, ''), b('.wh.top'), rootCred);
    t.deepEqual(ls(u, 'd'), ['.wh..wh..opq', '.wh.moved', '.wh.y', 'x', 'y']);
    t.deepEqual(ls(u, '').filter((n) => n.startsWith('.wh.')), [], '.wh.top removed');
    t.true(fs.lstatSync(path.join(L.upper, '.wh.top')).isCharacterDevice(), 'its whiteout is a 0/0 device');
    t.throws(() => walk(u, '.wh.top'), { code: 'ENOENT' });
    await u.close();
    t.deepEqual(L.lowers.map(treeDigest), before, 'lower layers unchanged');
  } finally {
    L.cleanup();
  }
});

test('OCI format: .wh.* names are markers, invisible, and cannot be made', async (t) => {
  const L = makeLayers('oci', [top, below]);
  try {
    const u = await openUnion({ lowers: L.lowers, upper: L.upper, workdir: L.workdir, whiteoutFormat: 'oci' });
    t.deepEqual(ls(u, 'd'), [], 'd/.wh.x hides x, d/.wh..wh..opq makes d opaque');
    t.deepEqual(ls(u, ''), ['d']);
    t.throws(() => walk(u, 'd/.wh.x'), { code: 'ENOENT' });
    await t.throwsAsync(u.create(walk(u, 'd'), b('.wh.y'), { mode: 'guarded', attr: { mode: 0o644 } }, rootCred), { code: 'EPERM', message: /OCI-format upper/ });
    await u.close();
  } finally {
    L.cleanup();
  }
});

test('an image\'s layers (lowerFormats oci) keep their markers under an overlayfs-format upper', async (t) => {
  if (!canOverlayFormat()) { t.log('SKIPPED: needs root for overlayfs-format layers'); t.pass(); return; }
  const L = makeLayers('oci', [top, below]);
  try {
    const u = await openUnion({ lowers: L.lowers, upper: L.upper, workdir: L.workdir, whiteoutFormat: 'overlayfs', lowerFormats: ['oci', 'oci'] });
    t.deepEqual(ls(u, 'd'), []);
    await u.create(walk(u, 'd'), b('.wh.new'), { mode: 'guarded', attr: { mode: 0o644 } }, rootCred);
    t.deepEqual(ls(u, 'd'), ['.wh.new'], 'the upper, overlayfs-format, holds it as a file');
    await u.close();
  } finally {
    L.cleanup();
  }
});

test('OCI format: a lower name of 252-255 bytes cannot be removed (its .wh. whiteout would pass NAME_MAX), and stays', async (t) => {
  const long = 'n'.repeat(253);
  const L = makeLayers('oci', [[[long, 'file', 'long']]]);
  try {
    const u = await openUnion({ lowers: L.lowers, upper: L.upper, workdir: L.workdir, whiteoutFormat: 'oci' });
    await t.throwsAsync(u.remove(u.root, b(long), rootCred), { code: 'ENAMETOOLONG' });
    t.is(await cat(u, long), 'long');
    t.deepEqual(ls(u, ''), [long]);
    await u.close();
  } finally {
    L.cleanup();
  }
});
