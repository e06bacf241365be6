/*
 * ops: execute a scripted sequence of file-system operations (one per stdin line) and print
 * one result line per operation. Built twice from this one source:
 *   - with libnfs:            ops nfs://127.0.0.1/union?nfsport=..&mountport=..
 *   - -DUNFS_POSIX_ONLY:      ops-posix /path/to/kernel/overlay/mount   (plain syscalls)
 * so the differential test runs the very same logic against our server and kernel overlayfs.
 *
 * Script (tokens separated by one space, names escaped like common.h esc_write, paths relative
 * to the export root):
 *   create P MODE | createx P MODE | write P OFF LEN SEED | append P LEN SEED | truncate P SIZE
 *   chmod P MODE | chown P UID GID | utimes P ATIME MTIME | mkdir P MODE | rmdir P
 *   symlink TARGET P | mkfifo P MODE | unlink P | rename A B | link A B | rmrf P
 *   cat P | stat P | ls P | readlink P | mtime P         (MODE in octal)
 * Output: "<n>\t<the op line>\tOK[\t<result>]" or "<n>\t<the op line>\tERR\t<errno name>".
 */
#include "common.h"
#include <dirent.h>

struct bstat { unsigned mode; unsigned long long uid, gid, nlink, size, mtime; };

#ifdef UNFS_POSIX_ONLY
typedef int bfile;
static int b_init(const char *root) { umask(0); return chdir(root) == 0 ? 0 : -errno; }
static const char *rp(const char *p) { return *p ? p : "."; }
static int b_open(const char *p, int flags, int mode, bfile *f) { int fd = open(rp(p), flags, mode); if (fd < 0) return -errno; *f = fd; return 0; }
static void b_close(bfile f) { close(f); }
static int b_pwrite(bfile f, uint64_t off, const void *buf, size_t n) { ssize_t r = pwrite(f, buf, n, (off_t)off); return r < 0 ? -errno : (int)r; }
static int b_pread(bfile f, uint64_t off, void *buf, size_t n) { ssize_t r = pread(f, buf, n, (off_t)off); return r < 0 ? -errno : (int)r; }
static int b_fsize(bfile f, uint64_t *size) { struct stat st; if (fstat(f, &st)) return -errno; *size = (uint64_t)st.st_size; return 0; }
#define SYS(x) ((x) == 0 ? 0 : -errno)
static int b_truncate(const char *p, uint64_t s) { return SYS(truncate(rp(p), (off_t)s)); }
static int b_chmod(const char *p, int m) { return SYS(chmod(rp(p), (mode_t)m)); }
static int b_lchown(const char *p, int u, int g) { return SYS(lchown(rp(p), (uid_t)u, (gid_t)g)); }
static int b_utimes(const char *p, struct timeval *tv) { return SYS(utimes(rp(p), tv)); }
static int b_mkdir(const char *p, int m) { return SYS(mkdir(rp(p), (mode_t)m)); }
static int b_rmdir(const char *p) { return SYS(rmdir(rp(p))); }
static int b_symlink(const char *t, const char *p) { return SYS(symlink(t, rp(p))); }
static int b_mkfifo(const char *p, int m) { return SYS(mknod(rp(p), S_IFIFO | (mode_t)m, 0)); }
static int b_unlink(const char *p) { return SYS(unlink(rp(p))); }
static int b_rename(const char *a, const char *b) { return SYS(rename(rp(a), rp(b))); }
static int b_link(const char *a, const char *b) { return SYS(link(rp(a), rp(b))); }
static int b_readlink(const char *p, char *buf, size_t n) { ssize_t r = readlink(rp(p), buf, n - 1); if (r < 0) return -errno; buf[r] = 0; return 0; }
static int b_lstat(const char *p, struct bstat *s) {
  struct stat st; if (lstat(rp(p), &st)) return -errno;
  s->mode = st.st_mode; s->uid = st.st_uid; s->gid = st.st_gid; s->nlink = st.st_nlink; s->size = (unsigned long long)st.st_size; s->mtime = (unsigned long long)st.st_mtime; return 0;
}
static int b_list(const char *p, char ***names, size_t *n) {
  DIR *d = opendir(rp(p)); if (!d) return -errno;
  size_t cap = 16; *n = 0; *names = malloc(cap * sizeof **names);
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    if (*n == cap) { cap *= 2; *names = realloc(*names, cap * sizeof **names); }
    (*names)[(*n)++] = strdup(e->d_name);
  }
  closedir(d); return 0;
}
#else
static struct nfs_context *nfs;
typedef struct nfsfh *bfile;
static char pbuf[4][8192];
static int pi;
static const char *rp(const char *p) { char *b = pbuf[pi++ & 3]; snprintf(b, sizeof pbuf[0], "/%s", p); return b; }
static int b_init(const char *url) { nfs = nfs_connect_url(url); return 0; }
static int b_open(const char *p, int flags, int mode, bfile *f) {
  if (flags & O_CREAT) return nfs_create(nfs, rp(p), flags, mode, f);
  return nfs_open(nfs, rp(p), flags, f);
}
static void b_close(bfile f) { nfs_close(nfs, f); }
/*
 * A WRITE sent raw (FILE_SYNC), so a refusal comes back as the server's status: libnfs's
 * nfs_pwrite answers every failed WRITE with -EFAULT.
 */
struct write_out { int status; uint32_t count; };
static void write_reply(void *user, void *data) {
  struct write_out *o = user;
  WRITE3res *r = data;
  o->status = r->status;
  if (r->status == NFS3_OK) o->count = r->WRITE3res_u.resok.count;
}
static int b_pwrite(bfile f, uint64_t off, const void *buf, size_t n) {
  struct drv_fh *h = (struct drv_fh *)nfs_get_fh(f);
  struct write_out o = {0};
  struct rawwait w = {0, 0, &o, write_reply};
  WRITE3args a;
  memset(&a, 0, sizeof a);
  a.file.data.data_len = (u_int)h->len;
  a.file.data.data_val = h->val;
  a.offset = off;
  a.count = (count3)n;
  a.stable = FILE_SYNC;
  a.data.data_len = (u_int)n;
  a.data.data_val = (char *)buf;
  if (rpc_nfs3_write_async(nfs_get_rpc_context(nfs), raw_cb, &a, &w) != 0) die("rpc_nfs3_write_async");
  raw_wait(nfs_get_rpc_context(nfs), &w);
  switch (o.status) {
    case NFS3_OK: return (int)o.count;
    case NFS3ERR_FBIG: return -EFBIG;
    case NFS3ERR_NOSPC: return -ENOSPC;
    case NFS3ERR_DQUOT: return -EDQUOT;
    case NFS3ERR_ACCES: return -EACCES;
    case NFS3ERR_PERM: return -EPERM;
    case NFS3ERR_ROFS: return -EROFS;
    case NFS3ERR_INVAL: return -EINVAL;
    case NFS3ERR_ISDIR: return -EISDIR;
    default: return -EIO;
  }
}
static int b_pread(bfile f, uint64_t off, void *buf, size_t n) { return nfs_pread(nfs, f, off, n, buf); }
static int b_fsize(bfile f, uint64_t *size) { struct nfs_stat_64 st; int r = nfs_fstat64(nfs, f, &st); if (r) return r; *size = st.nfs_size; return 0; }
static int b_truncate(const char *p, uint64_t s) { return nfs_truncate(nfs, rp(p), s); }
static int b_chmod(const char *p, int m) { return nfs_chmod(nfs, rp(p), m); }
static int b_lchown(const char *p, int u, int g) { return nfs_lchown(nfs, rp(p), u, g); }
static int b_utimes(const char *p, struct timeval *tv) { return nfs_utimes(nfs, rp(p), tv); }
static int b_mkdir(const char *p, int m) { return nfs_mkdir2(nfs, rp(p), m); }
static int b_rmdir(const char *p) { return nfs_rmdir(nfs, rp(p)); }
static int b_symlink(const char *t, const char *p) { return nfs_symlink(nfs, t, rp(p)); }
static int b_mkfifo(const char *p, int m) { return nfs_mknod(nfs, rp(p), S_IFIFO | m, 0); }
static int b_unlink(const char *p) { return nfs_unlink(nfs, rp(p)); }
static int b_rename(const char *a, const char *b) { return nfs_rename(nfs, rp(a), rp(b)); }
static int b_link(const char *a, const char *b) { return nfs_link(nfs, rp(a), rp(b)); }
static int b_readlink(const char *p, char *buf, size_t n) { memset(buf, 0, n); return nfs_readlink(nfs, rp(p), buf, (int)n - 1); }
static int b_lstat(const char *p, struct bstat *s) {
  struct nfs_stat_64 st; int r = nfs_lstat64(nfs, rp(p), &st); if (r) return r;
  s->mode = (unsigned)st.nfs_mode; s->uid = st.nfs_uid; s->gid = st.nfs_gid; s->nlink = st.nfs_nlink; s->size = st.nfs_size; s->mtime = st.nfs_mtime; return 0;
}
static int b_list(const char *p, char ***names, size_t *n) {
  struct nfsdir *d; int r = nfs_opendir(nfs, rp(p), &d); if (r) return r;
  size_t cap = 16; *n = 0; *names = malloc(cap * sizeof **names);
  struct nfsdirent *e;
  while ((e = nfs_readdir(nfs, d))) {
    if (!strcmp(e->name, ".") || !strcmp(e->name, "..")) continue;
    if (*n == cap) { cap *= 2; *names = realloc(*names, cap * sizeof **names); }
    (*names)[(*n)++] = strdup(e->name);
  }
  nfs_closedir(nfs, d); return 0;
}
#endif

static const char *errname(int e) {
  switch (e < 0 ? -e : e) {
#define E(x) case x: return #x;
    E(EPERM) E(ENOENT) E(EIO) E(ENXIO) E(EACCES) E(EEXIST) E(EXDEV) E(ENODEV) E(ENOTDIR) E(EISDIR)
    E(EINVAL) E(EFBIG) E(ENOSPC) E(EROFS) E(EMLINK) E(ENAMETOOLONG) E(ENOTEMPTY) E(ESTALE)
    E(EOPNOTSUPP) E(EAGAIN) E(EBUSY) E(ELOOP) E(EDQUOT) E(ETXTBSY) E(EBADF) E(EFAULT) E(ENOMEM)
#undef E
    default: { static char b[32]; snprintf(b, sizeof b, "errno%d", e < 0 ? -e : e); return b; }
  }
}

static void fill(unsigned char *b, size_t n, unsigned seed, uint64_t off) {
  for (size_t i = 0; i < n; i++) { uint64_t k = off + i; b[i] = (unsigned char)(seed * 131u + k * 7u + (k >> 8) + (k >> 16)); }
}

static int cmpstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int rmrf(const char *p, int depth) {
  struct bstat s;
  int r = b_lstat(p, &s);
  if (r) return r;
  if ((s.mode & S_IFMT) != S_IFDIR) return b_unlink(p);
  if (depth > 32) return -ELOOP;
  char **names; size_t n;
  if ((r = b_list(p, &names, &n))) return r;
  for (size_t i = 0; i < n; i++) {
    char *c = malloc(strlen(p) + strlen(names[i]) + 2);
    sprintf(c, "%s%s%s", p, *p ? "/" : "", names[i]);
    int rr = rmrf(c, depth + 1);
    if (rr && !r) r = rr;
    free(c); free(names[i]);
  }
  free(names);
  return r ? r : b_rmdir(p);
}

static int do_op(char **tok, int nt, char *res, size_t rn) {
  const char *op = tok[0];
  res[0] = 0;
  static unsigned char buf[1 << 20];
#define NEED(k) if (nt < (k) + 1) return -EINVAL
  if (!strcmp(op, "create") || !strcmp(op, "createx")) {
    NEED(2); bfile f;
    int fl = O_CREAT | O_WRONLY | O_TRUNC | (op[6] == 'x' ? O_EXCL : 0);
    int r = b_open(tok[1], fl, (int)strtol(tok[2], NULL, 8), &f);
    if (r) return r;
    b_close(f); return 0;
  }
  if (!strcmp(op, "write") || !strcmp(op, "append")) {
    int app = op[0] == 'a';
    NEED(app ? 3 : 4); bfile f;
    int r = b_open(tok[1], O_WRONLY, 0, &f);
    if (r) return r;
    uint64_t off = 0;
    if (app) { r = b_fsize(f, &off); if (r) { b_close(f); return r; } }
    else off = strtoull(tok[2], NULL, 10);
    size_t len = strtoull(tok[app ? 2 : 3], NULL, 10);
    unsigned seed = (unsigned)strtoul(tok[app ? 3 : 4], NULL, 10);
    while (len > 0 && r >= 0) {
      size_t k = len > sizeof buf ? sizeof buf : len;
      fill(buf, k, seed, off);
      r = b_pwrite(f, off, buf, k);
      if (r >= 0 && (size_t)r != k) r = -EIO;
      off += k; len -= k;
    }
    b_close(f); return r < 0 ? r : 0;
  }
  if (!strcmp(op, "truncate")) { NEED(2); return b_truncate(tok[1], strtoull(tok[2], NULL, 10)); }
  if (!strcmp(op, "chmod")) { NEED(2); return b_chmod(tok[1], (int)strtol(tok[2], NULL, 8)); }
  if (!strcmp(op, "chown")) { NEED(3); return b_lchown(tok[1], atoi(tok[2]), atoi(tok[3])); }
  if (!strcmp(op, "utimes")) {
    NEED(3); struct timeval tv[2] = {{atol(tok[2]), 0}, {atol(tok[3]), 0}};
    return b_utimes(tok[1], tv);
  }
  if (!strcmp(op, "mkdir")) { NEED(2); return b_mkdir(tok[1], (int)strtol(tok[2], NULL, 8)); }
  if (!strcmp(op, "rmdir")) { NEED(1); return b_rmdir(tok[1]); }
  if (!strcmp(op, "symlink")) { NEED(2); return b_symlink(tok[1], tok[2]); }
  if (!strcmp(op, "mkfifo")) { NEED(2); return b_mkfifo(tok[1], (int)strtol(tok[2], NULL, 8)); }
  if (!strcmp(op, "unlink")) { NEED(1); return b_unlink(tok[1]); }
  if (!strcmp(op, "rename")) { NEED(2); return b_rename(tok[1], tok[2]); }
  if (!strcmp(op, "link")) { NEED(2); return b_link(tok[1], tok[2]); }
  if (!strcmp(op, "rmrf")) { NEED(1); return rmrf(tok[1], 0); }
  if (!strcmp(op, "readlink")) {
    NEED(1); char t[4096]; int r = b_readlink(tok[1], t, sizeof t);
    if (r) return r;
    snprintf(res, rn, "%s", t); return 0;
  }
  if (!strcmp(op, "stat")) {
    NEED(1); struct bstat s; int r = b_lstat(tok[1], &s);
    if (r) return r;
    int d = (s.mode & S_IFMT) == S_IFDIR;
    /* directory size and nlink are not comparable with overlayfs (see tree.ts) */
    snprintf(res, rn, "%c %04o %llu %llu size=%llu nlink=%llu", type_char(s.mode), s.mode & 07777, s.uid, s.gid, d ? 0ULL : s.size, d ? 0ULL : s.nlink);
    return 0;
  }
  if (!strcmp(op, "mtime")) {
    NEED(1); struct bstat s; int r = b_lstat(tok[1], &s);
    if (r) return r;
    snprintf(res, rn, "%llu", s.mtime); return 0;
  }
  if (!strcmp(op, "cat")) {
    NEED(1); bfile f; int r = b_open(tok[1], O_RDONLY, 0, &f);
    if (r) return r;
    sha256_ctx c; sha256_init(&c);
    uint64_t off = 0;
    for (int g = 0; g < 10000; g++) {
      r = b_pread(f, off, buf, sizeof buf);
      if (r <= 0) break;
      sha256_update(&c, buf, (size_t)r); off += (uint64_t)r;
    }
    b_close(f);
    if (r < 0) return r;
    char hex[65]; sha256_final(&c, hex);
    snprintf(res, rn, "%llu %s", (unsigned long long)off, hex);
    return 0;
  }
  if (!strcmp(op, "ls")) {
    NEED(1); char **names; size_t n; int r = b_list(tok[1], &names, &n);
    if (r) return r;
    qsort(names, n, sizeof *names, cmpstr);
    size_t o = 0;
    for (size_t i = 0; i < n && o + 2 < rn; i++) { o += (size_t)snprintf(res + o, rn - o, "%s%s", i ? "," : "", names[i]); free(names[i]); }
    free(names);
    return 0;
  }
  return -EINVAL;
}

int main(int argc, char **argv) {
  if (argc < 2) die("usage: ops <nfs-url | overlay-mount-dir>  < script");
  int r = b_init(argv[1]);
  if (r) die("init %s: %s", argv[1], strerror(-r));
  static char line[16384], orig[16384], res[65536];
  int n = 0;
  while (fgets(line, sizeof line, stdin)) {
    size_t l = strlen(line);
    while (l && (line[l - 1] == '\n' || line[l - 1] == '\r')) line[--l] = 0;
    if (!l || line[0] == '#') continue;
    strcpy(orig, line);
    char *tok[8]; int nt = 0;
    for (char *s = strtok(line, " "); s && nt < 8; s = strtok(NULL, " ")) { unesc(s); tok[nt++] = s; }
    r = do_op(tok, nt, res, sizeof res);
    printf("%d\t%s\t", ++n, orig);
    if (r) printf("ERR\t%s\n", errname(r));
    else if (res[0]) { printf("OK\t"); esc_puts(stdout, res); printf("\n"); }
    else printf("OK\n");
    fflush(stdout);
  }
  return 0;
}
