#!/usr/bin/env bash
# test-netns-mpi.sh: the namespace harness itself. An MPI allreduce across 2 and then 3 namespace hosts over TCP
# gives the right sum on every rank, each rank runs on a different host, and nothing is left behind: no namespace,
# no process. Reports bring-up, run and teardown times.
TEST_NAME=${TEST_NAME:-netns-mpi}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$CLUSTER_DIR/netns.sh"
set -u

program=$(compile_fixture mpi-allreduce) || fail "cannot compile the MPI fixture with mpicc"
report=()
for hosts in 2 3; do
    t0=$(date +%s.%N)
    netns_up "$hosts" 1
    case $? in
        0) ;;
        3) skip "no network namespaces here (reason above)" ;;
        *) netns_down; fail "the $hosts namespace hosts did not come up" ;;
    esac
    on_exit netns_down
    up=$(seconds_since "$t0")
    created=$NETNS_HOSTS
    t0=$(date +%s.%N)
    root=()
    [[ $EUID -eq 0 ]] && root=(--allow-run-as-root)
    output=$(timeout -k 5 60 "$NETNS_MPIRUN" "${root[@]}" --hostfile "$NETNS_HOSTFILE" -n "$hosts" "$program" 2>&1)
    status=$?
    run=$(seconds_since "$t0")
    [[ $status -eq 0 ]] || { echo "$output"; fail "mpirun across $hosts hosts exited $status"; }
    [[ $(grep -c ' OK$' <<<"$output") -eq $hosts ]] || { echo "$output"; fail "not every rank saw the right sum"; }
    distinct=$(grep -o 'netns=[^:]*' <<<"$output" | sort -u | wc -l)
    [[ $distinct -eq $hosts ]] || { echo "$output"; fail "$hosts ranks ran on $distinct hosts, not $hosts"; }
    t0=$(date +%s.%N)
    netns_down
    down=$(seconds_since "$t0")
    for ns in $created; do
        ip netns list | grep -qw "$ns" && fail "namespace $ns is still there after teardown"
    done
    report+=("$hosts hosts: up ${up} s, allreduce ${run} s, down ${down} s")
done
pass "$(printf '%s; ' "${report[@]}" | sed 's/; $//')"
