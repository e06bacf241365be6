import test from 'ava';
import { readTar, type TarEntry } from '../../src/image/tar.js';
import { ImageError } from '../../src/image/errors.js';
import { makeTar } from './tar-fixture.js';

async function read(tar: Buffer, chunk = 4096): Promise<{ entry: TarEntry; data: string }[]> {
  const pieces = (async function* () {
    for (let i = 0; i < tar.length; i += chunk) yield tar.subarray(i, i + chunk);
  })();
  const out: { entry: TarEntry; data: string }[] = [];
  for await (const { entry, body } of readTar(pieces)) {
    const parts: Buffer[] = [];
    for await (const p of body) parts.push(p);
    out.push({ entry, data: Buffer.concat(parts).toString() });
  }
  return out;
}

const LONG = `${'d'.repeat(90)}/${'e'.repeat(90)}/file`;

for (const format of ['pax', 'gnu'] as const) {
  test(`tar (${format}): names past 100 bytes, links, modes, owners and data come through, in any chunking`, async (t) => {
    const tar = makeTar([
      { name: 'dir', kind: 'dir', mode: 0o750 },
      { name: 'dir/a', data: 'alpha', mode: 0o4755, uid: 1000, gid: 100 },
      { name: LONG, data: 'deep' },
      { name: 'sym', kind: 'symlink', link: `../${'t'.repeat(120)}` },
      { name: 'hard', kind: 'hardlink', link: 'dir/a' },
      { name: 'fifo', kind: 'fifo' },
    ], format);
    for (const chunk of [1, 7, 512, 65536]) {
      const got = await read(tar, chunk);
      t.deepEqual(got.map((g) => [g.entry.path, g.entry.type, g.data]), [
        ['dir/', 'dir', ''], ['dir/a', 'file', 'alpha'], [LONG, 'file', 'deep'], ['sym', 'symlink', ''], ['hard', 'hardlink', ''], ['fifo', 'fifo', ''],
      ], `chunk ${chunk}`);
      const a = got[1]!.entry;
      t.deepEqual([a.mode, a.uid, a.gid, a.mtime], [0o4755, 1000, 100, 1700000000]);
      t.is(got[3]!.entry.linkname, `../${'t'.repeat(120)}`);
      t.is(got[4]!.entry.linkname, 'dir/a');
    }
  });
}

test('tar: pax xattrs and a body the reader skips', async (t) => {
  const tar = makeTar([
    { name: 'x', data: 'skipped body', pax: { 'SCHILY.xattr.user.test': 'value', 'SCHILY.xattr.security.capability': 'cap' } },
    { name: 'y', data: 'read' },
  ]);
  const pieces = (async function* () { yield tar; })();
  const seen: string[] = [];
  for await (const { entry, body } of readTar(pieces)) {
    if (entry.path === 'x') {
      t.deepEqual([...entry.xattrs].map(([k, v]) => [k, v.toString()]), [['user.test', 'value'], ['security.capability', 'cap']]);
      continue; // body not read: the reader must skip it
    }
    for await (const p of body) seen.push(p.toString());
  }
  t.deepEqual(seen, ['read']);
});

test('tar: a truncated archive, a corrupt header and an unsupported type are errors', async (t) => {
  const tar = makeTar([{ name: 'a', data: 'x'.repeat(2000) }, { name: 'b', data: 'y' }]);
  await t.throwsAsync(read(tar.subarray(0, 1024)), { instanceOf: ImageError, message: /truncated/ });
  await t.throwsAsync(read(tar.subarray(0, 1536 + 512)), { instanceOf: ImageError, message: /truncated/ });
  const bad = Buffer.from(tar);
  bad[0] = 'z'.charCodeAt(0);
  await t.throwsAsync(read(bad), { instanceOf: ImageError, message: /checksum/ });
  const sparse = Buffer.from(tar);
  sparse[156] = 'S'.charCodeAt(0);
  // Keep the checksum right so the type is what is refused.
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : sparse[i]!;
  sparse.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  await t.throwsAsync(read(sparse), { instanceOf: ImageError, message: /type 'S' is not supported/ });
});

test('tar: GNU base-256 numbers (an owner past the 7 octal digits of ustar)', async (t) => {
  const got = await read(makeTar([{ name: 'far', data: 'x', uid: 3_000_000, gid: 4_000_000 }], 'gnu'));
  t.deepEqual([got[0]!.entry.uid, got[0]!.entry.gid], [3_000_000, 4_000_000]);
});
