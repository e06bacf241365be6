/*
 * walk URL: walk the whole export with libnfs (READDIRPLUS via nfs_opendir, LOOKUP+GETATTR via
 * nfs_lstat64, READLINK, READ) and print one canonical line per object:
 *   path \t type \t mode \t uid \t gid \t nlink \t size \t extra
 * extra = sha256 for files, the escaped target for symlinks, major:minor for devices, '-' else.
 * The root is '.', other paths are relative ("a/b"). Consistency problems between READDIRPLUS
 * and GETATTR (fileid/type differ, a name listed twice) are printed as lines starting "ERR\t".
 * tree.ts parses the same format from a local walk (the overlayfs oracle).
 */
#include "common.h"

static struct nfs_context *nfs;
static long objects;

static void print_obj(const char *rel, const char *abspath, struct nfs_stat_64 *st) {
  char t = type_char((unsigned)st->nfs_mode);
  esc_puts(stdout, rel);
  printf("\t%c\t%04o\t%llu\t%llu\t%llu\t%llu\t", t, (unsigned)(st->nfs_mode & 07777),
         (unsigned long long)st->nfs_uid, (unsigned long long)st->nfs_gid,
         (unsigned long long)st->nfs_nlink, (unsigned long long)st->nfs_size);
  if (t == 'f') {
    struct nfsfh *fh;
    if (nfs_open(nfs, abspath, O_RDONLY, &fh) != 0) { printf("OPENFAIL:%s\n", nfs_get_error(nfs)); return; }
    sha256_ctx c; sha256_init(&c);
    static char buf[1 << 20];
    uint64_t off = 0;
    for (int guard = 0; guard < 100000; guard++) {
      int n = nfs_pread(nfs, fh, off, sizeof buf, buf);
      if (n < 0) { printf("READFAIL:%s\n", nfs_get_error(nfs)); nfs_close(nfs, fh); return; }
      if (n == 0) break;
      sha256_update(&c, buf, (size_t)n);
      off += (uint64_t)n;
    }
    nfs_close(nfs, fh);
    char hex[65]; sha256_final(&c, hex);
    printf("%s\n", hex);
  } else if (t == 'l') {
    char target[4097];
    memset(target, 0, sizeof target);
    if (nfs_readlink(nfs, abspath, target, sizeof target - 1) != 0) { printf("READLINKFAIL:%s\n", nfs_get_error(nfs)); return; }
    esc_puts(stdout, target);
    printf("\n");
  } else if (t == 'c' || t == 'b') {
    printf("%llu:%llu\n", (unsigned long long)major(st->nfs_rdev), (unsigned long long)minor(st->nfs_rdev));
  } else printf("-\n");
}

static int cmpstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void walk(const char *rel, const char *abspath, int depth) {
  if (depth > 64) die("too deep at %s", abspath);
  struct nfsdir *d;
  if (nfs_opendir(nfs, abspath, &d) != 0) { printf("ERR\topendir\t"); esc_puts(stdout, rel); printf("\t%s\n", nfs_get_error(nfs)); return; }
  size_t cap = 64, n = 0;
  char **names = malloc(cap * sizeof *names);
  uint64_t *inos = malloc(cap * sizeof *inos);
  uint32_t *types = malloc(cap * sizeof *types);
  struct nfsdirent *e;
  while ((e = nfs_readdir(nfs, d)) != NULL) {
    if (!strcmp(e->name, ".") || !strcmp(e->name, "..")) continue;
    if (n == cap) { cap *= 2; names = realloc(names, cap * sizeof *names); inos = realloc(inos, cap * sizeof *inos); types = realloc(types, cap * sizeof *types); }
    names[n] = strdup(e->name); inos[n] = e->inode; types[n] = e->type; n++;
  }
  nfs_closedir(nfs, d);
  for (size_t i = 0; i < n; i++) {
    for (size_t j = i + 1; j < n; j++)
      if (!strcmp(names[i], names[j])) { printf("ERR\tduplicate\t"); esc_puts(stdout, rel); printf("/"); esc_puts(stdout, names[i]); printf("\n"); }
  }
  for (size_t i = 0; i < n; i++) {
    char *crel = malloc(strlen(rel) + strlen(names[i]) + 2);
    char *cabs = malloc(strlen(abspath) + strlen(names[i]) + 2);
    if (!strcmp(rel, ".")) strcpy(crel, names[i]); else sprintf(crel, "%s/%s", rel, names[i]);
    sprintf(cabs, "%s%s%s", abspath, strcmp(abspath, "/") ? "/" : "", names[i]);
    struct nfs_stat_64 st;
    if (nfs_lstat64(nfs, cabs, &st) != 0) {
      printf("ERR\tlstat\t"); esc_puts(stdout, crel); printf("\t%s\n", nfs_get_error(nfs));
    } else {
      objects++;
      if (st.nfs_ino != inos[i]) { printf("ERR\tfileid\t"); esc_puts(stdout, crel); printf("\treaddir=%llu getattr=%llu\n", (unsigned long long)inos[i], (unsigned long long)st.nfs_ino); }
      if (st.nfs_ino == 0) { printf("ERR\tfileid0\t"); esc_puts(stdout, crel); printf("\n"); }
      print_obj(crel, cabs, &st);
      if ((st.nfs_mode & S_IFMT) == S_IFDIR) walk(crel, cabs, depth + 1);
    }
    free(crel); free(cabs); free(names[i]);
  }
  free(names); free(inos); free(types);
  (void)cmpstr;
}

int main(int argc, char **argv) {
  if (argc < 2) die("usage: walk nfs://host/export[?...]");
  nfs = nfs_connect_url(argv[1]);
  struct nfs_stat_64 st;
  if (nfs_lstat64(nfs, "/", &st) != 0) die("stat root: %s", nfs_get_error(nfs));
  print_obj(".", "/", &st);
  walk(".", "/", 0);
  fprintf(stderr, "walked %ld objects\n", objects);
  nfs_umount(nfs);
  nfs_destroy_context(nfs);
  return 0;
}
