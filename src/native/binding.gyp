{
  "targets": [
    {
      "target_name": "busy_poll",
      "sources": ["busy_poll.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    },
    {
      "target_name": "syscalls",
      "sources": ["syscalls.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
