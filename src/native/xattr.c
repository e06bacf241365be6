/*
 * Extended attributes of a path, never following a symlink (src/vfs/xattr.ts): Node has no
 * xattr API, and the union reads overlayfs's trusted.overlay.* marks of the directories it
 * looks up instead of walking every layer at start.
 *
 *   lget(path: Buffer, name: string): Buffer | null
 *     lgetxattr(2). null when the attribute is absent (ENODATA) or the file system has none
 *     (ENOTSUP); any other failure throws an Error whose code is the errno's name.
 *
 * Values are read into a 256-byte buffer: overlayfs's marks are a byte or a few; a longer
 * value (ERANGE) is read again at its size.
 */
#include <errno.h>
#include <node_api.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

static napi_value fail(napi_env env, int err, const char *what) {
  const char *code = err == EACCES ? "EACCES" : err == EPERM ? "EPERM" : err == ENOENT ? "ENOENT"
    : err == ENOTDIR ? "ENOTDIR" : err == ENAMETOOLONG ? "ENAMETOOLONG" : err == ELOOP ? "ELOOP"
    : err == ENOMEM ? "ENOMEM" : err == EIO ? "EIO" : err == EINVAL ? "EINVAL" : "EIO";
  napi_throw_error(env, code, what);
  return NULL;
}

static napi_value lget(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  bool isbuf = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_is_buffer(env, argv[0], &isbuf) != napi_ok || !isbuf) {
    napi_throw_type_error(env, NULL, "lget(path: Buffer, name: string)");
    return NULL;
  }
  void *pdata;
  size_t plen;
  napi_get_buffer_info(env, argv[0], &pdata, &plen);
  char name[256];
  size_t nlen;
  if (napi_get_value_string_utf8(env, argv[1], name, sizeof name, &nlen) != napi_ok || nlen >= sizeof name - 1) {
    napi_throw_type_error(env, NULL, "lget: bad attribute name");
    return NULL;
  }
  char *path = malloc(plen + 1);
  if (path == NULL) return fail(env, ENOMEM, "lgetxattr");
  memcpy(path, pdata, plen);
  path[plen] = 0;
  char small[256];
  char *val = small;
  ssize_t n = lgetxattr(path, name, val, sizeof small);
  if (n < 0 && errno == ERANGE) {
    ssize_t size = lgetxattr(path, name, NULL, 0);
    val = size > 0 ? malloc((size_t)size) : NULL;
    n = val == NULL ? -1 : lgetxattr(path, name, val, (size_t)size);
    if (val == NULL) errno = ENOMEM;
  }
  int err = errno;
  free(path);
  napi_value out;
  if (n < 0) {
    if (val != small) free(val);
    if (err == ENODATA || err == ENOTSUP) {
      napi_get_null(env, &out);
      return out;
    }
    return fail(env, err, "lgetxattr");
  }
  napi_create_buffer_copy(env, (size_t)n, val, NULL, &out);
  if (val != small) free(val);
  return out;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "lget", NAPI_AUTO_LENGTH, lget, NULL, &fn);
  napi_set_named_property(env, exports, "lget", fn);
  return exports;
}
