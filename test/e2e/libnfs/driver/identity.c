/*
 * identity: file handle, fileid and cookie checks with raw NFSv3 calls over libnfs.
 *   identity handle URL PATH            -> "FH <hex> FILEID <n> TYPE <t>"   (handle libnfs got for PATH)
 *   identity getattr URL HEX            -> "STATUS <s> FILEID <n> TYPE <t> MODE <o> SIZE <n>"
 *   identity fuzz URL N SEED            -> mutates handles of the root's entries N times; GETATTR
 *                                          of each must fail (BADHANDLE/STALE) or give the SAME
 *                                          fileid; prints counters and "WRONG ..." lines
 *   identity walk URL DIRPATH MAXPAGES COOKIE VERFHEX DELAYUS
 *                                       -> READDIRPLUS pages from COOKIE: "E <name> <cookie> <fileid>"
 *                                          per entry, then "STOP <cookie> <verfhex> <eof>"
 * Walk also prints "ERR ..." when an entry's attributes disagree with its fileid.
 */
#include "common.h"

static struct nfs_context *nfs;
static struct rpc_context *rpc;

static void cmd_handle(const char *path) {
  unsigned char fh[64];
  size_t n = path_fh(nfs, path, fh);
  struct getattr_out g = raw_getattr(rpc, fh, n);
  printf("FH ");
  hex_write(stdout, fh, n);
  printf(" FILEID %llu TYPE %u STATUS %d\n", (unsigned long long)g.fileid, g.type, g.status);
}

static void cmd_getattr(const char *hex) {
  unsigned char fh[128];
  size_t n = hex_decode(hex, fh, sizeof fh);
  struct getattr_out g = raw_getattr(rpc, fh, n);
  printf("STATUS %d FILEID %llu TYPE %u MODE %o SIZE %llu\n", g.status, (unsigned long long)g.fileid, g.type, g.mode & 07777, (unsigned long long)g.size);
}

static uint64_t rng_state;
static uint64_t rnd(void) { rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17; return rng_state; }

static void cmd_fuzz(long count, uint64_t seed) {
  enum { MAXH = 64 };
  unsigned char fh[MAXH][64];
  size_t len[MAXH];
  uint64_t ids[MAXH];
  int nh = 0;
  len[0] = path_fh(nfs, "/", fh[0]);
  ids[0] = raw_getattr(rpc, fh[0], len[0]).fileid;
  nh = 1;
  struct nfsdir *d;
  if (nfs_opendir(nfs, "/", &d) != 0) die("opendir /: %s", nfs_get_error(nfs));
  struct nfsdirent *e;
  while ((e = nfs_readdir(nfs, d)) && nh < MAXH) {
    if (!strcmp(e->name, ".") || !strcmp(e->name, "..")) continue;
    struct lookup_out l = raw_lookup(rpc, fh[0], len[0], e->name, strlen(e->name));
    if (l.status != NFS3_OK) continue;
    memcpy(fh[nh], l.fh, l.fhlen); len[nh] = l.fhlen;
    ids[nh] = raw_getattr(rpc, l.fh, l.fhlen).fileid;
    nh++;
  }
  nfs_closedir(nfs, d);
  rng_state = seed * 2654435761u + 88172645463325252ull;
  raw_soft = 1;
  long same = 0, badhandle = 0, stale = 0, other = 0, wrong = 0, unchanged = 0, rpcerr = 0;
  int others[8] = {0}, otherst[8] = {0};
  for (long i = 0; i < count; i++) {
    int h = (int)(rnd() % (uint64_t)nh);
    unsigned char m[80];
    size_t n = len[h];
    memcpy(m, fh[h], n);
    int kind = (int)(rnd() % 10);
    if (kind < 5) { size_t bit = rnd() % (n * 8); m[bit / 8] ^= (unsigned char)(1u << (bit % 8)); }
    else if (kind < 8) { size_t at = rnd() % n; unsigned char v; do v = (unsigned char)rnd(); while (v == m[at]); m[at] = v; }
    else if (kind == 8) { n = rnd() % n; }                       /* truncated */
    else { size_t extra = 1 + rnd() % 16; for (size_t k = 0; k < extra && n < 64; k++) m[n++] = (unsigned char)rnd(); } /* extended */
    if (n == len[h] && !memcmp(m, fh[h], n)) { unchanged++; continue; }
    struct getattr_out g = raw_getattr(rpc, m, n);
    if (g.status == RAW_RPC_ERROR) {
      printf("RPCERR len=%zu %s\n", n, rpc_get_error(rpc));
      if (rpcerr++ > 20) die("too many RPC-level errors");
    }
    if (g.status == NFS3_OK) {
      if (g.fileid == ids[h]) same++;
      else {
        wrong++;
        printf("WRONG mutated handle of fileid %llu resolved to fileid %llu: ", (unsigned long long)ids[h], (unsigned long long)g.fileid);
        hex_write(stdout, m, n);
        printf(" (original ");
        hex_write(stdout, fh[h], len[h]);
        printf(")\n");
      }
    } else if (g.status == NFS3ERR_BADHANDLE) badhandle++;
    else if (g.status == NFS3ERR_STALE) stale++;
    else {
      other++;
      for (int k = 0; k < 8; k++) if (otherst[k] == g.status || !others[k]) { otherst[k] = g.status; others[k]++; break; }
    }
  }
  printf("HANDLES %d TRIED %ld SAME %ld BADHANDLE %ld STALE %ld OTHER %ld WRONG %ld UNCHANGED %ld\n", nh, count - unchanged, same, badhandle, stale, other, wrong, unchanged);
  for (int k = 0; k < 8 && others[k]; k++) printf("OTHERSTATUS %d x%d\n", otherst[k], others[k]);
}

struct rdp_out { int status; int eof; uint64_t last; char verf[8]; long n; long errs; };
static void rdp_reply(void *user, void *data) {
  struct rdp_out *o = user;
  READDIRPLUS3res *r = data;
  o->status = r->status;
  if (r->status != NFS3_OK) return;
  memcpy(o->verf, r->READDIRPLUS3res_u.resok.cookieverf, 8);
  o->eof = r->READDIRPLUS3res_u.resok.reply.eof;
  for (entryplus3 *e = r->READDIRPLUS3res_u.resok.reply.entries; e; e = e->nextentry) {
    o->last = e->cookie;
    o->n++;
    if (!strcmp(e->name, ".") || !strcmp(e->name, "..")) continue;
    printf("E ");
    esc_puts(stdout, e->name);
    printf(" %llu %llu\n", (unsigned long long)e->cookie, (unsigned long long)e->fileid);
    if (e->name_attributes.attributes_follow && e->name_attributes.post_op_attr_u.attributes.fileid != e->fileid) {
      printf("ERR fileid of ");
      esc_puts(stdout, e->name);
      printf(" entry=%llu attr=%llu\n", (unsigned long long)e->fileid, (unsigned long long)e->name_attributes.post_op_attr_u.attributes.fileid);
      o->errs++;
    }
    if (e->fileid == 0) { printf("ERR fileid 0\n"); o->errs++; }
  }
}

static void cmd_walk(const char *dir, long maxpages, uint64_t cookie, const char *verfhex, long delayus) {
  unsigned char fh[64];
  size_t n = path_fh(nfs, dir, fh);
  char verf[8] = {0};
  hex_decode(verfhex, (unsigned char *)verf, 8);
  int eof = 0;
  long pages = 0;
  for (; !eof && (maxpages == 0 || pages < maxpages) && pages < 1000000; pages++) {
    struct rdp_out o = {0};
    o.last = cookie;
    struct rawwait w = {0, 0, &o, rdp_reply};
    READDIRPLUS3args a;
    memset(&a, 0, sizeof a);
    a.dir.data.data_len = (u_int)n;
    a.dir.data.data_val = (char *)fh;
    a.cookie = cookie;
    memcpy(a.cookieverf, verf, 8);
    a.dircount = 4096;
    a.maxcount = 16384;
    if (rpc_nfs3_readdirplus_async(rpc, raw_cb, &a, &w) != 0) die("rpc_nfs3_readdirplus_async");
    raw_wait(rpc, &w);
    if (o.status != NFS3_OK) { printf("ERR READDIRPLUS status %d at cookie %llu\n", o.status, (unsigned long long)cookie); break; }
    if (o.n == 0 && !o.eof) { printf("ERR empty page without eof at cookie %llu\n", (unsigned long long)cookie); break; }
    cookie = o.last;
    memcpy(verf, o.verf, 8);
    eof = o.eof;
    if (delayus > 0) usleep((useconds_t)delayus);
  }
  printf("STOP %llu ", (unsigned long long)cookie);
  hex_write(stdout, (unsigned char *)verf, 8);
  printf(" %d %ld\n", eof, pages);
}

int main(int argc, char **argv) {
  if (argc < 3) die("usage: identity handle|getattr|fuzz|walk URL ...");
  nfs = nfs_connect_url(argv[2]);
  rpc = nfs_get_rpc_context(nfs);
  if (!strcmp(argv[1], "handle") && argc >= 4) cmd_handle(argv[3]);
  else if (!strcmp(argv[1], "getattr") && argc >= 4) cmd_getattr(argv[3]);
  else if (!strcmp(argv[1], "fuzz") && argc >= 5) cmd_fuzz(atol(argv[3]), strtoull(argv[4], NULL, 10));
  else if (!strcmp(argv[1], "walk") && argc >= 8) cmd_walk(argv[3], atol(argv[4]), strtoull(argv[5], NULL, 10), argv[6], atol(argv[7]));
  else die("bad arguments");
  fflush(stdout);
  nfs_umount(nfs);
  nfs_destroy_context(nfs);
  return 0;
}
