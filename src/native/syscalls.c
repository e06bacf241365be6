/*
 * Linux calls Node's fs lacks, for the union (src/vfs/syscalls.ts): extended attributes that
 * never follow a symlink, mknod of every file type, and file times to the nanosecond (fs.utimes
 * takes seconds as a double, which rounds them). All synchronous but lstatAhead: each is one
 * system call on a local file system, like the fs calls the union makes on the event loop.
 *
 *   lget(path: Buffer, name: string): Buffer | null     lgetxattr(2); null when the attribute
 *                                                        is absent (ENODATA) or unsupported
 *   llist(path: Buffer): Buffer                          llistxattr(2): the names, each ended
 *                                                        by NUL (empty: none, or unsupported)
 *   lset(path: Buffer, name: string, value: Buffer)      lsetxattr(2)
 *   mknod(path: Buffer, mode: number, major: number, minor: number)   mknod(2): FIFO,
 *                                                        socket, character or block device
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
 *   fsyncPaths(paths: Buffer[]): Promise<(string|null)[]>
 *                                                        open(O_RDONLY|O_NOFOLLOW|O_NONBLOCK),
 *                                                        fsync(2) and close of each path, one
 *                                                        pool job; per path null, or the
 *                                                        errno's name of the step that failed
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
#include <sys/stat.h>
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

/* A pool job over a list of paths: lstatAhead's or fsyncPaths'. */
struct paths_job {
  napi_async_work work;
  napi_deferred deferred;
  bool fsync;  /* fsyncPaths; else lstatAhead */
  char *paths; /* n NUL-terminated paths, one after the other */
  uint32_t n;
  int *errs;   /* fsyncPaths: per path, 0 or the errno */
};

static int fsync_path(const char *p) {
  int fd = open(p, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return errno;
  int err = fsync(fd) == 0 ? 0 : errno;
  close(fd);
  return err;
}

static void paths_run(napi_env env, void *data) {
  (void)env;
  struct paths_job *a = data;
  const char *p = a->paths;
  for (uint32_t i = 0; i < a->n; i++) {
    if (a->fsync) {
      a->errs[i] = fsync_path(p);
    } else {
      struct stat st;
      (void)lstat(p, &st); /* a missing name is cached too (a negative dentry) */
    }
    p += strlen(p) + 1;
  }
}

static void paths_free(struct paths_job *a) {
  free(a->paths);
  free(a->errs);
  free(a);
}

static void paths_done(napi_env env, napi_status status, void *data) {
  (void)status;
  struct paths_job *a = data;
  napi_value result;
  if (a->fsync) {
    napi_create_array_with_length(env, a->n, &result);
    for (uint32_t i = 0; i < a->n; i++) {
      napi_value v;
      const char *code = a->errs[i] == 0 ? NULL : strerrorname_np(a->errs[i]);
      if (a->errs[i] == 0) napi_get_null(env, &v);
      else napi_create_string_utf8(env, code != NULL ? code : "EIO", NAPI_AUTO_LENGTH, &v);
      napi_set_element(env, result, i, v);
    }
  } else {
    napi_get_undefined(env, &result);
  }
  napi_resolve_deferred(env, a->deferred, result);
  napi_delete_async_work(env, a->work);
  paths_free(a);
}

static napi_value paths_queue(napi_env env, napi_callback_info info, bool fsync_them) {
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
  int *errs = fsync_them ? calloc(n > 0 ? n : 1, sizeof *errs) : NULL;
  if (a == NULL || buf == NULL || (fsync_them && errs == NULL)) {
    free(a);
    free(buf);
    free(errs);
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
  a->fsync = fsync_them;
  a->errs = errs;
  napi_value promise, name;
  if (napi_create_promise(env, &a->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, fsync_them ? "fsyncPaths" : "lstatAhead", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, paths_run, paths_done, a, &a->work) != napi_ok ||
      napi_queue_async_work(env, a->work) != napi_ok) {
    paths_free(a);
    return fail(env, EIO, "napi_queue_async_work");
  }
  return promise;
}

static napi_value lstat_ahead(napi_env env, napi_callback_info info) {
  return paths_queue(env, info, false);
}

static napi_value fsync_paths(napi_env env, napi_callback_info info) {
  return paths_queue(env, info, true);
}

NAPI_MODULE_INIT() {
  const struct { const char *name; napi_callback fn; } fns[] = {
    {"lget", lget}, {"llist", llist}, {"lset", lset}, {"mknod", mknod_}, {"rename2", rename2}, {"lutimens", lutimens},
    {"lstatAhead", lstat_ahead}, {"fsyncPaths", fsync_paths}};
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f);
    napi_set_named_property(env, exports, fns[i].name, f);
  }
  return exports;
}
