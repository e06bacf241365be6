/*
 * locktool: byte-range and whole-file locks for the guest's lock tests (built static by
 * setup.sh; busybox has no fcntl lock applet).
 *
 *   locktool FILE OP [ARGS] [OP [ARGS]]...    runs the ops in order on one open of FILE
 *
 *   r|w START LEN    fcntl F_SETLK, read or write lock (LEN 0 = to end of file)
 *   R|W START LEN    fcntl F_SETLKW: blocks until granted
 *   u START LEN      fcntl unlock
 *   t r|w START LEN  fcntl F_GETLK: prints "free" or "held r|w START LEN"
 *   fx|fs|fX|fS|fu   flock(2): exclusive/shared non-blocking, exclusive/shared blocking, unlock
 *   touch PATH       creates PATH (tells another process "I got here")
 *   wait PATH        waits until PATH exists (at most 120 s)
 *   sleep MS
 *   hold             sleeps until killed
 *
 * Each op prints one line "OP: ok", "OP: EAGAIN" (or another errno name) and the time in ms on
 * CLOCK_MONOTONIC, which all processes of the guest share (so "granted N ms after that unlock"
 * can be read across processes). The exit status is 0 unless FILE cannot be opened or the
 * arguments are bad.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static long elapsed_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void report(const char *op, int rc) {
  if (rc == 0) printf("%s: ok (%ld ms)\n", op, elapsed_ms());
  else printf("%s: %s (%ld ms)\n", op, errno == EAGAIN || errno == EACCES ? "EAGAIN" : strerrorname_np(errno), elapsed_ms());
  fflush(stdout);
}

static int setlk(int fd, int cmd, short type, const char *start, const char *len) {
  struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = atoll(start), .l_len = atoll(len) };
  return fcntl(fd, cmd, &fl);
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: locktool FILE OP [ARGS]...\n"); return 2; }
  int fd = open(argv[1], O_RDWR | O_CREAT, 0666);
  if (fd < 0) fd = open(argv[1], O_RDONLY);
  if (fd < 0) { perror(argv[1]); return 1; }
  for (int i = 2; i < argc; i++) {
    const char *op = argv[i];
    char label[128];
    if (strchr("rwRWu", op[0]) && op[1] == 0 && i + 2 < argc) {
      short type = op[0] == 'u' ? F_UNLCK : (op[0] == 'r' || op[0] == 'R') ? F_RDLCK : F_WRLCK;
      int cmd = (op[0] == 'R' || op[0] == 'W') ? F_SETLKW : F_SETLK;
      snprintf(label, sizeof label, "%s %s %s", op, argv[i + 1], argv[i + 2]);
      report(label, setlk(fd, cmd, type, argv[i + 1], argv[i + 2]));
      i += 2;
    } else if (strcmp(op, "t") == 0 && i + 3 < argc) {
      struct flock fl = { .l_type = argv[i + 1][0] == 'w' ? F_WRLCK : F_RDLCK, .l_whence = SEEK_SET,
                          .l_start = atoll(argv[i + 2]), .l_len = atoll(argv[i + 3]) };
      snprintf(label, sizeof label, "t %s %s %s", argv[i + 1], argv[i + 2], argv[i + 3]);
      if (fcntl(fd, F_GETLK, &fl) != 0) report(label, -1);
      else if (fl.l_type == F_UNLCK) printf("%s: free (%ld ms)\n", label, elapsed_ms());
      else printf("%s: held %c %lld %lld (%ld ms)\n", label, fl.l_type == F_WRLCK ? 'w' : 'r', (long long)fl.l_start, (long long)fl.l_len, elapsed_ms());
      fflush(stdout);
      i += 3;
    } else if (op[0] == 'f' && op[1] != 0 && op[2] == 0) {
      int how = op[1] == 'x' ? LOCK_EX | LOCK_NB : op[1] == 's' ? LOCK_SH | LOCK_NB : op[1] == 'X' ? LOCK_EX : op[1] == 'S' ? LOCK_SH : LOCK_UN;
      report(op, flock(fd, how));
    } else if (strcmp(op, "touch") == 0 && i + 1 < argc) {
      int m = open(argv[++i], O_WRONLY | O_CREAT, 0666);
      if (m >= 0) close(m);
    } else if (strcmp(op, "wait") == 0 && i + 1 < argc) {
      const char *p = argv[++i];
      struct stat st;
      for (int n = 0; n < 1200 && stat(p, &st) != 0; n++) usleep(100000);
    } else if (strcmp(op, "sleep") == 0 && i + 1 < argc) {
      usleep(atol(argv[++i]) * 1000);
    } else if (strcmp(op, "hold") == 0) {
      for (;;) pause();
    } else {
      fprintf(stderr, "locktool: bad op '%s'\n", op);
      return 2;
    }
  }
  return 0;
}
