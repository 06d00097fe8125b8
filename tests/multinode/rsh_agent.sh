#!/bin/bash
# Open MPI's plm_rsh_agent for the namespace test hosts (hosts.sh): called as
# `rsh_agent.sh [options] HOST COMMAND...`, runs COMMAND with sh on HOST. MN_LATE_HOST and
# MN_LATE_S delay one host's daemon (a node that boots slowly).
here=$(cd "$(dirname "$0")" && pwd)
while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do shift; done
host=$1
shift
[ "$host" = "${MN_LATE_HOST:-}" ] && sleep "${MN_LATE_S:-0}"
exec "$here/on_host.sh" "$host" sh -c "$*"
