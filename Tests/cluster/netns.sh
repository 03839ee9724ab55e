#!/usr/bin/env bash
# netns.sh: several "hosts" on one machine, for multi-host MPI tests over real TCP.
#
# Each host is a Linux network namespace with one interface (eth0) on a private /24; all are plugged into a
# bridge that lives in a further "switch" namespace, so nothing is added to the machine's own network.
# mpirun runs inside the first host and reaches the others through an rsh agent that is
# `ip netns exec HOST /bin/sh -c "$*"`, with OpenMPI's TCP transport restricted to the private subnet.
# Everything (processes in the namespaces, the namespaces, the temporary directory) is removed on exit,
# also on failure, on a timeout or on SIGINT/SIGTERM.
#
# As a command:
#   netns.sh [--hosts N] [--slots S] [--timeout SEC] [--link-down I@SEC] mpirun MPIRUN_ARGS...
#       runs mpirun across the hosts (hostfile, agent and TCP options added; -n defaults to hosts x slots)
#   netns.sh [--hosts N] [--slots S] [--timeout SEC] [--link-down I@SEC] run -- COMMAND...
#       runs COMMAND in the machine's namespace with these set:
#         NETNS_HOSTS     the host names, space-separated (hyphens only: OpenMPI's daemon dies on '_')
#         NETNS_HOSTFILE  an OpenMPI hostfile naming them, S slots each
#         NETNS_MPIRUN    a wrapper: mpirun inside the first host with the agent and TCP options
#         NETNS_LINK_DOWN a script: `$NETNS_LINK_DOWN INDEX [AFTER_SECONDS]` takes host INDEX's link down
#         NETNS_SUBNET    the subnet, e.g. 10.231.17.0/24
#   netns.sh sweep
#       removes namespaces left by runs of this script whose process is gone (e.g. after a SIGKILL)
#   --link-down I@SEC takes host I's (1-based) link down SEC seconds after the command starts.
#   --rate RATE shapes every host's link to RATE (tc units: 10gbit, 500mbit); see netns_shape.
#
# As a library (`source netns.sh`): netns_up N SLOTS, netns_down, netns_link_down INDEX, netns_shape RATE,
# netns_sweep; the same
# NETNS_* variables are set by netns_up. Call netns_down from your own EXIT trap.
#
# Not root, or `ip netns add` refused (a container without CAP_SYS_ADMIN): prints `SKIP: <reason>` and
# exits 0 (netns_up returns 3).

NETNS_NAME_PREFIX="dtns"

netns_log() { printf 'netns: %s\n' "$*" >&2; }

# Removes namespaces named dtns-PID-* whose PID no longer runs.
netns_sweep() {
    local name pid
    for name in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^${NETNS_NAME_PREFIX}-[0-9]*-"); do
        pid=${name#"${NETNS_NAME_PREFIX}"-}
        pid=${pid%%-*}
        if ! kill -0 "$pid" 2>/dev/null; then
            ip netns pids "$name" 2>/dev/null | xargs -r kill -9 2>/dev/null
            ip netns del "$name" 2>/dev/null && netns_log "removed stale namespace $name"
        fi
    done
}

# netns_up HOSTS SLOTS: creates the hosts and the switch; sets the NETNS_* variables. Returns 3 (after printing
# `SKIP: reason`) when namespaces cannot be made here, 1 on any other failure.
netns_up() {
    local hosts=${1:-2} slots=${2:-1} i
    if [[ $EUID -ne 0 ]]; then
        echo "SKIP: network namespaces need root (running as uid $EUID)"
        return 3
    fi
    if ! command -v ip >/dev/null; then
        echo "SKIP: the ip command (package iproute2) is not installed"
        return 3
    fi
    NETNS_BASE="${NETNS_NAME_PREFIX}-$$"
    NETNS_SWITCH="${NETNS_BASE}-sw"
    if ! ip netns add "$NETNS_SWITCH" 2>"/tmp/${NETNS_BASE}.err"; then
        echo "SKIP: cannot create a network namespace here: $(cat "/tmp/${NETNS_BASE}.err")"
        rm -f "/tmp/${NETNS_BASE}.err"
        NETNS_SWITCH=""
        return 3
    fi
    rm -f "/tmp/${NETNS_BASE}.err"
    NETNS_DIR=$(mktemp -d "/tmp/${NETNS_BASE}.XXXXXX") || return 1
    # A /24 in 10.0.0.0/8 that depends on the pid, so two runs on one machine differ (they are isolated anyway).
    local octet=$(( ($$ % 250) + 1 ))
    NETNS_SUBNET="10.231.${octet}.0/24"
    NETNS_HOSTS=""
    NETNS_ADDRESSES=""
    : >"$NETNS_DIR/hostfile"
    ip -n "$NETNS_SWITCH" link set lo up || return 1
    ip -n "$NETNS_SWITCH" link add br0 type bridge || return 1
    ip -n "$NETNS_SWITCH" link set br0 up || return 1
    for ((i = 1; i <= hosts; i++)); do
        local host="${NETNS_BASE}-h${i}" address="10.231.${octet}.$((10 + i))"
        ip netns add "$host" || return 1
        NETNS_HOSTS="${NETNS_HOSTS:+$NETNS_HOSTS }$host"
        NETNS_ADDRESSES="${NETNS_ADDRESSES:+$NETNS_ADDRESSES }$address"
        ip -n "$NETNS_SWITCH" link add "p${i}" type veth peer name eth0 netns "$host" || return 1
        ip -n "$NETNS_SWITCH" link set "p${i}" master br0 || return 1
        ip -n "$NETNS_SWITCH" link set "p${i}" up || return 1
        ip -n "$host" link set lo up || return 1
        ip -n "$host" addr add "${address}/24" dev eth0 || return 1
        ip -n "$host" link set eth0 up || return 1
        echo "$host slots=$slots" >>"$NETNS_DIR/hostfile"
    done
    NETNS_HOSTFILE="$NETNS_DIR/hostfile"

    # The rsh agent OpenMPI calls as `agent HOST COMMAND...`. NETNS_HOST_NAME tells a rank where it runs
    # (the hosts share one UTS namespace, so gethostname() is the same everywhere). The hosts also share /tmp and
    # the host name, so each host's daemon gets a session directory of its own, as real hosts have: otherwise the
    # daemons write the same shared-memory topology file at once and crash in hwloc. (Set through the agent's
    # environment only: an orte_tmpdir_base given to mpirun would be passed on to every daemon.)
    for host in $NETNS_HOSTS; do mkdir -p "$NETNS_DIR/tmp-$host"; done
    cat >"$NETNS_DIR/agent" <<AGENT
#!/bin/sh
host=\$1; shift
exec ip netns exec "\$host" env NETNS_HOST_NAME="\$host" OMPI_MCA_orte_tmpdir_base="$NETNS_DIR/tmp-\$host" \
    /bin/sh -c "\$*"
AGENT
    local first=${NETNS_HOSTS%% *}
    cat >"$NETNS_DIR/mpirun" <<WRAPPER
#!/bin/sh
# mpirun inside $first, reaching the other namespace hosts over TCP on $NETNS_SUBNET.
exec ip netns exec "$first" env NETNS_HOST_NAME="$first" "\${NETNS_REAL_MPIRUN:-mpirun}" \\
    --mca plm_rsh_agent "$NETNS_DIR/agent" \\
    --mca btl tcp,self --mca btl_tcp_if_include "$NETNS_SUBNET" --mca oob_tcp_if_include "$NETNS_SUBNET" "\$@"
WRAPPER
    cat >"$NETNS_DIR/link-down" <<LINKDOWN
#!/bin/sh
# link-down INDEX [AFTER_SECONDS]: takes host INDEX's eth0 down (as if its cable were pulled).
index=\$1; after=\${2:-0}
[ "\$after" = 0 ] || sleep "\$after"
ip -n "${NETNS_BASE}-h\$index" link set eth0 down && echo "netns: link of ${NETNS_BASE}-h\$index is down" >&2
LINKDOWN
    chmod +x "$NETNS_DIR/agent" "$NETNS_DIR/mpirun" "$NETNS_DIR/link-down"
    NETNS_MPIRUN="$NETNS_DIR/mpirun"
    NETNS_LINK_DOWN="$NETNS_DIR/link-down"
    export NETNS_HOSTS NETNS_HOSTFILE NETNS_MPIRUN NETNS_LINK_DOWN NETNS_SUBNET NETNS_DIR NETNS_ADDRESSES

    # The first host must reach the last one before anything is handed to MPI.
    local last=${NETNS_ADDRESSES##* }
    if ! ip netns exec "$first" ping -c 1 -W 2 "$last" >/dev/null 2>&1; then
        if command -v ping >/dev/null; then
            netns_log "$first cannot reach $last: the bridge does not forward"
            return 1
        fi
    fi
    return 0
}

# netns_link_down INDEX: takes host INDEX's link down now.
netns_link_down() { "$NETNS_LINK_DOWN" "$1"; }

# netns_shape RATE: every host sends at most RATE (tc's units: 10gbit, 500mbit, ...) through a token bucket on its
# eth0, so each host's link runs at RATE in each direction, as a switched network does. "none" removes the shaping.
# (A token bucket shapes the rate only: this kernel has no netem, so no latency is added; a veth adds ~20 µs.)
# The bucket holds 4 ms of traffic (one timer tick at HZ=250) and at least 64 KiB, so it can reach RATE.
netns_shape() {
    local rate=$1 host bits burst
    for host in $NETNS_HOSTS; do
        if [[ $rate == none ]]; then
            ip netns exec "$host" tc qdisc del dev eth0 root 2>/dev/null
            continue
        fi
        bits=$(netns_rate_bits "$rate") || { netns_log "cannot read the rate '$rate' (say e.g. 10gbit, 500mbit)"; return 2; }
        burst=$(( bits / 8 / 250 ))
        (( burst < 65536 )) && burst=65536
        ip netns exec "$host" tc qdisc replace dev eth0 root tbf rate "$rate" burst "$burst" latency 100ms ||
            { netns_log "tc refused to shape $host to $rate"; return 1; }
    done
    NETNS_RATE=$rate
    export NETNS_RATE
}

# netns_rate_bits RATE: RATE (e.g. 10gbit, 500mbit, 2.5gbit) in bits per second.
netns_rate_bits() {
    awk -v r="$1" 'BEGIN {
        n = r + 0; u = tolower(substr(r, length(n "") + 1))
        f = (u == "gbit") ? 1e9 : (u == "mbit") ? 1e6 : (u == "kbit") ? 1e3 : (u == "bit") ? 1 : 0
        if (n <= 0 || f == 0) exit 1
        printf "%.0f\n", n * f }'
}

# netns_down: kills every process left in the namespaces, deletes them and the temporary directory. Idempotent.
netns_down() {
    local ns
    for ns in $NETNS_HOSTS $NETNS_SWITCH; do
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
    done
    for ns in $NETNS_HOSTS $NETNS_SWITCH; do
        ip netns del "$ns" 2>/dev/null
    done
    [[ -n "${NETNS_DIR:-}" && -d "$NETNS_DIR" ]] && rm -rf "$NETNS_DIR"
    NETNS_HOSTS="" NETNS_SWITCH="" NETNS_DIR=""
}

netns_usage() {
    sed -n '2,/^$/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

netns_main() {
    set -u
    local hosts=2 slots=1 timeout_seconds=120 link_down="" rate="" action=""
    while [[ $# -gt 0 ]]; do
        case $1 in
            --hosts) hosts=$2; shift 2 ;;
            --slots) slots=$2; shift 2 ;;
            --timeout) timeout_seconds=$2; shift 2 ;;
            --link-down) link_down=$2; shift 2 ;;
            --rate) rate=$2; shift 2 ;;
            -h|--help) netns_usage; return 0 ;;
            mpirun|run|sweep) action=$1; shift; break ;;
            *) echo "netns.sh: unknown option '$1' (see --help)" >&2; return 2 ;;
        esac
    done
    case $action in
        sweep) netns_sweep; return 0 ;;
        run) [[ ${1:-} == -- ]] && shift ;;
        mpirun) ;;
        *) echo "netns.sh: say 'mpirun ARGS...', 'run -- COMMAND...' or 'sweep' (see --help)" >&2; return 2 ;;
    esac
    if [[ $hosts -lt 1 || $hosts -gt 9 ]]; then
        echo "netns.sh: --hosts must be 1..9, got $hosts" >&2
        return 2
    fi

    NETNS_CHILD=""
    trap 'netns_down' EXIT
    trap '[[ -n $NETNS_CHILD ]] && kill $NETNS_CHILD 2>/dev/null; exit 143' TERM
    trap '[[ -n $NETNS_CHILD ]] && kill $NETNS_CHILD 2>/dev/null; exit 130' INT
    local started=$SECONDS status
    netns_up "$hosts" "$slots"
    status=$?
    [[ $status -eq 3 ]] && return 0
    [[ $status -ne 0 ]] && { netns_log "bring-up failed"; return 1; }
    netns_log "up: $NETNS_HOSTS on $NETNS_SUBNET in $((SECONDS - started)) s"
    if [[ -n $rate ]]; then
        netns_shape "$rate" || return 1
        netns_log "links shaped to $rate"
    fi

    local link_down_pid=""
    if [[ -n $link_down ]]; then
        "$NETNS_LINK_DOWN" "${link_down%@*}" "${link_down#*@}" &
        link_down_pid=$!
    fi
    if [[ $action == mpirun ]]; then
        local args=(--hostfile "$NETNS_HOSTFILE")
        [[ $EUID -eq 0 ]] && args+=(--allow-run-as-root)
        local has_n=0 a
        for a in "$@"; do [[ $a == -n || $a == -np || $a == --np ]] && has_n=1; done
        [[ $has_n -eq 0 ]] && args+=(-n $((hosts * slots)))
        timeout -k 5 "$timeout_seconds" "$NETNS_MPIRUN" "${args[@]}" "$@" &
    else
        timeout -k 5 "$timeout_seconds" "$@" &
    fi
    NETNS_CHILD=$!
    wait "$NETNS_CHILD"
    status=$?
    NETNS_CHILD=""
    [[ $status -eq 124 ]] && netns_log "timed out after ${timeout_seconds} s"
    [[ -n $link_down_pid ]] && kill "$link_down_pid" 2>/dev/null
    return $status
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    netns_main "$@"
    exit $?
fi
