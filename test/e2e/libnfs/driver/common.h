/*
 * Shared pieces of the libnfs test drivers: canonical name escaping (mirrored by
 * test/e2e/libnfs/tree.ts), a small SHA-256, the mount helper and a synchronous wrapper over
 * libnfs's raw rpc_nfs3_* calls. Everything here is test code: errors abort loudly.
 */
#ifndef UNFS_DRIVER_COMMON_H
#define UNFS_DRIVER_COMMON_H

#define _GNU_SOURCE
#pragma GCC diagnostic ignored "-Wunused-function"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <unistd.h>

#ifndef UNFS_POSIX_ONLY
#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-nfs.h>
#endif

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "FATAL: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(2);
}

/* Bytes outside 0x21..0x7e and the backslash are written as \xHH, so every name is one token. */
static void esc_write(FILE *f, const unsigned char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = s[i];
    if (c < 0x21 || c > 0x7e || c == '\\') fprintf(f, "\\x%02x", c);
    else fputc(c, f);
  }
}
static void esc_puts(FILE *f, const char *s) { esc_write(f, (const unsigned char *)s, strlen(s)); }

/* Inverse of esc_write, in place. */
static size_t unesc(char *s) {
  size_t o = 0;
  for (size_t i = 0; s[i];) {
    if (s[i] == '\\' && s[i + 1] == 'x' && s[i + 2] && s[i + 3]) {
      char h[3] = {s[i + 2], s[i + 3], 0};
      s[o++] = (char)strtol(h, NULL, 16);
      i += 4;
    } else s[o++] = s[i++];
  }
  s[o] = 0;
  return o;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
static size_t hex_decode(const char *hex, unsigned char *out, size_t max) {
  size_t n = 0;
  while (hex[0] && hex[1] && n < max) {
    int a = hexval(hex[0]), b = hexval(hex[1]);
    if (a < 0 || b < 0) break;
    out[n++] = (unsigned char)(a * 16 + b);
    hex += 2;
  }
  return n;
}
static void hex_write(FILE *f, const unsigned char *b, size_t n) {
  for (size_t i = 0; i < n; i++) fprintf(f, "%02x", b[i]);
}

/* ---- SHA-256 (FIPS 180-4), enough for content fingerprints ---- */
typedef struct { uint32_t h[8]; uint64_t len; unsigned char buf[64]; size_t n; } sha256_ctx;
static const uint32_t SHA_K[64] = {
  0x428a2f98,0x71374491,0xb5c0fbcf,0xe9b5dba5,0x3956c25b,0x59f111f1,0x923f82a4,0xab1c5ed5,
  0xd807aa98,0x12835b01,0x243185be,0x550c7dc3,0x72be5d74,0x80deb1fe,0x9bdc06a7,0xc19bf174,
  0xe49b69c1,0xefbe4786,0x0fc19dc6,0x240ca1cc,0x2de92c6f,0x4a7484aa,0x5cb0a9dc,0x76f988da,
  0x983e5152,0xa831c66d,0xb00327c8,0xbf597fc7,0xc6e00bf3,0xd5a79147,0x06ca6351,0x14292967,
  0x27b70a85,0x2e1b2138,0x4d2c6dfc,0x53380d13,0x650a7354,0x766a0abb,0x81c2c92e,0x92722c85,
  0xa2bfe8a1,0xa81a664b,0xc24b8b70,0xc76c51a3,0xd192e819,0xd6990624,0xf40e3585,0x106aa070,
  0x19a4c116,0x1e376c08,0x2748774c,0x34b0bcb5,0x391c0cb3,0x4ed8aa4a,0x5b9cca4f,0x682e6ff3,
  0x748f82ee,0x78a5636f,0x84c87814,0x8cc70208,0x90befffa,0xa4506ceb,0xbef9a3f7,0xc67178f2};
#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
static void sha256_block(sha256_ctx *c, const unsigned char *p) {
  uint32_t w[64], a, b, d, e, f, g, h, cc;
  for (int i = 0; i < 16; i++) w[i] = (uint32_t)p[4*i] << 24 | (uint32_t)p[4*i+1] << 16 | (uint32_t)p[4*i+2] << 8 | p[4*i+3];
  for (int i = 16; i < 64; i++) {
    uint32_t s0 = ROR(w[i-15], 7) ^ ROR(w[i-15], 18) ^ (w[i-15] >> 3);
    uint32_t s1 = ROR(w[i-2], 17) ^ ROR(w[i-2], 19) ^ (w[i-2] >> 10);
    w[i] = w[i-16] + s0 + w[i-7] + s1;
  }
  a = c->h[0]; b = c->h[1]; cc = c->h[2]; d = c->h[3]; e = c->h[4]; f = c->h[5]; g = c->h[6]; h = c->h[7];
  for (int i = 0; i < 64; i++) {
    uint32_t t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + SHA_K[i] + w[i];
    uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & cc) ^ (b & cc));
    h = g; g = f; f = e; e = d + t1; d = cc; cc = b; b = a; a = t1 + t2;
  }
  c->h[0] += a; c->h[1] += b; c->h[2] += cc; c->h[3] += d; c->h[4] += e; c->h[5] += f; c->h[6] += g; c->h[7] += h;
}
static void sha256_init(sha256_ctx *c) {
  static const uint32_t iv[8] = {0x6a09e667,0xbb67ae85,0x3c6ef372,0xa54ff53a,0x510e527f,0x9b05688c,0x1f83d9ab,0x5be0cd19};
  memcpy(c->h, iv, sizeof iv); c->len = 0; c->n = 0;
}
static void sha256_update(sha256_ctx *c, const void *data, size_t len) {
  const unsigned char *p = data;
  c->len += len;
  while (len) {
    size_t k = 64 - c->n; if (k > len) k = len;
    memcpy(c->buf + c->n, p, k); c->n += k; p += k; len -= k;
    if (c->n == 64) { sha256_block(c, c->buf); c->n = 0; }
  }
}
static void sha256_final(sha256_ctx *c, char out[65]) {
  uint64_t bits = c->len * 8;
  unsigned char pad = 0x80, z = 0, l[8];
  sha256_update(c, &pad, 1);
  while (c->n != 56) sha256_update(c, &z, 1);
  for (int i = 0; i < 8; i++) l[i] = (unsigned char)(bits >> (56 - 8 * i));
  sha256_update(c, l, 8);
  for (int i = 0; i < 8; i++) sprintf(out + 8 * i, "%08x", c->h[i]);
}

static char type_char(unsigned mode) {
  switch (mode & S_IFMT) {
    case S_IFREG: return 'f'; case S_IFDIR: return 'd'; case S_IFLNK: return 'l';
    case S_IFIFO: return 'p'; case S_IFSOCK: return 's'; case S_IFCHR: return 'c';
    case S_IFBLK: return 'b'; default: return '?';
  }
}

#ifndef UNFS_POSIX_ONLY
static struct nfs_context *nfs_connect_url(const char *url) {
  struct nfs_context *nfs = nfs_init_context();
  if (!nfs) die("nfs_init_context");
  struct nfs_url *u = nfs_parse_url_dir(nfs, url);
  if (!u) die("parse url %s: %s", url, nfs_get_error(nfs));
  nfs_set_dircache(nfs, 0);
  nfs_set_timeout(nfs, 30000);
  if (nfs_mount(nfs, u->server, u->path) != 0) die("mount %s: %s", url, nfs_get_error(nfs));
  nfs_destroy_url(u);
  return nfs;
}

/* Run one raw rpc_nfs3_* call synchronously; the callback copies what it needs. */
/* When set, an RPC-level failure is reported as status RAW_RPC_ERROR instead of aborting. */
static int raw_soft;
#define RAW_RPC_ERROR (-1000)
struct rawwait { int done; int rpc_status; void *user; void (*on_reply)(void *user, void *data); };
static void raw_cb(struct rpc_context *rpc, int status, void *data, void *priv) {
  (void)rpc;
  struct rawwait *w = priv;
  w->done = 1;
  w->rpc_status = status;
  if (status == RPC_STATUS_SUCCESS && w->on_reply) w->on_reply(w->user, data);
}
static void raw_wait(struct rpc_context *rpc, struct rawwait *w) {
  for (int spins = 0; !w->done; spins++) {
    struct pollfd p = {.fd = rpc_get_fd(rpc), .events = (short)rpc_which_events(rpc)};
    int r = poll(&p, 1, 100);
    if (r < 0 && errno != EINTR) die("poll: %s", strerror(errno));
    if (rpc_service(rpc, r > 0 ? p.revents : 0) < 0) die("rpc_service: %s", rpc_get_error(rpc));
    if (spins > 600) die("raw rpc timed out");
  }
  if (w->rpc_status != RPC_STATUS_SUCCESS && !raw_soft) die("raw rpc failed: status %d %s", w->rpc_status, rpc_get_error(rpc));
}

/* libnfs's handle of an open file (libnfs-private.h: struct nfs_fh { int len; char *val; }). */
struct drv_fh { int len; char *val; };

struct getattr_out { int status; uint64_t fileid; uint32_t type, mode, nlink; uint64_t size; };
static void getattr_reply(void *user, void *data) {
  struct getattr_out *o = user;
  GETATTR3res *r = data;
  o->status = r->status;
  if (r->status == NFS3_OK) {
    fattr3 *a = &r->GETATTR3res_u.resok.obj_attributes;
    o->fileid = a->fileid; o->type = a->type; o->mode = a->mode; o->nlink = a->nlink; o->size = a->size;
  }
}
static struct getattr_out raw_getattr(struct rpc_context *rpc, const unsigned char *fh, size_t len) {
  struct getattr_out o = {0};
  struct rawwait w = {0, 0, &o, getattr_reply};
  GETATTR3args a;
  a.object.data.data_len = (u_int)len;
  a.object.data.data_val = (char *)fh;
  if (rpc_nfs3_getattr_async(rpc, raw_cb, &a, &w) != 0) die("rpc_nfs3_getattr_async");
  raw_wait(rpc, &w);
  if (w.rpc_status != RPC_STATUS_SUCCESS) o.status = RAW_RPC_ERROR;
  return o;
}

struct lookup_out { int status; unsigned char fh[64]; size_t fhlen; int has_attr; uint64_t fileid; uint32_t type; };
static void lookup_reply(void *user, void *data) {
  struct lookup_out *o = user;
  LOOKUP3res *r = data;
  o->status = r->status;
  if (r->status == NFS3_OK) {
    nfs_fh3 *h = &r->LOOKUP3res_u.resok.object;
    o->fhlen = h->data.data_len > 64 ? 64 : h->data.data_len;
    memcpy(o->fh, h->data.data_val, o->fhlen);
    post_op_attr *pa = &r->LOOKUP3res_u.resok.obj_attributes;
    o->has_attr = pa->attributes_follow;
    if (pa->attributes_follow) { o->fileid = pa->post_op_attr_u.attributes.fileid; o->type = pa->post_op_attr_u.attributes.type; }
  }
}
static struct lookup_out raw_lookup(struct rpc_context *rpc, const unsigned char *dfh, size_t dlen, const char *name, size_t namelen) {
  struct lookup_out o = {0};
  struct rawwait w = {0, 0, &o, lookup_reply};
  LOOKUP3args a;
  char *nm = malloc(namelen + 1);
  memcpy(nm, name, namelen); nm[namelen] = 0;
  a.what.dir.data.data_len = (u_int)dlen;
  a.what.dir.data.data_val = (char *)dfh;
  a.what.name = nm;
  if (rpc_nfs3_lookup_async(rpc, raw_cb, &a, &w) != 0) die("rpc_nfs3_lookup_async");
  raw_wait(rpc, &w);
  free(nm);
  return o;
}

/* The handle libnfs got for a path (opened read-only; works for directories too). */
static size_t path_fh(struct nfs_context *nfs, const char *path, unsigned char out[64]) {
  struct nfsfh *fh;
  int r = nfs_open(nfs, path, O_RDONLY, &fh);
  if (r != 0) die("nfs_open %s: %s", path, nfs_get_error(nfs));
  struct drv_fh *h = (struct drv_fh *)nfs_get_fh(fh);
  size_t n = h->len > 64 ? 64 : (size_t)h->len;
  memcpy(out, h->val, n);
  nfs_close(nfs, fh);
  return n;
}
#endif

#endif
