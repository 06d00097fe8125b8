#!/bin/bash
# Runs a command on a namespace test host (hosts.sh): its network namespace, its own
# hostname (UTS namespace) and its node-local folder bound on $MN_BASE/node.
# usage: on_host.sh HOST CMD...
host=$1
shift
exec ip netns exec "${MN_PREFIX:?}$host" unshare --uts --mount sh -c \
    'hostname "$1" && mount --bind "$2" "$3" && shift 3 && exec "$@"' \
    sh "$host" "${MN_BASE:?}/$host" "$MN_BASE/node" "$@"
