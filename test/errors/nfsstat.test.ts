import test from 'ava';
import { FsError } from '../../src/errors/fs-error.js';
import { ERRNO_TO_NFSSTAT3, toNfsstat3 } from '../../src/errors/nfsstat.js';
import * as c from '../../src/nfs3/constants.js';

const expected: [string, number][] = [
  ['ENOENT', c.NFS3ERR_NOENT], ['EACCES', c.NFS3ERR_ACCES], ['EPERM', c.NFS3ERR_PERM],
  ['EEXIST', c.NFS3ERR_EXIST], ['EXDEV', c.NFS3ERR_XDEV], ['ENOTDIR', c.NFS3ERR_NOTDIR],
  ['EISDIR', c.NFS3ERR_ISDIR], ['EINVAL', c.NFS3ERR_INVAL], ['EFBIG', c.NFS3ERR_FBIG],
  ['ENOSPC', c.NFS3ERR_NOSPC], ['EDQUOT', c.NFS3ERR_DQUOT], ['EROFS', c.NFS3ERR_ROFS],
  ['EMLINK', c.NFS3ERR_MLINK], ['ENAMETOOLONG', c.NFS3ERR_NAMETOOLONG],
  ['ENOTEMPTY', c.NFS3ERR_NOTEMPTY], ['ESTALE', c.NFS3ERR_STALE],
  ['EBADHANDLE', c.NFS3ERR_BADHANDLE], ['ENOTSUP', c.NFS3ERR_NOTSUPP],
  ['EOPNOTSUPP', c.NFS3ERR_NOTSUPP], ['EAGAIN', c.NFS3ERR_JUKEBOX], ['ENOMEM', c.NFS3ERR_JUKEBOX],
  ['EMFILE', c.NFS3ERR_JUKEBOX], ['EIO', c.NFS3ERR_IO],
];

for (const [code, stat] of expected) {
  test(`${code} -> ${stat}`, (t) => {
    t.is(toNfsstat3(new FsError(code)), stat);
    t.is(ERRNO_TO_NFSSTAT3.get(code), stat);
  });
}

test('node:fs errors map by their code', (t) => {
  const err = Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT', errno: -2 });
  t.is(toNfsstat3(err), c.NFS3ERR_NOENT);
});

test('an unexpected errno is NFS3ERR_IO', (t) => {
  t.is(toNfsstat3(new FsError('ECONNRESET')), c.NFS3ERR_IO);
  t.is(toNfsstat3(new FsError('ECONNRESET')), c.NFS3ERR_IO);
});

test('a non-errno exception is NFS3ERR_SERVERFAULT', (t) => {
  t.is(toNfsstat3(new TypeError('x is undefined')), c.NFS3ERR_SERVERFAULT);
  t.is(toNfsstat3('a string'), c.NFS3ERR_SERVERFAULT);
  t.is(toNfsstat3({ code: 'not-an-errno' }), c.NFS3ERR_SERVERFAULT);
});

test('nfsstat3 values are RFC 1813 numbers', (t) => {
  t.is(c.NFS3ERR_BADHANDLE, 10001);
  t.is(c.NFS3ERR_JUKEBOX, 10008);
  t.is(c.NFS3ERR_STALE, 70);
  t.is(c.NFS3ERR_NAMETOOLONG, 63);
});
