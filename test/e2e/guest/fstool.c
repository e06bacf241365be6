/*
 * fstool: what the guest's kernel-client tests need and busybox lacks (built static by
 * setup.sh):
 *
 *   fstool utimens PATH SEC NSEC   utimensat(2): atime and mtime to SEC.NSEC exactly
 *   fstool mtime PATH              prints the mtime as SEC.NSEC (nine digits), from lstat(2)
 *   fstool bind PATH               bind(2) of an AF_UNIX socket at PATH (the kernel client
 *                                  makes the socket file with an NFS MKNOD), then closes it
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
#include <unistd.h>

static int fail(const char *what) {
  perror(what);
  return 1;
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
  fprintf(stderr, "usage: fstool utimens PATH SEC NSEC | mtime PATH | bind PATH\n");
  return 2;
}
