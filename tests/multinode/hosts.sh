# shellcheck shell=bash
# Test hosts in network namespaces (sourced by the multinode tests): each host is a
# network namespace with one veth address on a bridge that lives in a namespace of its own
# (no address or link in the machine's own namespace), its own hostname (a UTS namespace
# per command) and its own node-local folder $MN_BASE/node (a bind mount in a mount
# namespace per command). Open MPI reaches a host through rsh_agent.sh, which runs the
# command with mn_exec. Everything is removed on exit, whatever happens (mn_setup sets the
# trap).
# usage: . hosts.sh; mn_setup nodea nodeb; mn_exec nodea CMD...; mn_mpirun nodea:2,nodeb:2 ARGS...

mn_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Exits 77 unless this machine lets us make namespaces (root, iproute2, unshare, mpirun).
mn_require() {
    [ "$(id -u)" = 0 ] || { echo "skip: namespaces need root"; exit 77; }
    command -v ip > /dev/null && command -v unshare > /dev/null && command -v mpirun > /dev/null ||
        { echo "skip: needs ip (iproute2), unshare and mpirun"; exit 77; }
    local probe="hrp$$"
    ip netns add "$probe" 2> /dev/null || { echo "skip: 'ip netns add' is not allowed here"; exit 77; }
    ip netns delete "$probe"
    unshare --uts --mount true 2> /dev/null || { echo "skip: 'unshare --uts --mount' is not allowed here"; exit 77; }
}

mn_cleanup() {
    local h ns pid
    for ns in "${mn_namespaces[@]}"; do
        for pid in $(ip netns pids "$ns" 2> /dev/null); do
            kill -CONT "$pid" 2> /dev/null
            kill -KILL "$pid" 2> /dev/null
        done
    done
    for ns in "${mn_namespaces[@]}"; do
        ip netns delete "$ns" 2> /dev/null
        rm -rf "/etc/netns/$ns"
    done
    [ -n "${MN_BASE:-}" ] && rm -rf "$MN_BASE"
    mn_namespaces=()
}

# mn_setup HOST...: one namespace per host on 10.77.0.0/24, all on one bridge.
mn_setup() {
    mn_require
    export MN_PREFIX="hr$$"
    MN_BASE=$(mktemp -d /tmp/hetrun-multinode.XXXXXX)
    export MN_BASE
    mn_namespaces=()
    trap mn_cleanup EXIT
    trap 'exit 130' INT TERM
    local sw="${MN_PREFIX}sw" i=1 h hosts="127.0.0.1 localhost"$'\n'
    ip netns add "$sw" && mn_namespaces+=("$sw") || return 1
    ip -n "$sw" link add br0 type bridge && ip -n "$sw" link set br0 up || return 1
    for h in "$@"; do
        hosts+="10.77.0.$i $h"$'\n'
        i=$((i + 1))
    done
    i=1
    for h in "$@"; do
        local ns="${MN_PREFIX}$h"
        ip netns add "$ns" && mn_namespaces+=("$ns") || return 1
        ip link add eth0 netns "$ns" type veth peer name "v$h" netns "$sw" || return 1
        ip -n "$sw" link set "v$h" master br0 up &&
            ip -n "$ns" addr add "10.77.0.$i/24" dev eth0 &&
            ip -n "$ns" link set eth0 up && ip -n "$ns" link set lo up || return 1
        mkdir -p "/etc/netns/$ns" "$MN_BASE/$h" "$MN_BASE/node" # hosts: seen by ip netns exec
        printf '%s' "$hosts" > "/etc/netns/$ns/hosts"
        i=$((i + 1))
    done
}

# mn_exec HOST CMD...: runs CMD on HOST (on_host.sh).
mn_exec() {
    "$mn_here/on_host.sh" "$@"
}

# mn_mpirun SECONDS HOSTSPEC ARGS...: mpirun on the first host of HOSTSPEC (a:2,b:2),
# reaching the others through rsh_agent.sh, MPI traffic only on the test network, killed
# after SECONDS (timeout(1)).
mn_mpirun() {
    local secs=$1 spec=$2
    shift 2
    timeout -k 5 "$secs" "$mn_here/on_host.sh" "${spec%%[:,]*}" mpirun --host "$spec" --oversubscribe \
        --mca plm_rsh_agent "$mn_here/rsh_agent.sh" --mca plm_rsh_no_tree_spawn 1 \
        --mca oob_tcp_if_include 10.77.0.0/24 --mca btl tcp,self \
        --mca btl_tcp_if_include 10.77.0.0/24 "$@"
}

# mn_rank_pid RANK: the pid of that MPI rank's hetrun process (empty when not running).
mn_rank_pid() {
    local p env
    for p in $(pgrep -x hetrun); do
        env=$({ tr '\0' '\n' < "/proc/$p/environ"; } 2> /dev/null)
        grep -qx "OMPI_COMM_WORLD_RANK=$1" <<< "$env" && grep -qx "MN_PREFIX=$MN_PREFIX" <<< "$env" &&
            { echo "$p"; return; }
    done
}
