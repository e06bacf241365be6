/*
 * Linux calls Node's fs lacks, for the union (src/vfs/syscalls.ts): extended attributes that
 * never follow a symlink, mknod of every file type, file times to the nanosecond (fs.utimes
 * takes seconds as a double, which rounds them), directories opened beneath a layer's root
 * and names looked up in them (beneath.ts), syncs and data copies by fd. The calls that return
 * a promise run on the libuv thread pool (they can take long: fsync, copy); the others are one
 * system call on a local file system each, like the fs calls the union makes on the event loop.
 *
 *   lget(path: Buffer, name: string): Buffer | null     lgetxattr(2); null when the attribute
 *                                                        is absent (ENODATA) or unsupported
 *   llist(path: Buffer): Buffer                          llistxattr(2): the names, each ended
 *                                                        by NUL (empty: none, or unsupported)
 *   lset(path: Buffer, name: string, value: Buffer)      lsetxattr(2)
 *   mknod(path: Buffer, mode: number, major: number, minor: number)   mknod(2): FIFO,
 *                                                        socket, character or block device
 *   lstatAt(dirfd, name: string, out: BigInt64Array): boolean
 *                                                        fstatat(2) of name (a binary string;
 *                                                        '' for dirfd itself) in dirfd, not
 *                                                        following a symlink: its dev, ino,
 *                                                        mode, nlink, uid, gid, rdev, size,
 *                                                        blocks and a/m/ctime in ns into out;
 *                                                        false when absent (ENOENT, ENOTDIR)
 *   lchmod(path: Buffer, mode: number)                   fchmodat(2) without following a
 *                                                        symlink (EOPNOTSUPP on one)
 *   rename2(from: Buffer, to: Buffer, flags: number)     renameat2(2): RENAME_EXCHANGE (2)
 *                                                        swaps two names, RENAME_WHITEOUT (4)
 *                                                        leaves a whiteout at from
 *   lutimens(path: Buffer, aSec, aNsec, mSec, mNsec)     utimensat(2) without following a
 *                                                        symlink, to the nanosecond; a nsec of
 *                                                        -1 leaves that time (UTIME_OMIT), -2
 *                                                        sets it to now (UTIME_NOW)
 *   lstatAhead(paths: Buffer[]): Promise<void>          lstat(2) of each path, one after the
 *                                                        other on the libuv thread pool, the
 *                                                        results dropped: brings the inodes
 *                                                        into the kernel's caches for the
 *                                                        synchronous calls that follow (one
 *                                                        pool job, where fs.promises.lstat
 *                                                        costs the event loop one per path)
 *   fsyncFds(fds: number[]): Promise<(string|null)[]>  fsync(2) and close(2) of each fd, one
 *                                                        pool job; per fd null, or the errno's
 *                                                        name of the fsync that failed
 *   syncfsFds(fds: number[]): Promise<(string|null)[]> syncfs(2) and close(2) of each fd:
 *                                                        the whole file system each is on
 *   openRoot(path: Buffer): number                       open(O_PATH|O_DIRECTORY) of a layer's
 *                                                        root, following what the admin named
 *   openBeneath(dirfd: number, rel: Buffer): number      openat2(2) of the directory rel below
 *                                                        dirfd, O_PATH, RESOLVE_BENEATH |
 *                                                        RESOLVE_NO_SYMLINKS: no symlink is
 *                                                        followed and nothing outside dirfd is
 *                                                        reached (ELOOP, EXDEV); kernels before
 *                                                        5.6 walk it a component at a time with
 *                                                        openat(O_NOFOLLOW) instead
 *   copyData(in: number, out: number): Promise<number>   in's data into the empty file out, on
 *                                                        the pool: a reflink (FICLONE) where the
 *                                                        file system shares blocks, else
 *                                                        copy_file_range(2) 16 MiB at a time,
 *                                                        else read/write; then fsync(out). The
 *                                                        bytes copied
 *
 * A failure throws an Error whose code is the errno's name (ENOSPC, EPERM, ...), as node:fs
 * errors carry, so the union maps both the same way. Paths are bytes (any file name).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <node_api.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>

static napi_value fail(napi_env env, int err, const char *call) {
  const char *code = strerrorname_np(err);
  napi_throw_error(env, code != NULL ? code : "EIO", call);
  return NULL;
}

/* argv[i] as a NUL-terminated copy of a Buffer's bytes (free it), or NULL after a TypeError. */
static char *path_arg(napi_env env, napi_value v) {
  bool isbuf = false;
  void *data;
  size_t len;
  if (napi_is_buffer(env, v, &isbuf) != napi_ok || !isbuf || napi_get_buffer_info(env, v, &data, &len) != napi_ok ||
      memchr(data, 0, len) != NULL) {
    napi_throw_type_error(env, NULL, "path: a Buffer without NUL bytes");
    return NULL;
  }
  char *p = malloc(len + 1);
  if (p == NULL) {
    fail(env, ENOMEM, "malloc");
    return NULL;
  }
  memcpy(p, data, len);
  p[len] = 0;
  return p;
}

static bool name_arg(napi_env env, napi_value v, char name[256]) {
  size_t n;
  if (napi_get_value_string_utf8(env, v, name, 256, &n) != napi_ok || n >= 255) {
    napi_throw_type_error(env, NULL, "name: a string of fewer than 255 bytes");
    return false;
  }
  return true;
}

static bool args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, NULL, "missing arguments");
    return false;
  }
  return true;
}

static napi_value lget(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char name[256];
  if (!args(env, info, 2, argv) || !name_arg(env, argv[1], name)) return NULL;
  char *path = path_arg(env, argv[0]);
  if (path == NULL) return NULL;
  /* overlayfs's marks are a byte or a few; a longer value (ERANGE) is read again at its size */
  char small[256];
  char *val = small;
  ssize_t n = lgetxattr(path, name, val, sizeof small);
  if (n < 0 && errno == ERANGE) {
    ssize_t size = lgetxattr(path, name, NULL, 0);
    val = size > 0 ? malloc((size_t)size) : NULL;
    n = val == NULL ? -1 : lgetxattr(path, name, val, (size_t)size);
    if (val == NULL) errno = size < 0 ? errno : ENOMEM;
  }
  int err = errno;
  free(path);
  napi_value out = NULL;
  if (n >= 0) napi_create_buffer_copy(env, (size_t)n, val, NULL, &out);
  else if (err == ENODATA || err == ENOTSUP) napi_get_null(env, &out);
  else fail(env, err, "lgetxattr");
  if (val != small) free(val);
  return out;
}

static napi_value llist(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!args(env, info, 1, argv)) return NULL;
  char *path = path_arg(env, argv[0]);
  if (path == NULL) return NULL;
  /* most files have no xattrs or a few short names: one call into a small buffer */
  char small[1024];
  char *names = small;
  ssize_t n = llistxattr(path, names, sizeof small);
  if (n < 0 && errno == ERANGE) {
    ssize_t size = llistxattr(path, NULL, 0);
    names = size > 0 ? malloc((size_t)size) : NULL;
    n = names == NULL ? -1 : llistxattr(path, names, (size_t)size);
    if (names == NULL) errno = size < 0 ? errno : ENOMEM;
  }
  int err = errno;
  free(path);
  napi_value out = NULL;
  if (n >= 0) napi_create_buffer_copy(env, (size_t)n, names, NULL, &out);
  else if (err == ENOTSUP) napi_create_buffer(env, 0, NULL, &out);
  else fail(env, err, "llistxattr");
  if (names != small) free(names);
  return out;
}

static napi_value lset(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  char name[256];
  bool isbuf = false;
  void *val;
  size_t len;
  if (!args(env, info, 3, argv) || !name_arg(env, argv[1], name)) return NULL;
  if (napi_is_buffer(env, argv[2], &isbuf) != napi_ok || !isbuf || napi_get_buffer_info(env, argv[2], &val, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "value: a Buffer");
    return NULL;
  }
  char *path = path_arg(env, argv[0]);
  if (path == NULL) return NULL;
  int r = lsetxattr(path, name, val, len, 0);
  int err = errno;
  free(path);
  return r == 0 ? NULL : fail(env, err, "lsetxattr");
}

static napi_value mknod_(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  uint32_t mode, major, minor;
  if (!args(env, info, 4, argv)) return NULL;
  if (napi_get_value_uint32(env, argv[1], &mode) != napi_ok || napi_get_value_uint32(env, argv[2], &major) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &minor) != napi_ok) {
    napi_throw_type_error(env, NULL, "mknod(path, mode, major, minor)");
    return NULL;
  }
  char *path = path_arg(env, argv[0]);
  if (path == NULL) return NULL;
  int r = mknod(path, (mode_t)mode, makedev(major, minor));
  int err = errno;
  free(path);
  return r == 0 ? NULL : fail(env, err, "mknod");
}

static napi_value lchmod_(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  uint32_t mode;
  if (!args(env, info, 2, argv)) return NULL;
  if (napi_get_value_uint32(env, argv[1], &mode) != napi_ok) {
    napi_throw_type_error(env, NULL, "lchmod(path, mode)");
    return NULL;
  }
  char *path = path_arg(env, argv[0]);
  if (path == NULL) return NULL;
  /* glibc does it on an O_PATH fd where the kernel lacks fchmodat2; a symlink: EOPNOTSUPP */
  int r = fchmodat(AT_FDCWD, path, (mode_t)mode, AT_SYMLINK_NOFOLLOW);
  int err = errno;
  free(path);
  return r == 0 ? NULL : fail(env, err, "fchmodat");
}

/* lstatAt's fields, in this order, as int64 (times in nanoseconds since the epoch). */
enum { ST_DEV, ST_INO, ST_MODE, ST_NLINK, ST_UID, ST_GID, ST_RDEV, ST_SIZE, ST_BLOCKS, ST_ATIME, ST_MTIME, ST_CTIME, ST_FIELDS };

static napi_value lstat_at(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t dirfd;
  char name[257]; /* NAME_MAX (255), a NUL, and one more to tell a longer name (truncated) */
  size_t n;
  napi_typedarray_type type;
  size_t len;
  void *data;
  if (!args(env, info, 3, argv)) return NULL;
  if (napi_get_value_int32(env, argv[0], &dirfd) != napi_ok ||
      napi_get_value_string_latin1(env, argv[1], name, sizeof name, &n) != napi_ok || n > 255 ||
      napi_get_typedarray_info(env, argv[2], &type, &len, &data, NULL, NULL) != napi_ok ||
      type != napi_bigint64_array || len < ST_FIELDS) {
    napi_throw_type_error(env, NULL, "lstatAt(dirfd, name: a binary string of at most 255 bytes, out: BigInt64Array(12))");
    return NULL;
  }
  struct stat st;
  napi_value out;
  if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW | (n == 0 ? AT_EMPTY_PATH : 0)) != 0) {
    if (errno != ENOENT && errno != ENOTDIR) return fail(env, errno, "fstatat");
    napi_get_boolean(env, false, &out);
    return out;
  }
  int64_t *f = data;
  f[ST_DEV] = (int64_t)st.st_dev;
  f[ST_INO] = (int64_t)st.st_ino;
  f[ST_MODE] = st.st_mode;
  f[ST_NLINK] = (int64_t)st.st_nlink;
  f[ST_UID] = st.st_uid;
  f[ST_GID] = st.st_gid;
  f[ST_RDEV] = (int64_t)st.st_rdev;
  f[ST_SIZE] = st.st_size;
  f[ST_BLOCKS] = st.st_blocks;
  f[ST_ATIME] = (int64_t)st.st_atim.tv_sec * 1000000000 + st.st_atim.tv_nsec;
  f[ST_MTIME] = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
  f[ST_CTIME] = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
  napi_get_boolean(env, true, &out);
  return out;
}

static bool timespec_arg(napi_env env, napi_value sec, napi_value nsec, struct timespec *ts) {
  int64_t s, ns;
  if (napi_get_value_int64(env, sec, &s) != napi_ok || napi_get_value_int64(env, nsec, &ns) != napi_ok ||
      ns < -2 || ns > 999999999) {
    napi_throw_type_error(env, NULL, "lutimens(path, aSec, aNsec, mSec, mNsec): nsec in -2..999999999");
    return false;
  }
  ts->tv_sec = (time_t)s;
  ts->tv_nsec = ns == -1 ? UTIME_OMIT : ns == -2 ? UTIME_NOW : (long)ns;
  return true;
}

static napi_value lutimens(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  struct timespec ts[2];
  if (!args(env, info, 5, argv) || !timespec_arg(env, argv[1], argv[2], &ts[0]) || !timespec_arg(env, argv[3], argv[4], &ts[1])) return NULL;
  char *path = path_arg(env, argv[0]);
  if (path == NULL) return NULL;
  int r = utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW);
  int err = errno;
  free(path);
  return r == 0 ? NULL : fail(env, err, "utimensat");
}

static napi_value rename2(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  uint32_t flags;
  if (!args(env, info, 3, argv)) return NULL;
  if (napi_get_value_uint32(env, argv[2], &flags) != napi_ok) {
    napi_throw_type_error(env, NULL, "rename2(from, to, flags)");
    return NULL;
  }
  char *from = path_arg(env, argv[0]);
  if (from == NULL) return NULL;
  char *to = path_arg(env, argv[1]);
  if (to == NULL) {
    free(from);
    return NULL;
  }
  int r = renameat2(AT_FDCWD, from, AT_FDCWD, to, flags);
  int err = errno;
  free(from);
  free(to);
  return r == 0 ? NULL : fail(env, err, "renameat2");
}

/* lstatAhead's pool job: the paths, one NUL-terminated after the other. */
struct paths_job {
  napi_async_work work;
  napi_deferred deferred;
  char *paths;
  uint32_t n;
};

static void paths_run(napi_env env, void *data) {
  (void)env;
  struct paths_job *a = data;
  const char *p = a->paths;
  for (uint32_t i = 0; i < a->n; i++) {
    struct stat st;
    (void)lstat(p, &st); /* a missing name is cached too (a negative dentry) */
    p += strlen(p) + 1;
  }
}

static void paths_free(struct paths_job *a) {
  free(a->paths);
  free(a);
}

static void paths_done(napi_env env, napi_status status, void *data) {
  (void)status;
  struct paths_job *a = data;
  napi_value result;
  napi_get_undefined(env, &result);
  napi_resolve_deferred(env, a->deferred, result);
  napi_delete_async_work(env, a->work);
  paths_free(a);
}

/* Queue work on the pool; the promise it settles, or NULL after throwing. */
static napi_value queue(napi_env env, const char *what, napi_async_work *work, napi_deferred *deferred,
                        napi_async_execute_callback run, napi_async_complete_callback done, void *data) {
  napi_value promise, name;
  if (napi_create_promise(env, deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, what, NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, run, done, data, work) != napi_ok ||
      napi_queue_async_work(env, *work) != napi_ok) {
    fail(env, EIO, "napi_queue_async_work");
    return NULL;
  }
  return promise;
}

static napi_value lstat_ahead(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  uint32_t n;
  if (!args(env, info, 1, argv)) return NULL;
  if (napi_get_array_length(env, argv[0], &n) != napi_ok) {
    napi_throw_type_error(env, NULL, "paths: an array of Buffers");
    return NULL;
  }
  size_t total = 0;
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    bool isbuf = false;
    void *data;
    size_t len;
    if (napi_get_element(env, argv[0], i, &v) != napi_ok || napi_is_buffer(env, v, &isbuf) != napi_ok || !isbuf ||
        napi_get_buffer_info(env, v, &data, &len) != napi_ok || memchr(data, 0, len) != NULL) {
      napi_throw_type_error(env, NULL, "paths: Buffers without NUL bytes");
      return NULL;
    }
    total += len + 1;
  }
  struct paths_job *a = calloc(1, sizeof *a);
  char *buf = malloc(total > 0 ? total : 1);
  if (a == NULL || buf == NULL) {
    free(a);
    free(buf);
    return fail(env, ENOMEM, "malloc");
  }
  char *p = buf;
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    void *data;
    size_t len;
    napi_get_element(env, argv[0], i, &v);
    napi_get_buffer_info(env, v, &data, &len);
    memcpy(p, data, len);
    p[len] = 0;
    p += len + 1;
  }
  a->paths = buf;
  a->n = n;
  napi_value promise = queue(env, "lstatAhead", &a->work, &a->deferred, paths_run, paths_done, a);
  if (promise == NULL) paths_free(a);
  return promise;
}

/* fsyncFds' and syncfsFds' pool job: each fd is synced, then closed whatever happened. */
struct fds_job {
  napi_async_work work;
  napi_deferred deferred;
  bool whole_fs; /* syncfs(2) rather than fsync(2) */
  int32_t *fds;
  int *errs; /* per fd, 0 or fsync's errno */
  uint32_t n;
};

static void fds_run(napi_env env, void *data) {
  (void)env;
  struct fds_job *a = data;
  for (uint32_t i = 0; i < a->n; i++) {
    a->errs[i] = (a->whole_fs ? syncfs(a->fds[i]) : fsync(a->fds[i])) == 0 ? 0 : errno;
    close(a->fds[i]);
  }
}

static void fds_free(struct fds_job *a) {
  free(a->fds);
  free(a->errs);
  free(a);
}

static void fds_done(napi_env env, napi_status status, void *data) {
  (void)status;
  struct fds_job *a = data;
  napi_value result;
  napi_create_array_with_length(env, a->n, &result);
  for (uint32_t i = 0; i < a->n; i++) {
    napi_value v;
    const char *code = a->errs[i] == 0 ? NULL : strerrorname_np(a->errs[i]);
    if (a->errs[i] == 0) napi_get_null(env, &v);
    else napi_create_string_utf8(env, code != NULL ? code : "EIO", NAPI_AUTO_LENGTH, &v);
    napi_set_element(env, result, i, v);
  }
  napi_resolve_deferred(env, a->deferred, result);
  napi_delete_async_work(env, a->work);
  fds_free(a);
}

static napi_value sync_fds(napi_env env, napi_callback_info info, bool whole_fs) {
  napi_value argv[1];
  uint32_t n;
  if (!args(env, info, 1, argv)) return NULL;
  if (napi_get_array_length(env, argv[0], &n) != napi_ok) {
    napi_throw_type_error(env, NULL, "fds: an array of numbers");
    return NULL;
  }
  struct fds_job *a = calloc(1, sizeof *a);
  int32_t *fds = calloc(n > 0 ? n : 1, sizeof *fds);
  int *errs = calloc(n > 0 ? n : 1, sizeof *errs);
  if (a == NULL || fds == NULL || errs == NULL) {
    free(a);
    free(fds);
    free(errs);
    return fail(env, ENOMEM, "malloc");
  }
  a->fds = fds;
  a->errs = errs;
  a->n = n;
  a->whole_fs = whole_fs;
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    if (napi_get_element(env, argv[0], i, &v) != napi_ok || napi_get_value_int32(env, v, &fds[i]) != napi_ok) {
      fds_free(a);
      napi_throw_type_error(env, NULL, "fds: an array of numbers");
      return NULL;
    }
  }
  napi_value promise = queue(env, whole_fs ? "syncfsFds" : "fsyncFds", &a->work, &a->deferred, fds_run, fds_done, a);
  if (promise == NULL) fds_free(a);
  return promise;
}

static napi_value fsync_fds(napi_env env, napi_callback_info info) {
  return sync_fds(env, info, false);
}

static napi_value syncfs_fds(napi_env env, napi_callback_info info) {
  return sync_fds(env, info, true);
}

static napi_value fd_result(napi_env env, int fd, int err, const char *call) {
  napi_value out;
  if (fd < 0) return fail(env, err, call);
  napi_create_int32(env, fd, &out);
  return out;
}

static napi_value open_root(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!args(env, info, 1, argv)) return NULL;
  char *path = path_arg(env, argv[0]);
  if (path == NULL) return NULL;
  int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  int err = errno;
  free(path);
  return fd_result(env, fd, err, "open");
}

/* Without openat2 (Linux < 5.6): one component at a time, none of them a symlink or "..". */
static int open_walk(int dirfd, char *rel) {
  int fd = dup(dirfd);
  for (char *save = NULL, *c = strtok_r(rel, "/", &save); fd >= 0 && c != NULL; c = strtok_r(NULL, "/", &save)) {
    if (strcmp(c, "..") == 0) {
      close(fd);
      errno = EXDEV;
      return -1;
    }
    int next = openat(fd, c, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int err = errno;
    close(fd);
    fd = next;
    errno = err;
  }
  return fd;
}

static napi_value open_beneath(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t dirfd;
  if (!args(env, info, 2, argv)) return NULL;
  if (napi_get_value_int32(env, argv[0], &dirfd) != napi_ok || dirfd < 0) {
    napi_throw_type_error(env, NULL, "openBeneath(dirfd, rel)");
    return NULL;
  }
  char *rel = path_arg(env, argv[1]);
  if (rel == NULL) return NULL;
  struct open_how how = {
    .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
    .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
  };
  int fd = (int)syscall(SYS_openat2, dirfd, rel[0] == 0 ? "." : rel, &how, sizeof how);
  if (fd < 0 && errno == ENOSYS) fd = open_walk(dirfd, rel);
  int err = errno;
  free(rel);
  return fd_result(env, fd, err, "openat2");
}

/* copyData's pool job. */
struct copy_job {
  napi_async_work work;
  napi_deferred deferred;
  int in, out;
  int err;
  int64_t copied;
};

#define COPY_CHUNK (16 << 20)

static int copy_rw(struct copy_job *a) {
  enum { SIZE = 1 << 20 };
  char *buf = malloc(SIZE);
  if (buf == NULL) return ENOMEM;
  int err = 0;
  for (;;) {
    ssize_t n = read(a->in, buf, SIZE);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      err = n < 0 ? errno : 0;
      break;
    }
    for (ssize_t off = 0; off < n && err == 0;) {
      ssize_t w = write(a->out, buf + off, (size_t)(n - off));
      if (w < 0 && errno != EINTR) err = errno;
      if (w > 0) {
        off += w;
        a->copied += w;
      }
    }
    if (err != 0) break;
  }
  free(buf);
  return err;
}

static void copy_run(napi_env env, void *data) {
  (void)env;
  struct copy_job *a = data;
  struct stat st;
  if (fstat(a->in, &st) != 0) {
    a->err = errno;
    return;
  }
  if (st.st_size > 0 && ioctl(a->out, FICLONE, a->in) == 0) {
    a->copied = st.st_size;
  } else {
    for (;;) {
      ssize_t n = copy_file_range(a->in, NULL, a->out, NULL, COPY_CHUNK, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && a->copied == 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)) {
        a->err = copy_rw(a);
        break;
      }
      if (n < 0) {
        a->err = errno;
        break;
      }
      if (n == 0) break;
      a->copied += n;
    }
  }
  if (a->err == 0 && fsync(a->out) != 0) a->err = errno;
}

static void copy_done(napi_env env, napi_status status, void *data) {
  (void)status;
  struct copy_job *a = data;
  napi_value v;
  if (a->err == 0) {
    napi_create_int64(env, a->copied, &v);
    napi_resolve_deferred(env, a->deferred, v);
  } else {
    const char *code = strerrorname_np(a->err);
    napi_value msg, c;
    napi_create_string_utf8(env, "copy_file_range", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &v);
    napi_create_string_utf8(env, code != NULL ? code : "EIO", NAPI_AUTO_LENGTH, &c);
    napi_set_named_property(env, v, "code", c);
    napi_reject_deferred(env, a->deferred, v);
  }
  napi_delete_async_work(env, a->work);
  free(a);
}

static napi_value copy_data(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t in, out;
  if (!args(env, info, 2, argv)) return NULL;
  if (napi_get_value_int32(env, argv[0], &in) != napi_ok || napi_get_value_int32(env, argv[1], &out) != napi_ok) {
    napi_throw_type_error(env, NULL, "copyData(in, out)");
    return NULL;
  }
  struct copy_job *a = calloc(1, sizeof *a);
  if (a == NULL) return fail(env, ENOMEM, "malloc");
  a->in = in;
  a->out = out;
  napi_value promise = queue(env, "copyData", &a->work, &a->deferred, copy_run, copy_done, a);
  if (promise == NULL) free(a);
  return promise;
}

NAPI_MODULE_INIT() {
  const struct { const char *name; napi_callback fn; } fns[] = {
    {"lget", lget}, {"llist", llist}, {"lset", lset}, {"mknod", mknod_}, {"lchmod", lchmod_}, {"lstatAt", lstat_at}, {"rename2", rename2}, {"lutimens", lutimens},
    {"lstatAhead", lstat_ahead}, {"fsyncFds", fsync_fds}, {"syncfsFds", syncfs_fds}, {"openRoot", open_root}, {"openBeneath", open_beneath},
    {"copyData", copy_data}};
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f);
    napi_set_named_property(env, exports, fns[i].name, f);
  }
  return exports;
}
