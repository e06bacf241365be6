# Shell helpers for scripts that run inside the e2e guest (busybox sh). guest.ts prepends this
# file to every script it runs.
#
#   check NAME CMD...     run CMD; records "ok NAME" or "not ok NAME" (+ its output) in
#                         /results/checks; never aborts the script
#   expect_fail NAME CMD  like check, but CMD must fail
#   host_call NAME        ask the host driver to run its hook NAME (e.g. restart the server)
#                         and wait until it is done; prints the hook's reply
#   note TEXT             a line in the output

CHECKS=/results/checks
: >"$CHECKS"

note() { echo "# $*"; }

check() {
  _name=$1
  shift
  _out=$("$@" 2>&1)
  _rc=$?
  if [ $_rc -eq 0 ]; then
    echo "ok $_name" >>"$CHECKS"
    echo "ok $_name"
  else
    echo "not ok $_name (exit $_rc)" >>"$CHECKS"
    echo "$_out" | head -n 20 | sed 's/^/    /' >>"$CHECKS"
    echo "not ok $_name (exit $_rc)"
    echo "$_out" | head -n 20 | sed 's/^/    /'
  fi
  return 0
}

expect_fail() {
  _name=$1
  shift
  if "$@" >/tmp/.expect_fail 2>&1; then
    echo "not ok $_name (succeeded, expected failure)" >>"$CHECKS"
    echo "not ok $_name (succeeded, expected failure)"
  else
    echo "ok $_name" >>"$CHECKS"
    echo "ok $_name"
  fi
  return 0
}

host_call() {
  rm -f "/results/.reply-$1"
  echo "@@host-call $1" >/dev/console
  _n=0
  while [ ! -e "/results/.reply-$1" ]; do
    sleep 0.2
    _n=$((_n + 1))
    if [ $_n -gt 600 ]; then
      echo "host_call $1: no reply after 120 s"
      return 1
    fi
  done
  cat "/results/.reply-$1"
}
