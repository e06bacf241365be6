/*
 * nfsbench: the benchmark client for union-nfsd vs nfs-ganesha, over libnfs (NFSv3).
 *
 * One process per workload; it prints one JSON line per measured phase:
 *   {"workload":"seqwrite","ops":1024,"bytes":1073741824,"seconds":0.91,"verify":"ok",...}
 * "seconds" is the time spent talking to the server; time spent checking read data against
 * the known pattern is measured separately ("verify_seconds") and not included.
 *
 * Every file with content carries the same pattern: the 64-bit little-endian word at byte
 * offset o (o a multiple of 8) is (o / 8) * K + seed, so any aligned block can be checked
 * without a reference copy. `gen-*` subcommands build the layers locally with that pattern.
 *
 * Every loop is bounded by a count and by a wall-clock limit.
 *
 * Build: gcc -O2 -Wall -o nfsbench nfsbench.c -lnfs
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-mount.h>
#include <nfsc/libnfs-raw-nfs.h>
#include <nfsc/libnfs-raw-nlm.h>

#define PATTERN_K 0x9E3779B97F4A7C15ULL
#define KIB 1024ULL
#define MIB (1024ULL * 1024ULL)

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "nfsbench: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(2);
}

static void fill_pattern(uint8_t *buf, uint64_t off, size_t len, uint64_t seed) {
  uint64_t *w = (uint64_t *)buf;
  uint64_t base = off / 8;
  for (size_t i = 0; i < len / 8; i++) w[i] = (base + i) * PATTERN_K + seed;
}

/* Returns the byte offset (relative to buf) of the first mismatch, or -1. */
static int64_t check_pattern(const uint8_t *buf, uint64_t off, size_t len, uint64_t seed) {
  const uint64_t *w = (const uint64_t *)buf;
  uint64_t base = off / 8;
  for (size_t i = 0; i < len / 8; i++)
    if (w[i] != (base + i) * PATTERN_K + seed) return (int64_t)(i * 8);
  return -1;
}

static uint64_t rng_state = 88172645463325252ULL;
static uint64_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static char verify_msg[512] = "ok";
static uint64_t errors_seen = 0;
static void fail(const char *fmt, ...) {
  errors_seen++;
  if (strcmp(verify_msg, "ok") != 0) return; /* keep the first failure */
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(verify_msg, sizeof verify_msg, fmt, ap);
  va_end(ap);
  for (char *p = verify_msg; *p; p++)
    if (*p == '"' || *p == '\\' || (unsigned char)*p < 32) *p = '\'';
}

static const char *g_label = "";
/* SIGUSR1 ends the calls workload's loop early, as its deadline would (bench/slow-disk.ts). */
static volatile sig_atomic_t g_stop = 0;
static void on_usr1(int sig) { (void)sig; g_stop = 1; }
static void emit(const char *workload, uint64_t ops, uint64_t bytes, double seconds,
                 double verify_seconds, const char *extra) {
  printf("{\"workload\":\"%s\",\"label\":\"%s\",\"ops\":%" PRIu64 ",\"bytes\":%" PRIu64
         ",\"seconds\":%.6f,\"verify_seconds\":%.6f,\"errors\":%" PRIu64 ",\"verify\":\"%s\"%s%s}\n",
         workload, g_label, ops, bytes, seconds, verify_seconds, errors_seen,
         errors_seen ? (strcmp(verify_msg, "ok") ? verify_msg : "errors") : "ok",
         extra && *extra ? "," : "", extra ? extra : "");
  fflush(stdout);
}

/* ---------- connection ---------- */

static struct nfs_context *connect_url(const char *url_s) {
  struct nfs_context *nfs = nfs_init_context();
  if (!nfs) die("nfs_init_context failed");
  nfs_set_dircache(nfs, 0);
  nfs_set_timeout(nfs, 60000);
  struct nfs_url *url = nfs_parse_url_dir(nfs, url_s);
  if (!url) die("bad url %s: %s", url_s, nfs_get_error(nfs));
  int rc = -1;
  /* A server that has only just printed "ready" may still be settling: retry briefly. */
  for (int attempt = 0; attempt < 20; attempt++) {
    rc = nfs_mount(nfs, url->server, url->path);
    if (rc == 0) break;
    usleep(100000);
  }
  if (rc != 0) die("mount %s failed: %s", url_s, nfs_get_error(nfs));
  nfs_destroy_url(url);
  return nfs;
}

/* ---------- local generators (no NFS) ---------- */

static int gen_pattern_file(const char *path, uint64_t size, uint64_t seed) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) die("open %s: %s", path, strerror(errno));
  size_t chunk = 4 * MIB;
  uint8_t *buf = aligned_alloc(4096, chunk);
  for (uint64_t off = 0; off < size; off += chunk) {
    size_t n = size - off < chunk ? (size_t)(size - off) : chunk;
    fill_pattern(buf, off, n, seed);
    if (write(fd, buf, n) != (ssize_t)n) die("write %s: %s", path, strerror(errno));
  }
  free(buf);
  close(fd);
  return 0;
}

/* gen-files DIR FMT START END STEP SIZE: files FMT%i for i in [START,END) by STEP, SIZE bytes (-1: i+1) */
static int gen_files(const char *dir, const char *fmt, long start, long end, long step, long size) {
  char path[4096], name[256];
  uint8_t buf[4096];
  if (size > (long)sizeof buf) die("gen-files size too big");
  for (long i = start; i < end; i += step) {
    snprintf(name, sizeof name, fmt, i);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) die("open %s: %s", path, strerror(errno));
    long n = size < 0 ? i + 1 : size; /* SIZE -1: file i has i+1 bytes */
    if (n > (long)sizeof buf) die("gen-files size too big");
    if (n > 0) {
      fill_pattern(buf, 0, (size_t)((n + 7) & ~7L), (uint64_t)i);
      if (write(fd, buf, (size_t)n) != n) die("write %s", path);
    }
    close(fd);
  }
  return 0;
}

/* gen-whiteouts DIR FMT START END STEP: overlayfs whiteouts (char device 0/0) */
static int gen_whiteouts(const char *dir, const char *fmt, long start, long end, long step) {
  char path[4096], name[256];
  for (long i = start; i < end; i += step) {
    snprintf(name, sizeof name, fmt, i);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (mknod(path, S_IFCHR | 0000, makedev(0, 0)) != 0) die("mknod %s: %s", path, strerror(errno));
  }
  return 0;
}

/* ---------- workloads ---------- */

/* ---------- per-call latency (raw RPC, one call in flight) ---------- */

/*
 * calls URL DIR N MAXSEC [PROCS]: N calls of each of NULL, GETATTR, LOOKUP, ACCESS, READ
 * (4 KiB), CREATE and REMOVE (or those PROCS names, e.g. "null,getattr"), one at a time, each timed from its send to its reply, through libnfs's
 * raw RPC layer (no caching, no compound work: exactly one RPC per measured call), after N/5
 * (at least 200; NFSBENCH_WARMUP sets another count) unmeasured calls of the same procedure. The root
 * handle comes from a MOUNT call of its own. DIR (under the export, existing) receives the
 * CREATEd files, which REMOVE deletes again; LOOKUP and READ use /rand.bin.
 * One line per procedure: {"workload":"calls-getattr",...,"p50_us":..,"p99_us":..,"p999_us":..,"max_us":..}.
 */
struct call_wait { int done; int status; int ok; struct nfs_fh3 fh; };

static void call_cb(struct rpc_context *rpc, int status, void *data, void *priv) {
  (void)rpc;
  struct call_wait *w = priv;
  w->done = 1;
  w->status = status;
  w->ok = status == RPC_STATUS_SUCCESS && (data == NULL || *(int *)data == 0); /* every nfsstat3/mountstat3 leads its result */
}

static void copy_fh(struct nfs_fh3 *to, const char *val, u_int len) {
  to->data.data_len = len;
  to->data.data_val = malloc(len);
  memcpy(to->data.data_val, val, len);
}

static void mnt_cb(struct rpc_context *rpc, int status, void *data, void *priv) {
  call_cb(rpc, status, data, priv);
  struct call_wait *w = priv;
  mountres3 *r = data;
  if (w->ok) copy_fh(&w->fh, r->mountres3_u.mountinfo.fhandle.fhandle3_val, r->mountres3_u.mountinfo.fhandle.fhandle3_len);
}

static void lookup_cb(struct rpc_context *rpc, int status, void *data, void *priv) {
  call_cb(rpc, status, data, priv);
  struct call_wait *w = priv;
  LOOKUP3res *r = data;
  if (w->ok && w->fh.data.data_val == NULL) copy_fh(&w->fh, r->LOOKUP3res_u.resok.object.data.data_val, r->LOOKUP3res_u.resok.object.data.data_len);
}

static void wait_call(struct rpc_context *rpc, struct call_wait *w, const char *what) {
  while (!w->done) {
    struct pollfd p = { .fd = rpc_get_fd(rpc), .events = (short)rpc_which_events(rpc) };
    int r = poll(&p, 1, 30000);
    if (r < 0 && errno == EINTR) continue; /* SIGUSR1 */
    if (r <= 0) die("%s: no reply within 30 s", what);
    if (rpc_service(rpc, p.revents) < 0) die("%s: %s", what, rpc_get_error(rpc));
  }
  if (!w->ok) die("%s failed (rpc status %d)", what, w->status);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void emit_latency(const char *proc, double *lat, long n) {
  double sum = 0;
  for (long i = 0; i < n; i++) sum += lat[i];
  qsort(lat, (size_t)n, sizeof *lat, cmp_double);
  char name[64], extra[160];
  snprintf(name, sizeof name, "calls-%s", proc);
  snprintf(extra, sizeof extra, "\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f",
           lat[n / 2] * 1e6, lat[(n * 99) / 100] * 1e6, lat[(n * 999) / 1000] * 1e6, lat[n - 1] * 1e6);
  emit(name, (uint64_t)n, 0, sum, 0, extra);
}

static void wl_calls(const char *url_s, const char *dir, long n, double max_seconds, const char *only) {
  struct nfs_context *nfs = connect_url(url_s);
  struct rpc_context *rpc = nfs_get_rpc_context(nfs);
  /* The export's root handle, from a MOUNT call of our own (libnfs keeps its own private). */
  struct nfs_url *url = nfs_parse_url_dir(nfs, url_s);
  const char *mp = strstr(url_s, "mountport=");
  if (!url || !mp) die("calls needs a URL with mountport=");
  struct rpc_context *m = rpc_init_context();
  struct call_wait w = {0};
  if (rpc_connect_async(m, url->server, atoi(mp + 10), call_cb, &w) != 0) die("connect to MOUNT: %s", rpc_get_error(m));
  wait_call(m, &w, "connect to MOUNT");
  struct call_wait root = {0};
  if (rpc_mount3_mnt_async(m, mnt_cb, url->path, &root) != 0) die("MNT: %s", rpc_get_error(m));
  wait_call(m, &root, "MNT");
  rpc_destroy_context(m);
  /* LOOKUP /rand.bin (READ's file) and DIR (where CREATE makes files). */
  struct call_wait file = {0}, d = {0};
  LOOKUP3args la = { .what = { .dir = root.fh, .name = "rand.bin" } };
  if (rpc_nfs3_lookup_async(rpc, lookup_cb, &la, &file) != 0) die("LOOKUP");
  wait_call(rpc, &file, "LOOKUP rand.bin");
  la.what.name = (char *)(dir[0] == '/' ? dir + 1 : dir);
  if (rpc_nfs3_lookup_async(rpc, lookup_cb, &la, &d) != 0) die("LOOKUP");
  wait_call(rpc, &d, "LOOKUP dir");

  double *lat = malloc(sizeof(double) * (size_t)n);
  const char *procs[] = { "null", "getattr", "lookup", "access", "read4k", "create", "remove" };
  char name[64];
  /* Every procedure runs WARMUP times unmeasured first (CREATE and REMOVE on names of their
   * own), so one-time costs (a JIT compiling the path, first-touch allocations) stay out. */
  long WARMUP = n / 5 < 200 ? 200 : n / 5;
  if (getenv("NFSBENCH_WARMUP")) WARMUP = atol(getenv("NFSBENCH_WARMUP"));
  for (int p = 0; p < 7; p++) {
    if (only && !strstr(only, procs[p])) continue;
    double deadline = now() + max_seconds;
    long i = -WARMUP;
    for (; i < n && now() < deadline && !g_stop; i++) {
      struct call_wait c = {0};
      int rc = 0;
      double t0 = now();
      switch (p) {
        case 0: rc = rpc_nfs3_null_async(rpc, call_cb, &c); break;
        case 1: { GETATTR3args a = { .object = root.fh }; rc = rpc_nfs3_getattr_async(rpc, call_cb, &a, &c); break; }
        case 2: { LOOKUP3args a = { .what = { .dir = root.fh, .name = "rand.bin" } }; rc = rpc_nfs3_lookup_async(rpc, call_cb, &a, &c); break; }
        case 3: { ACCESS3args a = { .object = root.fh, .access = 0x3f }; rc = rpc_nfs3_access_async(rpc, call_cb, &a, &c); break; }
        case 4: { READ3args a = { .file = file.fh, .offset = (rng() % 4096) * 4096, .count = 4096 }; rc = rpc_nfs3_read_async(rpc, call_cb, &a, &c); break; }
        case 5: {
          snprintf(name, sizeof name, i < 0 ? "warm-%ld" : "lat-%ld", i < 0 ? -i : i);
          CREATE3args a = { .where = { .dir = d.fh, .name = name }, .how = { .mode = UNCHECKED } };
          a.how.createhow3_u.obj_attributes.mode.set_it = 1;
          a.how.createhow3_u.obj_attributes.mode.set_mode3_u.mode = 0644;
          rc = rpc_nfs3_create_async(rpc, call_cb, &a, &c);
          break;
        }
        default: {
          snprintf(name, sizeof name, i < 0 ? "warm-%ld" : "lat-%ld", i < 0 ? -i : i);
          REMOVE3args a = { .object = { .dir = d.fh, .name = name } };
          rc = rpc_nfs3_remove_async(rpc, call_cb, &a, &c);
        }
      }
      if (rc != 0) die("%s: %s", procs[p], rpc_get_error(rpc));
      wait_call(rpc, &c, procs[p]);
      if (i >= 0) lat[i] = now() - t0;
    }
    if (i <= 0) die("%s: no call measured within %.0f s", procs[p], max_seconds);
    /* REMOVE deletes exactly what CREATE made: give it the same count. */
    if (p == 5) n = i;
    emit_latency(procs[p], lat, i);
  }
  free(lat);
  nfs_destroy_url(url);
  nfs_destroy_context(nfs);
}

/*
 * locks URL NLMPORT N MAXSEC: N rounds of NLM4 TEST, LOCK and UNLOCK (exclusive, whole file,
 * non-blocking) of /rand.bin, one call at a time, each timed from send to reply, through
 * libnfs's raw RPC layer to the lock manager at the server's NLMPORT (union-nfsd serves NLM on
 * its NFS port). N/5 (at least 200) unmeasured rounds first. Every LOCK must be granted and
 * TEST must find the file free. One line per procedure, as `calls`: calls-nlm-test, ...
 */
struct nlm_wait { int done; int status; int stat; };

static void nlm_cb(struct rpc_context *rpc, int status, void *data, void *priv) {
  (void)rpc;
  struct nlm_wait *w = priv;
  w->done = 1;
  w->status = status;
  /* Every nlm4 result starts with the cookie, then the nlm4_stats. */
  w->stat = status == RPC_STATUS_SUCCESS ? (int)((NLM4_LOCKres *)data)->status : -1;
}

static void wait_nlm(struct rpc_context *rpc, struct nlm_wait *w, const char *what) {
  while (!w->done) {
    struct pollfd p = { .fd = rpc_get_fd(rpc), .events = (short)rpc_which_events(rpc) };
    if (poll(&p, 1, 30000) <= 0) die("%s: no reply within 30 s", what);
    if (rpc_service(rpc, p.revents) < 0) die("%s: %s", what, rpc_get_error(rpc));
  }
  if (w->status != RPC_STATUS_SUCCESS || w->stat != NLM4_GRANTED) die("%s: rpc status %d, nlm4_stats %d", what, w->status, w->stat);
}

static void wl_locks(const char *url_s, int nlm_port, long n, double max_seconds) {
  struct nfs_context *nfs = connect_url(url_s);
  struct nfsfh *fh;
  if (nfs_open(nfs, "/rand.bin", O_RDONLY, &fh) != 0) die("open /rand.bin: %s", nfs_get_error(nfs));
  struct nfs_fh3 *nfh = (struct nfs_fh3 *)nfs_get_fh(fh);
  struct nfs_url *url = nfs_parse_url_dir(nfs, url_s);
  struct rpc_context *l = rpc_init_context();
  struct call_wait c = {0};
  if (rpc_connect_async(l, url->server, nlm_port, call_cb, &c) != 0) die("connect to NLM: %s", rpc_get_error(l));
  wait_call(l, &c, "connect to NLM");
  char oh[] = "4242@nfsbench", cookie[] = "nfsbench";
  nlm4_lock lk = { .caller_name = "nfsbench", .oh = oh, .svid = 4242, .l_offset = 0, .l_len = 0 };
  lk.fh.data.data_len = nfh->data.data_len;
  lk.fh.data.data_val = nfh->data.data_val;
  nlm_cookie ck = { .data = { .data_len = sizeof cookie - 1, .data_val = cookie } };
  long WARMUP = n / 5 < 200 ? 200 : n / 5;
  if (getenv("NFSBENCH_WARMUP")) WARMUP = atol(getenv("NFSBENCH_WARMUP"));
  double *lat[3];
  for (int p = 0; p < 3; p++) lat[p] = malloc(sizeof(double) * (size_t)n);
  const char *names[] = { "nlm-test", "nlm-lock", "nlm-unlock" };
  double deadline = now() + max_seconds;
  long i = -WARMUP;
  for (; i < n && now() < deadline; i++) {
    for (int p = 0; p < 3; p++) {
      struct nlm_wait w = {0};
      int rc;
      double t0 = now();
      if (p == 0) { NLM4_TESTargs a = { .cookie = ck, .exclusive = 1, .lock = lk }; rc = rpc_nlm4_test_async(l, nlm_cb, &a, &w); }
      else if (p == 1) { NLM4_LOCKargs a = { .cookie = ck, .block = 0, .exclusive = 1, .lock = lk, .reclaim = 0, .state = 1 }; rc = rpc_nlm4_lock_async(l, nlm_cb, &a, &w); }
      else { NLM4_UNLOCKargs a = { .cookie = ck, .lock = lk }; rc = rpc_nlm4_unlock_async(l, nlm_cb, &a, &w); }
      if (rc != 0) die("%s: %s", names[p], rpc_get_error(l));
      wait_nlm(l, &w, names[p]);
      if (i >= 0) lat[p][i] = now() - t0;
    }
  }
  if (i <= 0) die("locks: no round measured within %.0f s", max_seconds);
  for (int p = 0; p < 3; p++) { emit_latency(names[p], lat[p], i); free(lat[p]); }
  rpc_destroy_context(l);
  nfs_destroy_url(url);
  nfs_close(nfs, fh);
  nfs_destroy_context(nfs);
}

static void wl_seqwrite(const char *url, const char *path, uint64_t size, uint64_t req, uint64_t seed) {
  struct nfs_context *nfs = connect_url(url);
  uint8_t *buf = aligned_alloc(4096, req);
  double verify = 0, t0 = now();
  struct nfsfh *fh;
  if (nfs_creat(nfs, path, 0644, &fh) != 0) die("creat %s: %s", path, nfs_get_error(nfs));
  uint64_t ops = 0;
  for (uint64_t off = 0; off < size; off += req) {
    size_t n = size - off < req ? (size_t)(size - off) : (size_t)req;
    double v0 = now();
    fill_pattern(buf, off, n, seed); /* generating data is client work, not server time */
    verify += now() - v0;
    int w = nfs_pwrite(nfs, fh, off, n, buf);
    if (w != (int)n) { fail("pwrite at %" PRIu64 ": %d %s", off, w, nfs_get_error(nfs)); break; }
    ops++;
  }
  if (nfs_fsync(nfs, fh) != 0) fail("fsync: %s", nfs_get_error(nfs));
  nfs_close(nfs, fh);
  double secs = now() - t0 - verify;
  struct nfs_stat_64 st;
  if (nfs_stat64(nfs, path, &st) != 0) fail("stat after write: %s", nfs_get_error(nfs));
  else if (st.nfs_size != size) fail("size %" PRIu64 " != %" PRIu64, (uint64_t)st.nfs_size, size);
  emit("seqwrite", ops, size, secs, verify, "");
  free(buf);
  nfs_umount(nfs);
  nfs_destroy_context(nfs);
}

static void wl_seqread(const char *url, const char *path, uint64_t size, uint64_t req, uint64_t seed) {
  struct nfs_context *nfs = connect_url(url);
  uint8_t *buf = aligned_alloc(4096, req);
  double verify = 0, t0 = now();
  struct nfsfh *fh;
  if (nfs_open(nfs, path, O_RDONLY, &fh) != 0) die("open %s: %s", path, nfs_get_error(nfs));
  uint64_t ops = 0, bytes = 0;
  for (uint64_t off = 0; off < size; off += req) {
    size_t n = size - off < req ? (size_t)(size - off) : (size_t)req;
    int r = nfs_pread(nfs, fh, off, n, buf);
    if (r != (int)n) { fail("pread at %" PRIu64 ": %d %s", off, r, nfs_get_error(nfs)); break; }
    ops++;
    bytes += (uint64_t)r;
    double v0 = now();
    int64_t bad = check_pattern(buf, off, n, seed);
    verify += now() - v0;
    if (bad >= 0) { fail("content mismatch at offset %" PRIu64, off + (uint64_t)bad); break; }
  }
  nfs_close(nfs, fh);
  double secs = now() - t0 - verify;
  emit("seqread", ops, bytes, secs, verify, "");
  free(buf);
  nfs_umount(nfs);
  nfs_destroy_context(nfs);
}

struct rr_state {
  uint64_t issued, done, target, bytes, file_blocks, seed;
  double deadline, verify;
  struct nfsfh *fh;
  int failed;
  uint64_t inflight_off[64];
};

static void rr_issue(struct nfs_context *nfs, struct rr_state *s);
static struct rr_state *rr_current; /* one async run per process */

static void rr_cb(int status, struct nfs_context *nfs, void *data, void *priv) {
  uint64_t off = (uint64_t)(uintptr_t)priv;
  struct rr_state *s = rr_current;
  s->done++;
  if (status != 4096) {
    fail("async pread at %" PRIu64 ": %d %s", off, status, status < 0 ? (char *)data : "short");
    s->failed = 1;
    return;
  }
  s->bytes += 4096;
  double v0 = now();
  int64_t bad = check_pattern((const uint8_t *)data, off, 4096, s->seed);
  s->verify += now() - v0;
  if (bad >= 0) { fail("content mismatch at %" PRIu64, off + (uint64_t)bad); s->failed = 1; return; }
  rr_issue(nfs, s);
}

static void rr_issue(struct nfs_context *nfs, struct rr_state *s) {
  if (s->failed || s->issued >= s->target || now() > s->deadline) return;
  uint64_t off = (rng() % s->file_blocks) * 4096;
  if (nfs_pread_async(nfs, s->fh, off, 4096, rr_cb, (void *)(uintptr_t)off) != 0) {
    fail("pread_async queue: %s", nfs_get_error(nfs));
    s->failed = 1;
    return;
  }
  s->issued++;
}

/* SEED is the file's pattern seed; RNGSEED picks the offsets (differs per round) */
static void wl_randread(const char *url, const char *path, uint64_t fsize, int depth, uint64_t count,
                        double max_seconds, uint64_t seed, uint64_t rngseed) {
  struct nfs_context *nfs = connect_url(url);
  struct nfsfh *fh;
  if (nfs_open(nfs, path, O_RDONLY, &fh) != 0) die("open %s: %s", path, nfs_get_error(nfs));
  struct rr_state s = {0};
  s.target = count;
  s.file_blocks = fsize / 4096;
  s.seed = seed;
  s.fh = fh;
  rng_state ^= rngseed * 7919 + (uint64_t)depth;
  double t0 = now();
  s.deadline = t0 + max_seconds;
  if (depth <= 1) {
    uint8_t buf[4096];
    while (s.done < s.target && now() < s.deadline) {
      uint64_t off = (rng() % s.file_blocks) * 4096;
      int r = nfs_pread(nfs, fh, off, 4096, buf);
      s.done++;
      if (r != 4096) { fail("pread at %" PRIu64 ": %d %s", off, r, nfs_get_error(nfs)); break; }
      s.bytes += 4096;
      double v0 = now();
      int64_t bad = check_pattern(buf, off, 4096, seed);
      s.verify += now() - v0;
      if (bad >= 0) { fail("content mismatch at %" PRIu64, off + (uint64_t)bad); break; }
    }
  } else {
    rr_current = &s;
    for (int i = 0; i < depth; i++) rr_issue(nfs, &s);
    double hard = s.deadline + 30;
    while (s.done < s.issued && now() < hard) {
      struct pollfd pfd = {.fd = nfs_get_fd(nfs), .events = (short)nfs_which_events(nfs)};
      if (poll(&pfd, 1, 100) < 0 && errno != EINTR) die("poll: %s", strerror(errno));
      if (nfs_service(nfs, pfd.revents) < 0) { fail("nfs_service: %s", nfs_get_error(nfs)); break; }
    }
    if (s.done < s.issued) fail("%" PRIu64 " requests never answered", s.issued - s.done);
  }
  double secs = now() - t0 - s.verify;
  char name[32], extra[64];
  snprintf(name, sizeof name, "randread-qd%d", depth);
  snprintf(extra, sizeof extra, "\"depth\":%d", depth);
  emit(name, s.done, s.bytes, secs, s.verify, extra);
  nfs_close(nfs, fh);
  nfs_umount(nfs);
  nfs_destroy_context(nfs);
}

/* create, stat, list (READDIRPLUS), unlink N files in a fresh directory DIR */
static void wl_meta(const char *url, const char *dir, long n, double max_seconds) {
  struct nfs_context *nfs = connect_url(url);
  char path[4096];
  double deadline = now() + max_seconds;
  if (nfs_mkdir(nfs, dir) != 0) die("mkdir %s: %s", dir, nfs_get_error(nfs));
  long created = 0;
  double t0 = now();
  for (long i = 0; i < n && now() < deadline; i++) {
    struct nfsfh *fh;
    snprintf(path, sizeof path, "%s/m%06ld", dir, i);
    if (nfs_creat(nfs, path, 0644, &fh) != 0) { fail("creat %s: %s", path, nfs_get_error(nfs)); break; }
    nfs_close(nfs, fh);
    created++;
  }
  double t1 = now();
  if (created != n) fail("created %ld of %ld", created, n);
  emit("meta-create", (uint64_t)created, 0, t1 - t0, 0, "");

  long statted = 0;
  t0 = now();
  for (long i = 0; i < created && now() < deadline; i++) {
    struct nfs_stat_64 st;
    snprintf(path, sizeof path, "%s/m%06ld", dir, i);
    if (nfs_stat64(nfs, path, &st) != 0) { fail("stat %s: %s", path, nfs_get_error(nfs)); break; }
    if (st.nfs_size != 0 || (st.nfs_mode & S_IFMT) != S_IFREG) { fail("stat %s: bad attrs", path); break; }
    statted++;
  }
  t1 = now();
  emit("meta-stat", (uint64_t)statted, 0, t1 - t0, 0, "");

  t0 = now();
  struct nfsdir *d;
  long listed = 0;
  if (nfs_opendir(nfs, dir, &d) != 0) fail("opendir %s: %s", dir, nfs_get_error(nfs));
  else {
    struct nfsdirent *e;
    while ((e = nfs_readdir(nfs, d)) != NULL) {
      if (!strcmp(e->name, ".") || !strcmp(e->name, "..")) continue;
      if (e->name[0] != 'm' || (e->mode & S_IFMT) != S_IFREG) fail("unexpected entry %s", e->name);
      listed++;
    }
    nfs_closedir(nfs, d);
  }
  t1 = now();
  if (listed != created) fail("listed %ld entries, expected %ld", listed, created);
  emit("meta-list", (uint64_t)listed, 0, t1 - t0, 0, "");

  long removed = 0;
  t0 = now();
  for (long i = 0; i < created && now() < deadline + 60; i++) {
    snprintf(path, sizeof path, "%s/m%06ld", dir, i);
    if (nfs_unlink(nfs, path) != 0) { fail("unlink %s: %s", path, nfs_get_error(nfs)); break; }
    removed++;
  }
  t1 = now();
  emit("meta-unlink", (uint64_t)removed, 0, t1 - t0, 0, "");
  if (nfs_rmdir(nfs, dir) != 0) fail("rmdir %s: %s", dir, nfs_get_error(nfs));
  nfs_umount(nfs);
  nfs_destroy_context(nfs);
}

/* list DIR: must hold exactly names PREFIX%06d for 0 <= i < N, each once, nothing else */
static void wl_list(const char *url, const char *dir, const char *prefix, long n, const char *name) {
  struct nfs_context *nfs = connect_url(url);
  uint8_t *seen = calloc((size_t)n, 1);
  size_t plen = strlen(prefix);
  long listed = 0;
  double t0 = now();
  struct nfsdir *d;
  if (nfs_opendir(nfs, dir, &d) != 0) die("opendir %s: %s", dir, nfs_get_error(nfs));
  struct nfsdirent *e;
  while ((e = nfs_readdir(nfs, d)) != NULL) {
    if (!strcmp(e->name, ".") || !strcmp(e->name, "..")) continue;
    listed++;
    char *end;
    if (strncmp(e->name, prefix, plen) != 0) { fail("unexpected name %s", e->name); continue; }
    long i = strtol(e->name + plen, &end, 10);
    if (*end || i < 0 || i >= n) { fail("unexpected name %s", e->name); continue; }
    if (seen[i]++) fail("duplicate name %s", e->name);
  }
  nfs_closedir(nfs, d);
  double t1 = now();
  if (listed != n) fail("listed %ld entries, expected %ld", listed, n);
  emit(name, (uint64_t)listed, 0, t1 - t0, 0, "");
  free(seen);
  nfs_umount(nfs);
  nfs_destroy_context(nfs);
}

/* first write to a big lower file: open for write + 4 KiB write at 0 + COMMIT */
static void wl_copyup(const char *url, const char *path, uint64_t size, uint64_t seed, double max_seconds) {
  struct nfs_context *nfs = connect_url(url);
  uint8_t wbuf[4096], rbuf[4096];
  memset(wbuf, 0xA5, sizeof wbuf);
  double t0 = now(), deadline = t0 + max_seconds;
  struct nfsfh *fh = NULL;
  int rc, retries = 0;
  /* NFS3ERR_JUKEBOX (copy-up still running) surfaces as a failure: retry, bounded. */
  while ((rc = nfs_open(nfs, path, O_RDWR, &fh)) != 0 && now() < deadline) { retries++; usleep(20000); }
  if (rc != 0) die("open %s: %s", path, nfs_get_error(nfs));
  while ((rc = nfs_pwrite(nfs, fh, 0, sizeof wbuf, wbuf)) != (int)sizeof wbuf && now() < deadline) {
    retries++;
    usleep(20000);
  }
  if (rc != (int)sizeof wbuf) fail("first write: %d %s", rc, nfs_get_error(nfs));
  if (nfs_fsync(nfs, fh) != 0) fail("fsync: %s", nfs_get_error(nfs));
  double secs = now() - t0;
  double v0 = now();
  struct nfs_stat_64 st;
  if (nfs_stat64(nfs, path, &st) != 0) fail("stat: %s", nfs_get_error(nfs));
  else if (st.nfs_size != size) fail("size after copy-up %" PRIu64 " != %" PRIu64, (uint64_t)st.nfs_size, size);
  if (nfs_pread(nfs, fh, 0, 4096, rbuf) != 4096 || memcmp(rbuf, wbuf, 4096)) fail("written block reads back wrong");
  uint64_t probes[3] = {4096, (size / 2) & ~4095ULL, size - 4096};
  for (int i = 0; i < 3; i++) {
    if (nfs_pread(nfs, fh, probes[i], 4096, rbuf) != 4096) { fail("read at %" PRIu64, probes[i]); continue; }
    if (check_pattern(rbuf, probes[i], 4096, seed) >= 0) fail("copied-up data wrong at %" PRIu64, probes[i]);
  }
  nfs_close(nfs, fh);
  double verify = now() - v0;
  char extra[64];
  snprintf(extra, sizeof extra, "\"retries\":%d", retries);
  emit("copyup", 1, size, secs, verify, extra);
  /* drop the copy so the upper does not keep 1 GiB per round (untimed) */
  if (nfs_unlink(nfs, path) != 0) fail("cleanup unlink: %s", nfs_get_error(nfs));
  nfs_umount(nfs);
  nfs_destroy_context(nfs);
}

/* path lookups: ROOT/d1/.../d(depth-1)/f%03d (depth components), leaf i has i+1 bytes */
static void wl_lookup(const char *url, const char *root, int depth, long leaves, long count,
                      double max_seconds, const char *name) {
  struct nfs_context *nfs = connect_url(url);
  char prefix[2048] = "", path[4096];
  snprintf(prefix, sizeof prefix, "%s", root);
  for (int i = 1; i < depth; i++) {
    size_t l = strlen(prefix);
    snprintf(prefix + l, sizeof prefix - l, "/d%d", i);
  }
  double t0 = now(), deadline = t0 + max_seconds;
  long done = 0;
  for (long k = 0; k < count && now() < deadline; k++) {
    long i = (long)(rng() % (uint64_t)leaves);
    snprintf(path, sizeof path, "%s/f%03ld", prefix, i);
    struct nfs_stat_64 st;
    if (nfs_stat64(nfs, path, &st) != 0) { fail("stat %s: %s", path, nfs_get_error(nfs)); break; }
    if (st.nfs_size != (uint64_t)(i + 1)) { fail("%s has size %" PRIu64, path, (uint64_t)st.nfs_size); break; }
    done++;
  }
  double secs = now() - t0;
  char extra[64];
  snprintf(extra, sizeof extra, "\"depth\":%d", depth);
  emit(name, (uint64_t)done, 0, secs, 0, extra);
  nfs_umount(nfs);
  nfs_destroy_context(nfs);
}

/*
 * mixed: NCLIENTS processes, each with its own connection, for SECONDS:
 * 50% 4 KiB random read of RANDFILE (checked), 20% 4 KiB write + read-back in its own file,
 * 15% stat of a random LOOKUP-tree leaf, 10% create+unlink, 5% listing of its own directory.
 */
struct mixed_result { uint64_t ops, bytes, errors; char msg[200]; };

static void mixed_child(int id, const char *url, const char *dir, const char *randfile, uint64_t rsize,
                        const char *leafdir, long leaves, double seconds, int rfd, int wfd) {
  struct nfs_context *nfs = connect_url(url);
  rng_state ^= (uint64_t)(id + 1) * 0x2545F4914F6CDD1DULL;
  char own[1024], path[2048];
  snprintf(own, sizeof own, "%s/c%02d", dir, id);
  if (nfs_mkdir(nfs, own) != 0) die("mkdir %s: %s", own, nfs_get_error(nfs));
  struct nfsfh *rf, *wf;
  if (nfs_open(nfs, randfile, O_RDONLY, &rf) != 0) die("open %s: %s", randfile, nfs_get_error(nfs));
  snprintf(path, sizeof path, "%s/data", own);
  if (nfs_creat(nfs, path, 0644, &wf) != 0) die("creat %s: %s", path, nfs_get_error(nfs));
  char go;
  if (write(wfd, "r", 1) != 1 || read(rfd, &go, 1) != 1) die("barrier");
  struct mixed_result res = {0};
  uint8_t buf[4096];
  double deadline = now() + seconds;
  uint64_t wseq = 0, tmpn = 0;
  for (uint64_t iter = 0; iter < 100000000 && now() < deadline; iter++) {
    unsigned r = (unsigned)(rng() % 100);
    if (r < 50) {
      uint64_t off = (rng() % (rsize / 4096)) * 4096;
      if (nfs_pread(nfs, rf, off, 4096, buf) != 4096) fail("read: %s", nfs_get_error(nfs));
      else if (check_pattern(buf, off, 4096, 1) >= 0) fail("mixed: content mismatch at %" PRIu64, off);
      res.bytes += 4096;
    } else if (r < 70) {
      uint64_t off = (wseq % 256) * 4096;
      fill_pattern(buf, off, 4096, (uint64_t)id + 100);
      if (nfs_pwrite(nfs, wf, off, 4096, buf) != 4096) fail("write: %s", nfs_get_error(nfs));
      else if (nfs_pread(nfs, wf, off, 4096, buf) != 4096 || check_pattern(buf, off, 4096, (uint64_t)id + 100) >= 0)
        fail("mixed: write read-back mismatch");
      wseq++;
      res.bytes += 8192;
    } else if (r < 85) {
      long i = (long)(rng() % (uint64_t)leaves);
      struct nfs_stat_64 st;
      snprintf(path, sizeof path, "%s/f%03ld", leafdir, i);
      if (nfs_stat64(nfs, path, &st) != 0 || st.nfs_size != (uint64_t)(i + 1)) fail("mixed: stat %s", path);
    } else if (r < 95) {
      struct nfsfh *fh;
      snprintf(path, sizeof path, "%s/t%" PRIu64, own, tmpn++);
      if (nfs_creat(nfs, path, 0644, &fh) != 0) fail("creat: %s", nfs_get_error(nfs));
      else {
        nfs_close(nfs, fh);
        if (nfs_unlink(nfs, path) != 0) fail("unlink: %s", nfs_get_error(nfs));
      }
    } else {
      struct nfsdir *d;
      long n = 0;
      if (nfs_opendir(nfs, own, &d) != 0) fail("opendir: %s", nfs_get_error(nfs));
      else {
        while (nfs_readdir(nfs, d)) n++;
        nfs_closedir(nfs, d);
        if (n != 3) fail("mixed: own dir lists %ld entries, expected 3", n); /* . .. data */
      }
    }
    res.ops++;
  }
  nfs_close(nfs, wf);
  nfs_close(nfs, rf);
  snprintf(path, sizeof path, "%s/data", own);
  nfs_unlink(nfs, path);
  nfs_rmdir(nfs, own);
  res.errors = errors_seen;
  snprintf(res.msg, sizeof res.msg, "%.190s", verify_msg);
  if (write(wfd, &res, sizeof res) != sizeof res) die("result pipe");
  nfs_umount(nfs);
  nfs_destroy_context(nfs);
  _exit(0);
}

static void wl_mixed(const char *url, const char *dir, int nclients, double seconds, const char *randfile,
                     uint64_t rsize, const char *leafdir, long leaves) {
  if (nclients < 1 || nclients > 64) die("1..64 clients");
  int up[2], down[2];
  if (pipe(up) || pipe(down)) die("pipe");
  {
    struct nfs_context *nfs = connect_url(url);
    if (nfs_mkdir(nfs, dir) != 0) die("mkdir %s: %s", dir, nfs_get_error(nfs));
    nfs_umount(nfs);
    nfs_destroy_context(nfs);
  }
  pid_t pids[64];
  for (int i = 0; i < nclients; i++) {
    pids[i] = fork();
    if (pids[i] < 0) die("fork");
    if (pids[i] == 0) {
      close(up[0]);
      close(down[1]);
      mixed_child(i, url, dir, randfile, rsize, leafdir, leaves, seconds, down[0], up[1]);
    }
  }
  close(up[1]);
  close(down[0]);
  char c;
  for (int i = 0; i < nclients; i++)
    if (read(up[0], &c, 1) != 1) die("a client failed to start");
  double t0 = now();
  char gobuf[64];
  memset(gobuf, 'g', sizeof gobuf);
  if (write(down[1], gobuf, (size_t)nclients) != nclients) die("barrier release");
  struct mixed_result total = {0};
  for (int i = 0; i < nclients; i++) {
    struct mixed_result r;
    if (read(up[0], &r, sizeof r) != sizeof r) { fail("client result missing"); continue; }
    total.ops += r.ops;
    total.bytes += r.bytes;
    if (r.errors) { errors_seen += r.errors - 1; fail("%s", r.msg); }
  }
  double secs = now() - t0;
  for (int i = 0; i < nclients; i++) {
    int st;
    waitpid(pids[i], &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fail("client %d exited abnormally", i);
  }
  {
    struct nfs_context *nfs = connect_url(url);
    if (nfs_rmdir(nfs, dir) != 0) fail("rmdir %s: %s", dir, nfs_get_error(nfs));
    nfs_umount(nfs);
    nfs_destroy_context(nfs);
  }
  char extra[64];
  snprintf(extra, sizeof extra, "\"clients\":%d", nclients);
  emit("mixed", total.ops, total.bytes, secs, 0, extra);
}

/*
 * boot URL DIRS PERDIR NREAD NWRITE SEED: what a booting node asks of its root file system.
 * Reads NREAD distinct files of the base (/base/dNNN/fNNNN, each SIZE 2048 bytes of
 * fill_pattern seeded by its index in the directory, as gen-files makes them) whole and checks
 * them, then writes NWRITE new 4 KiB files under /wSEED. One request in flight. Reports the
 * p50 and p99 of one file read (LOOKUPs + ACCESS/GETATTR + READ, as libnfs's open issues them).
 */
static void wl_boot(const char *url, long dirs, long perdir, long nread, long nwrite, uint64_t seed) {
  struct nfs_context *nfs = connect_url(url);
  long total = dirs * perdir;
  if (nread > total) die("boot: %ld reads of %ld files", nread, total);
  /* a permutation: a stride coprime with total visits distinct files */
  long stride = 7919;
  while (total % stride == 0) stride += 2;
  long at = (long)((seed * 2654435761ULL) % (uint64_t)total);
  uint64_t words[512]; /* 4 KiB, aligned for check_pattern */
  uint8_t *buf = (uint8_t *)words;
  uint64_t bytes = 0;
  char path[256];
  double t0 = now();
  double *lat = calloc((size_t)nread, sizeof *lat); /* per file read: open + read + close */
  if (!lat) die("boot: out of memory");
  for (long k = 0; k < nread && !errors_seen; k++) {
    double t1 = now();
    long idx = (at + k * stride) % total;
    long d = idx / perdir, f = idx % perdir;
    snprintf(path, sizeof path, "/base/d%03ld/f%04ld", d, f);
    struct nfsfh *fh;
    if (nfs_open(nfs, path, O_RDONLY, &fh) != 0) { fail("open %s: %s", path, nfs_get_error(nfs)); break; }
    int n = nfs_pread(nfs, fh, 0, sizeof words, buf);
    if (n != 2048) fail("read %s: %d bytes", path, n);
    else if (check_pattern(buf, 0, 2048, (uint64_t)f) >= 0) fail("read %s: wrong data", path);
    bytes += n > 0 ? (uint64_t)n : 0;
    nfs_close(nfs, fh);
    lat[k] = now() - t1;
  }
  char dir[64];
  snprintf(dir, sizeof dir, "/w%" PRIu64, seed);
  if (!errors_seen && nfs_mkdir(nfs, dir) != 0) fail("mkdir %s: %s", dir, nfs_get_error(nfs));
  fill_pattern(buf, 0, sizeof words, seed);
  for (long k = 0; k < nwrite && !errors_seen; k++) {
    snprintf(path, sizeof path, "%s/f%04ld", dir, k);
    struct nfsfh *fh;
    if (nfs_creat(nfs, path, 0644, &fh) != 0) { fail("create %s: %s", path, nfs_get_error(nfs)); break; }
    if (nfs_pwrite(nfs, fh, 0, sizeof words, buf) != (int)sizeof words) fail("write %s: %s", path, nfs_get_error(nfs));
    bytes += sizeof words;
    nfs_close(nfs, fh);
  }
  double secs = now() - t0;
  qsort(lat, (size_t)nread, sizeof *lat, cmp_double);
  char extra[128];
  snprintf(extra, sizeof extra, "\"read_p50_us\":%.1f,\"read_p99_us\":%.1f",
           nread ? lat[nread / 2] * 1e6 : 0.0, nread ? lat[(nread * 99) / 100] * 1e6 : 0.0);
  free(lat);
  emit("boot", (uint64_t)(nread + nwrite), bytes, secs, 0, extra);
  nfs_umount(nfs);
  nfs_destroy_context(nfs);
}

static void wl_rm(const char *url, const char *path) {
  struct nfs_context *nfs = connect_url(url);
  if (nfs_unlink(nfs, path) != 0) fail("unlink %s: %s", path, nfs_get_error(nfs));
  nfs_umount(nfs);
  nfs_destroy_context(nfs);
}

static void usage(void) {
  fprintf(stderr,
          "usage (sizes in bytes; URL = nfs://127.0.0.1/EXPORT?nfsport=P&mountport=M&version=3):\n"
          "  nfsbench gen-pattern PATH SIZE SEED\n"
          "  nfsbench gen-files DIR FMT START END STEP SIZE\n"
          "  nfsbench gen-whiteouts DIR FMT START END STEP\n"
          "  nfsbench seqwrite URL PATH SIZE REQ SEED\n"
          "  nfsbench seqread URL PATH SIZE REQ SEED\n"
          "  nfsbench randread URL PATH FILESIZE DEPTH COUNT MAXSEC SEED RNGSEED\n"
          "  nfsbench meta URL DIR N MAXSEC\n"
          "  nfsbench list URL DIR PREFIX N NAME\n"
          "  nfsbench copyup URL PATH SIZE SEED MAXSEC\n"
          "  nfsbench lookup URL ROOT DEPTH LEAVES COUNT MAXSEC NAME [RNGSEED]\n"
          "  nfsbench rm URL PATH\n"
          "  nfsbench mixed URL DIR NCLIENTS SECONDS RANDFILE RANDSIZE LEAFDIR LEAVES\n"
          "  nfsbench boot URL DIRS PERDIR NREAD NWRITE SEED\n"
          "  nfsbench calls URL DIR N MAXSEC [PROCS: e.g. null,getattr]\n"
          "  nfsbench locks URL NLMPORT N MAXSEC\n"
          "env NFSBENCH_LABEL is copied into each JSON line; NFSBENCH_WARMUP sets calls' unmeasured calls.\n");
  exit(2);
}

#define NEED(n) do { if (argc < (n)) usage(); } while (0)
#define U64(i) strtoull(argv[i], NULL, 10)

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  signal(SIGUSR1, on_usr1);
  if (getenv("NFSBENCH_LABEL")) g_label = getenv("NFSBENCH_LABEL");
  NEED(2);
  const char *cmd = argv[1];
  if (!strcmp(cmd, "gen-pattern")) { NEED(5); return gen_pattern_file(argv[2], U64(3), U64(4)); }
  if (!strcmp(cmd, "gen-files")) { NEED(8); return gen_files(argv[2], argv[3], atol(argv[4]), atol(argv[5]), atol(argv[6]), atol(argv[7])); }
  if (!strcmp(cmd, "gen-whiteouts")) { NEED(7); return gen_whiteouts(argv[2], argv[3], atol(argv[4]), atol(argv[5]), atol(argv[6])); }
  if (!strcmp(cmd, "seqwrite")) { NEED(7); wl_seqwrite(argv[2], argv[3], U64(4), U64(5), U64(6)); }
  else if (!strcmp(cmd, "seqread")) { NEED(7); wl_seqread(argv[2], argv[3], U64(4), U64(5), U64(6)); }
  else if (!strcmp(cmd, "randread")) { NEED(10); wl_randread(argv[2], argv[3], U64(4), atoi(argv[5]), U64(6), atof(argv[7]), U64(8), U64(9)); }
  else if (!strcmp(cmd, "meta")) { NEED(6); wl_meta(argv[2], argv[3], atol(argv[4]), atof(argv[5])); }
  else if (!strcmp(cmd, "list")) { NEED(7); wl_list(argv[2], argv[3], argv[4], atol(argv[5]), argv[6]); }
  else if (!strcmp(cmd, "copyup")) { NEED(7); wl_copyup(argv[2], argv[3], U64(4), U64(5), atof(argv[6])); }
  else if (!strcmp(cmd, "lookup")) { NEED(9); if (argc > 9) rng_state ^= U64(9) * 0x2545F4914F6CDD1DULL; wl_lookup(argv[2], argv[3], atoi(argv[4]), atol(argv[5]), atol(argv[6]), atof(argv[7]), argv[8]); }
  else if (!strcmp(cmd, "rm")) { NEED(4); wl_rm(argv[2], argv[3]); }
  else if (!strcmp(cmd, "calls")) { NEED(6); wl_calls(argv[2], argv[3], atol(argv[4]), atof(argv[5]), argc > 6 ? argv[6] : NULL); }
  else if (!strcmp(cmd, "locks")) { NEED(6); wl_locks(argv[2], atoi(argv[3]), atol(argv[4]), atof(argv[5])); }
  else if (!strcmp(cmd, "boot")) { NEED(8); wl_boot(argv[2], atol(argv[3]), atol(argv[4]), atol(argv[5]), atol(argv[6]), U64(7)); }
  else if (!strcmp(cmd, "mixed")) { NEED(10); wl_mixed(argv[2], argv[3], atoi(argv[4]), atof(argv[5]), argv[6], U64(7), argv[8], atol(argv[9])); }
  else usage();
  return errors_seen ? 1 : 0;
}
