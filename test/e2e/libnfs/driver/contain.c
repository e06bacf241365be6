/*
 * contain URL: containment checks with raw NFSv3 calls (libnfs normalises paths client-side,
 * so hostile names are sent as raw LOOKUP arguments). Prints "PASS name detail" or
 * "FAIL name detail" per check; the export must hold the standard layers (layers.ts):
 * up-link -> ../../../etc/passwd, abs-link -> /etc/passwd, dir-link -> a, a/f1.
 */
#include "common.h"

static int fails;
static void check(int ok, const char *name, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("%s %s ", ok ? "PASS" : "FAIL", name);
  vprintf(fmt, ap);
  printf("\n");
  va_end(ap);
  if (!ok) fails++;
}

int main(int argc, char **argv) {
  if (argc < 2) die("usage: contain URL");
  struct nfs_context *nfs = nfs_connect_url(argv[1]);
  struct rpc_context *rpc = nfs_get_rpc_context(nfs);
  unsigned char root[64], a[64];
  size_t rootlen = path_fh(nfs, "/", root);
  size_t alen = path_fh(nfs, "/a", a);
  struct getattr_out rga = raw_getattr(rpc, root, rootlen);
  if (rga.status != NFS3_OK) die("GETATTR root: %d", rga.status);
  struct getattr_out aga = raw_getattr(rpc, a, alen);

  /* LOOKUP of a symlink returns the symlink itself, never its target. */
  const char *links[] = {"up-link", "abs-link", "dir-link", "dangling"};
  for (int i = 0; i < 4; i++) {
    struct lookup_out l = raw_lookup(rpc, root, rootlen, links[i], strlen(links[i]));
    int ok = l.status == NFS3_OK;
    struct getattr_out g = {0};
    if (ok) g = raw_getattr(rpc, l.fh, l.fhlen);
    check(ok && g.status == NFS3_OK && g.type == NF3LNK && (!l.has_attr || l.type == NF3LNK), links[i],
          "LOOKUP status=%d type(lookup)=%u type(getattr)=%u (want symlink, 5)", l.status, l.type, g.type);
    /* LOOKUP through the symlink's handle must not follow it. */
    if (ok) {
      struct lookup_out th = raw_lookup(rpc, l.fh, l.fhlen, "f1", 2);
      check(th.status != NFS3_OK, "lookup-through-symlink", "%s/f1 status=%d (want NOTDIR)", links[i], th.status);
      struct lookup_out pw = raw_lookup(rpc, l.fh, l.fhlen, "passwd", 6);
      check(pw.status != NFS3_OK, "lookup-through-symlink", "%s/passwd status=%d", links[i], pw.status);
    }
  }

  /* Names a client must not be able to use to leave the directory. */
  const char *bad[] = {"a/f1", "a/../../etc", "../etc", "../../../../etc/passwd", "/etc/passwd", "/", "a/", "etc/passwd"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    struct lookup_out l = raw_lookup(rpc, root, rootlen, bad[i], strlen(bad[i]));
    check(l.status != NFS3_OK, "slash-name", "LOOKUP(root, \"%s\") status=%d fileid=%llu (want an error)", bad[i], l.status, (unsigned long long)l.fileid);
  }

  /* ".." of the export root stays at the root (or fails); ".." of a is the root; "." is itself. */
  struct lookup_out up = raw_lookup(rpc, root, rootlen, "..", 2);
  if (up.status == NFS3_OK) {
    struct getattr_out g = raw_getattr(rpc, up.fh, up.fhlen);
    check(g.status == NFS3_OK && g.fileid == rga.fileid, "dotdot-root", "LOOKUP(root, \"..\") fileid=%llu root=%llu", (unsigned long long)g.fileid, (unsigned long long)rga.fileid);
  } else check(1, "dotdot-root", "LOOKUP(root, \"..\") refused with %d", up.status);
  struct lookup_out upa = raw_lookup(rpc, a, alen, "..", 2);
  if (upa.status == NFS3_OK) {
    struct getattr_out g = raw_getattr(rpc, upa.fh, upa.fhlen);
    check(g.fileid == rga.fileid, "dotdot-a", "LOOKUP(a, \"..\") fileid=%llu root=%llu", (unsigned long long)g.fileid, (unsigned long long)rga.fileid);
  } else check(1, "dotdot-a", "LOOKUP(a, \"..\") refused with %d", upa.status);
  struct lookup_out dot = raw_lookup(rpc, a, alen, ".", 1);
  if (dot.status == NFS3_OK) {
    struct getattr_out g = raw_getattr(rpc, dot.fh, dot.fhlen);
    check(g.fileid == aga.fileid, "dot", "LOOKUP(a, \".\") fileid=%llu a=%llu", (unsigned long long)g.fileid, (unsigned long long)aga.fileid);
  } else check(1, "dot", "LOOKUP(a, \".\") refused with %d", dot.status);

  /* Over-long components: NAMETOOLONG (63) or another error, never a hit. */
  char longname[1100];
  memset(longname, 'x', sizeof longname - 1);
  longname[sizeof longname - 1] = 0;
  struct lookup_out ln = raw_lookup(rpc, root, rootlen, longname, 256);
  check(ln.status != NFS3_OK, "name-256", "status=%d (want NAMETOOLONG 63)", ln.status);
  struct lookup_out ln2 = raw_lookup(rpc, root, rootlen, longname, 1099);
  check(ln2.status != NFS3_OK, "name-1099", "status=%d", ln2.status);
  /* The 255-byte name that exists in hostile/ is found. */
  unsigned char hfh[64];
  size_t hlen = path_fh(nfs, "/hostile", hfh);
  struct lookup_out l255 = raw_lookup(rpc, hfh, hlen, longname, 255);
  check(l255.status == NFS3_OK, "name-255", "status=%d (a 255-byte name exists)", l255.status);

  /* Path-level: libnfs paths with .. must not reach the real /etc/passwd. */
  const char *paths[] = {"/../../../etc/passwd", "/a/../../etc/passwd", "/up-link", "/abs-link"};
  for (int i = 0; i < 4; i++) {
    struct nfsfh *fh;
    int r = nfs_open(nfs, paths[i], O_RDONLY, &fh);
    char buf[64] = {0};
    int n = 0;
    if (r == 0) { n = nfs_pread(nfs, fh, 0, 32, buf); nfs_close(nfs, fh); }
    check(!(r == 0 && n > 4 && !strncmp(buf, "root:", 5)), "path-escape", "open(%s) r=%d read=%d", paths[i], r, n);
  }
  /* READLINK returns the stored target unresolved. */
  char target[256] = {0};
  int rl = nfs_readlink(nfs, "/up-link", target, sizeof target - 1);
  check(rl == 0 && !strcmp(target, "../../../etc/passwd"), "readlink", "up-link -> '%s' (r=%d)", target, rl);

  printf("%d failures\n", fails);
  nfs_umount(nfs);
  nfs_destroy_context(nfs);
  return 0;
}
