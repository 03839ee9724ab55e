#!/usr/bin/env bash
# scaling-net.sh: data-parallel scaling over emulated network links. Two network-namespace hosts (Tests/cluster/
# netns.sh), one rank and one core each, joined by links shaped with tc to each rate in turn; for each net, the step
# time on one host alone (1 rank, same per-rank batch: no communication) against the two-host step with each
# gradient option. Synthetic data, so only compute and the link count.
#
#   bash launch/scaling-net.sh                      AlexNet-torchvision (32 images per rank) and the quick-start net
#   RATES="1gbit 500mbit" STEPS=6 bash launch/scaling-net.sh
#   NETS="fashion-lenet:64:60:10" OPTIONS="float32 bfloat16" bash launch/scaling-net.sh   (config:batch:steps:classes)
#
# Links: "none" is the unshaped veth (what two ranks on one machine's cores reach at best: they share its memory
# bandwidth, so even it is below 100%). Options: float32 (one allreduce after backward), bfloat16 (half the bytes), overlap (4 MiB buckets reduced
# during backward), bfloat16+overlap, sharded (the sharded optimizer: reduce-scatter, update 1/2, allgather),
# bfloat16+sharded. Printed per row: the step time, the share of it spent in communication
# (gradient sync + waiting for the other rank), and the scaling efficiency, 2-host throughput ÷ (2 × 1-host).
# A core here is about 1/20 of a real node, so a link here behaves like one about 20× faster beside real nodes
# (docs/scaling.md): 1 Gbit/s here is roughly 20 Gbit/s there. Needs root (namespaces); else prints SKIP.
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
bin=${DTRAIN_BIN:-$repo/.build/release/dtrain}
RATES=${RATES:-"none 10gbit 2gbit 1gbit 500mbit"}
NETS=${NETS:-"alexnet-torchvision:32:6:1000 fashion-lenet:64:60:10"}
OPTIONS=${OPTIONS:-"float32 bfloat16 overlap bfloat16+overlap"}
source "$repo/Tests/cluster/netns.sh"
tmp=$(mktemp -d); trap 'netns_down; rm -rf "$tmp"' EXIT
trap 'exit 130' INT; trap 'exit 143' TERM

# The training run: synthetic data, no evaluation worth the name, plain progress, the breakdown line at the end.
args() { # config per-rank-batch ranks steps classes
    echo "configs/$1.json --set data.synthetic=true --set data.synthetic_train=$(($2 * $3 * ($4 + 1)))" \
        "--set data.synthetic_val=$(($2 * $3)) --set network.classes=$5 --set log.every_steps=1000000" \
        "--batch-size $(($2 * $3)) --max-steps $4 --progress plain"
}
option_args() {
    case $1 in
        float32) ;;
        bfloat16) echo "--set solver.gradient_wire=bfloat16" ;;
        overlap) echo "--set solver.gradient_bucket_mb=4" ;;
        bfloat16+overlap) echo "--set solver.gradient_wire=bfloat16 --set solver.gradient_bucket_mb=4" ;;
        sharded) echo "--set solver.shard_optimizer=true" ;;
        bfloat16+sharded) echo "--set solver.gradient_wire=bfloat16 --set solver.shard_optimizer=true" ;;
        *) echo "scaling-net.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
}
# From the line "step time over N steps (rank 0): ... waiting for other ranks W ms (..), gradient sync S ms (..), ...;
# T ms per step, ...": "T W+S".
times() {
    grep 'step time over' | sed -E 's/.*waiting for other ranks ([0-9.]+) ms.*gradient sync ([0-9.]+) ms.*; ([0-9.]+) ms per step.*/\3 \1 \2/'
}

netns_up 2 1; status=$?
[[ $status -eq 3 ]] && exit 0
[[ $status -ne 0 ]] && { echo "scaling-net.sh: the namespace hosts did not come up" >&2; exit 1; }
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; 2 namespace hosts, 1 rank × 1 thread each"
for net in $NETS; do
    IFS=: read -r config batch steps classes <<<"$net"
    # shellcheck disable=SC2046
    one=$(OPENBLAS_NUM_THREADS=1 "$bin" $(args "$config" "$batch" 1 "$steps" "$classes") --output "$tmp/one" --overwrite | times)
    read -r t1 _ _ <<<"$one"
    [[ -n ${t1:-} ]] || { echo "scaling-net.sh: the one-host run of $config printed no step time" >&2; exit 1; }
    echo
    echo "== $config, $batch images per rank, $steps steps: 1 host $t1 ms per step"
    printf '%-10s %-18s %12s %8s %11s\n' link option "step (ms)" comm efficiency
    for rate in $RATES; do
        netns_shape "$rate" || exit 1
        for option in $OPTIONS; do
            # shellcheck disable=SC2046
            two=$(MPIRUN=$NETNS_MPIRUN OPENBLAS_NUM_THREADS=1 timeout -k 5 "${RUN_LIMIT:-900}" "$repo/launch/dtrain-mpirun" \
                -n 2 --hostfile "$NETNS_HOSTFILE" --bind-to none -- $(args "$config" "$batch" 2 "$steps" "$classes") \
                $(option_args "$option") --output "$tmp/two" --overwrite 2>&1 | times)
            read -r t2 wait sync <<<"$two"
            if [[ -z ${t2:-} ]]; then printf '%-10s %-18s %12s\n' "$rate" "$option" "failed"; continue; fi
            awk -v r="$rate" -v o="$option" -v t1="$t1" -v t2="$t2" -v w="$wait" -v s="$sync" \
                'BEGIN { printf "%-10s %-18s %12.1f %7.1f%% %10.1f%%\n", r, o, t2, 100 * (w + s) / t2, 100 * t1 / t2 }'
        done
    done
done
