#!/bin/sh
# A stand-in for ssh as Open MPI's plm_rsh_agent: ignores the options and the host name and
# runs the command here, so `mpirun --host nodea:2,nodeb:2` makes two "nodes" (two orted
# daemons) on one machine. Each "host" gets its own session folder under $AGREE_RSH_TMP, so
# the daemons never race for one. usage (by mpirun): local_rsh.sh [-opts] HOST COMMAND...
while [ $# -gt 0 ]; do
    case "$1" in
    -*) shift ;;
    *) break ;;
    esac
done
dir="${AGREE_RSH_TMP:-${TMPDIR:-/tmp}}/$1"
shift
mkdir -p "$dir"
OMPI_MCA_orte_tmpdir_base="$dir" exec sh -c "$*"
