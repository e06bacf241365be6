/*
 * race: two NFS calls in flight together on one connection, ROUNDS times (issue 12), through
 * libnfs's raw RPC layer: both requests are written before either reply is read, so the
 * server has both at once (libnfs's high-level calls add lookups that let the first finish).
 *
 *   race URL KIND ROUNDS
 *
 * Round i works on /f<i> (a lower-only file) or /d<i> (a lower-only empty directory) that the
 * test made, and prints one line "<i> <nfsstat3 of the first call> <nfsstat3 of the second>":
 *   write-remove   WRITE "new data" at 100 of /f<i>, and REMOVE /f<i>
 *   write-rename   WRITE "new data" at 100 of /f<i>, and RENAME /f<i> to /h<i>
 *   write-write    WRITE "new data" at 100 and "more new" at 4 MiB of /f<i>
 *   setattr-write  SETATTR size 0 of /f<i>, and WRITE "new" at 0 of it
 *   rmdir-create   RMDIR /d<i>, and CREATE /d<i>/x
 */
#include "common.h"
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

struct done { int finished; int status; };

/* Every nfsstat3 leads its result. */
static void cb(struct rpc_context *rpc, int status, void *data, void *priv) {
  (void)rpc;
  struct done *d = priv;
  d->finished = 1;
  d->status = status == RPC_STATUS_SUCCESS ? *(int *)data : RAW_RPC_ERROR;
}

static void wait_both(struct rpc_context *rpc, struct done *a, struct done *b) {
  for (int spins = 0; !(a->finished && b->finished); spins++) {
    struct pollfd p = {.fd = rpc_get_fd(rpc), .events = (short)rpc_which_events(rpc)};
    int r = poll(&p, 1, 100);
    if (r < 0 && errno != EINTR) die("poll: %s", strerror(errno));
    if (rpc_service(rpc, r > 0 ? p.revents : 0) < 0) die("rpc_service: %s", rpc_get_error(rpc));
    if (spins > 1200) die("calls not answered within 120 s");
  }
}

static nfs_fh3 fh3(unsigned char *v, size_t n) {
  nfs_fh3 h;
  h.data.data_len = (u_int)n;
  h.data.data_val = (char *)v;
  return h;
}

static WRITE3args write_args(nfs_fh3 f, uint64_t off, const char *data) {
  WRITE3args a;
  memset(&a, 0, sizeof a);
  a.file = f;
  a.offset = off;
  a.count = (count3)strlen(data);
  a.stable = UNSTABLE;
  a.data.data_len = (u_int)strlen(data);
  a.data.data_val = (char *)data;
  return a;
}

int main(int argc, char **argv) {
  if (argc != 4) die("usage: race URL write-remove|write-rename|write-write|setattr-write|rmdir-create ROUNDS");
  struct nfs_context *nfs = nfs_connect_url(argv[1]);
  struct rpc_context *rpc = nfs_get_rpc_context(nfs);
  /* Without it, Nagle holds the second (small) request until the first one's reply ACKs it. */
  int one = 1;
  if (setsockopt(rpc_get_fd(rpc), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) die("TCP_NODELAY: %s", strerror(errno));
  const char *kind = argv[2];
  int rounds = atoi(argv[3]);
  unsigned char root[64];
  size_t rootlen = path_fh(nfs, "/", root);
  nfs_fh3 r = fh3(root, rootlen);
  for (int i = 0; i < rounds; i++) {
    char f[32], h[32], d[32];
    snprintf(f, sizeof f, "f%d", i);
    snprintf(h, sizeof h, "h%d", i);
    snprintf(d, sizeof d, "d%d", i);
    struct done a = {0, 0}, b = {0, 0};
    int rc;
    if (!strcmp(kind, "rmdir-create")) {
      struct lookup_out dir = raw_lookup(rpc, root, rootlen, d, strlen(d));
      if (dir.status != 0) die("LOOKUP %s: %d", d, dir.status);
      RMDIR3args ra = {.object = {.dir = r, .name = d}};
      CREATE3args ca;
      memset(&ca, 0, sizeof ca);
      ca.where.dir = fh3(dir.fh, dir.fhlen);
      ca.where.name = "x";
      ca.how.mode = UNCHECKED;
      ca.how.createhow3_u.obj_attributes.mode.set_it = 1;
      ca.how.createhow3_u.obj_attributes.mode.set_mode3_u.mode = 0644;
      rc = rpc_nfs3_rmdir_async(rpc, cb, &ra, &a) | rpc_nfs3_create_async(rpc, cb, &ca, &b);
    } else {
      struct lookup_out file = raw_lookup(rpc, root, rootlen, f, strlen(f));
      if (file.status != 0) die("LOOKUP %s: %d", f, file.status);
      nfs_fh3 fh = fh3(file.fh, file.fhlen);
      WRITE3args w1 = write_args(fh, 100, "new data");
      if (!strcmp(kind, "write-remove")) {
        REMOVE3args ra = {.object = {.dir = r, .name = f}};
        rc = rpc_nfs3_write_async(rpc, cb, &w1, &a) | rpc_nfs3_remove_async(rpc, cb, &ra, &b);
      } else if (!strcmp(kind, "write-rename")) {
        RENAME3args ra = {.from = {.dir = r, .name = f}, .to = {.dir = r, .name = h}};
        rc = rpc_nfs3_write_async(rpc, cb, &w1, &a) | rpc_nfs3_rename_async(rpc, cb, &ra, &b);
      } else if (!strcmp(kind, "write-write")) {
        WRITE3args w2 = write_args(fh, 4 << 20, "more new");
        rc = rpc_nfs3_write_async(rpc, cb, &w1, &a) | rpc_nfs3_write_async(rpc, cb, &w2, &b);
      } else if (!strcmp(kind, "setattr-write")) {
        SETATTR3args sa;
        memset(&sa, 0, sizeof sa);
        sa.object = fh;
        sa.new_attributes.size.set_it = 1;
        sa.new_attributes.size.set_size3_u.size = 0;
        WRITE3args w0 = write_args(fh, 0, "new");
        rc = rpc_nfs3_setattr_async(rpc, cb, &sa, &a) | rpc_nfs3_write_async(rpc, cb, &w0, &b);
      } else {
        die("unknown kind %s", kind);
      }
    }
    if (rc != 0) die("queueing the calls: %s", rpc_get_error(rpc));
    wait_both(rpc, &a, &b);
    printf("%d %d %d\n", i, a.status, b.status);
    fflush(stdout);
  }
  nfs_destroy_context(nfs);
  return 0;
}
