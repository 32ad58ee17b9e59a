#!/bin/sh
# monitor.sh EXIT_FILE PROGRAM [ARG...]
#
# Ward's instance monitor. It runs PROGRAM (for CrunRuntime: `crun run` in the foreground, the parent of
# the container) and, when it ends, writes its exit status to EXIT_FILE (via a rename, so a reader sees
# the whole number or nothing). The agent starts it in a session of its own, so the instance and this
# record outlive an agent restart; the agent reads the file instead of waiting for a child it may no
# longer have.
#
# This file is fixed: the agent passes every value as an argument and none is ever parsed as shell code.
set -u
exit_file=$1
shift
# A handler, not SIG_IGN: an ignored signal would be inherited as ignored by PROGRAM, a handler is reset
# by exec. It keeps a stray signal to this process group from losing the exit status.
trap ':' HUP INT QUIT TERM USR1 USR2
"$@"
status=$?
printf '%s\n' "$status" >"$exit_file.tmp" && mv -f "$exit_file.tmp" "$exit_file"
exit "$status"
