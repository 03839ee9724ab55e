#!/usr/bin/env bash
# test-shaped-link.sh: the emulated links of the scaling benchmark. Two namespace hosts shaped to 1 Gbit/s carry a
# 16 MB allreduce at no more than that rate (the shaping holds) and at no less than 40% of it (OpenMPI reduces pieces
# under 64 MiB between 2 ranks one direction at a time: docs/mpi.md),
# a rate tc cannot read is refused by name, and the namespaces are gone afterwards, also when the test fails (the
# EXIT action runs on every way out).
TEST_NAME=${TEST_NAME:-shaped-link}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$CLUSTER_DIR/netns.sh"
set -u

selftest=${MPI_SELFTEST_BIN:-$REPO/.build/release/mpi-selftest}
[[ -x $selftest ]] || fail "no $selftest: build it first (swift build -c release)"
command -v tc >/dev/null || skip "no tc (package iproute2)"
namespace_hosts_up 2
created=$NETNS_HOSTS

netns_shape 2mbps 2>/dev/null && fail "netns_shape accepted the rate '2mbps'"
netns_shape 1gbit || fail "netns_shape 1gbit failed"
for host in $created; do
    ip netns exec "$host" tc qdisc show dev eth0 | grep -q 'tbf.*rate 1Gbit' || fail "$host has no 1 Gbit/s bucket"
done
root=()
[[ $EUID -eq 0 ]] && root=(--allow-run-as-root)
# One 16 MB call (a 64 MiB piece holds it), so the figure is the link's and not the pieces'.
output=$(timeout -k 5 120 "$NETNS_MPIRUN" "${root[@]}" --hostfile "$NETNS_HOSTFILE" -n 2 --bind-to none "$selftest" \
    bench --min-bytes 16777216 --max-bytes 16777216 --chunk-bytes 67108864 2>&1)
status=$?
[[ $status -eq 0 ]] || { echo "$output"; fail "the allreduce benchmark across the shaped hosts exited $status"; }
# Columns: bytes, iterations, shim µs, shim GB/s, ...: 2 ranks send the whole buffer each way, so the rate in bytes
# is the buffer over the time; 1 Gbit/s carries at most 125 MB/s, of which TCP over Ethernet gets ~94%.
rate=$(awk '$1 == 16777216 { printf "%.1f", $1 / $3 }' <<<"$output")  # MB/s (bytes per µs)
[[ -n $rate ]] || { echo "$output"; fail "the benchmark printed no figure for 16 MB"; }
awk -v r="$rate" 'BEGIN { exit !(r <= 127 && r >= 50) }' ||
    { echo "$output"; fail "16 MB went at $rate MB/s over a 1 Gbit/s link (expected 50–125 MB/s)"; }
netns_down
for ns in $created; do
    ip netns list | grep -qw "$ns" && fail "namespace $ns is still there after teardown"
done
pass "16 MB allreduce at $rate MB/s over links shaped to 1 Gbit/s (125 MB/s); namespaces removed"
