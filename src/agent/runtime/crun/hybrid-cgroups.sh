#!/bin/sh
# hybrid-cgroups.sh UNIFIED_MOUNT PROGRAM [ARG...]
#
# crun refuses to run on a host with hybrid cgroups (v1 controllers plus a cgroup2 mount beside them).
# The agent runs this script as `unshare --mount --propagation private -- /bin/sh hybrid-cgroups.sh …`:
# in that private mount namespace it unmounts the cgroup2 mount (the host keeps it) and then becomes
# PROGRAM, which sees a pure v1 host. Pure v1 and pure v2 hosts never run this.
#
# This file is fixed: the agent passes every value as an argument and none is ever parsed as shell code.
set -u
umount -- "$1" || exit 125
shift
exec "$@"
