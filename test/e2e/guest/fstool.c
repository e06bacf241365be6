/*
 * fstool: what the guest's kernel-client tests need and busybox lacks (built static by
 * setup.sh):
 *
 *   fstool utimens PATH SEC NSEC   utimensat(2): atime and mtime to SEC.NSEC exactly
 *   fstool mtime PATH              prints the mtime as SEC.NSEC (nine digits), from lstat(2)
 *   fstool bind PATH               bind(2) of an AF_UNIX socket at PATH (the kernel client
 *                                  makes the socket file with an NFS MKNOD), then closes it
 *   fstool rename FROM TO          rename(2); prints how long the call took, in microseconds
 *   fstool treesum DIR meta|data   walks DIR (names sorted bytewise, no symlink followed) and
 *                                  prints "<objects> <bytes> <tree> <ids>": <tree> hashes each
 *                                  object's path, type and mode, owner, mtime to the
 *                                  nanosecond, a file's size and, with `data`, its bytes;
 *                                  <ids> hashes each path with its inode number (the NFS
 *                                  fileid). The host runs the same binary on a lower layer.
 *
 * Exit status 0 on success; otherwise the failing call and errno on stderr, status 1.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <dirent.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

static int fail(const char *what) {
  perror(what);
  return 1;
}

/* FNV-1a, 64-bit; file data a word at a time (the same binary computes both sides). */
static const uint64_t FNV_PRIME = 0x100000001b3ULL;

static uint64_t mix(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * FNV_PRIME;
  return h;
}

struct sums { uint64_t tree, ids; unsigned long long objects, bytes; int data; };

static int hash_file(struct sums *s, const char *path) {
  static unsigned char buf[1 << 20];
  int fd = open(path, O_RDONLY | O_NOFOLLOW);
  if (fd < 0) return fail(path);
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) { close(fd); return fail(path); }
    if (n == 0) break;
    size_t words = (size_t)n / 8;
    for (size_t i = 0; i < words; i++) {
      uint64_t w;
      memcpy(&w, buf + i * 8, 8);
      s->tree = (s->tree ^ w) * FNV_PRIME;
    }
    s->tree = mix(s->tree, buf + words * 8, (size_t)n % 8);
  }
  close(fd);
  return 0;
}

/* One object (rel: its path below the walked directory), then what it holds. */
static int walk(struct sums *s, const char *path, const char *rel) {
  struct stat st;
  if (lstat(path, &st) != 0) return fail(path);
  char line[8192];
  int n = snprintf(line, sizeof line, "%s %o %u:%u %lld.%09ld %lld\n", rel, (unsigned)st.st_mode, (unsigned)st.st_uid,
                   (unsigned)st.st_gid, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, S_ISREG(st.st_mode) ? (long long)st.st_size : 0LL);
  s->tree = mix(s->tree, line, (size_t)n);
  n = snprintf(line, sizeof line, "%s %llu\n", rel, (unsigned long long)st.st_ino);
  s->ids = mix(s->ids, line, (size_t)n);
  s->objects++;
  if (S_ISREG(st.st_mode)) {
    s->bytes += (unsigned long long)st.st_size;
    return s->data ? hash_file(s, path) : 0;
  }
  if (!S_ISDIR(st.st_mode)) return 0;
  struct dirent **names;
  int count = scandir(path, &names, NULL, alphasort);
  if (count < 0) return fail(path);
  int rc = 0;
  for (int i = 0; i < count; i++) {
    const char *nm = names[i]->d_name;
    if (rc == 0 && strcmp(nm, ".") != 0 && strcmp(nm, "..") != 0) {
      char sub[4096], subrel[4096];
      snprintf(sub, sizeof sub, "%s/%s", path, nm);
      snprintf(subrel, sizeof subrel, "%s/%s", rel, nm);
      rc = walk(s, sub, subrel);
    }
    free(names[i]);
  }
  free(names);
  return rc;
}

int main(int argc, char **argv) {
  if (argc == 5 && strcmp(argv[1], "utimens") == 0) {
    struct timespec ts[2];
    ts[0].tv_sec = ts[1].tv_sec = (time_t)strtoll(argv[3], NULL, 10);
    ts[0].tv_nsec = ts[1].tv_nsec = strtol(argv[4], NULL, 10);
    return utimensat(AT_FDCWD, argv[2], ts, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : fail("utimensat");
  }
  if (argc == 3 && strcmp(argv[1], "mtime") == 0) {
    struct stat st;
    if (lstat(argv[2], &st) != 0) return fail("lstat");
    printf("%lld.%09ld\n", (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    return 0;
  }
  if (argc == 3 && strcmp(argv[1], "bind") == 0) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(argv[2]) >= sizeof a.sun_path) return fail("path too long");
    strcpy(a.sun_path, argv[2]);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (s < 0) return fail("socket");
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0) return fail("bind");
    close(s);
    return 0;
  }
  if (argc == 4 && strcmp(argv[1], "rename") == 0) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    if (rename(argv[2], argv[3]) != 0) return fail("rename");
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%lld\n", (long long)(b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000);
    return 0;
  }
  if (argc == 4 && strcmp(argv[1], "treesum") == 0) {
    struct sums s = {.tree = 0xcbf29ce484222325ULL, .ids = 0xcbf29ce484222325ULL, .data = strcmp(argv[3], "data") == 0};
    if (walk(&s, argv[2], ".") != 0) return 1;
    printf("%llu %llu %016llx %016llx\n", s.objects, s.bytes, (unsigned long long)s.tree, (unsigned long long)s.ids);
    return 0;
  }
  fprintf(stderr, "usage: fstool utimens PATH SEC NSEC | mtime PATH | bind PATH | rename FROM TO | treesum DIR meta|data\n");
  return 2;
}
