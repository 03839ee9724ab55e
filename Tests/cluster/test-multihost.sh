#!/usr/bin/env bash
# test-multihost.sh: training across two hosts over real TCP gives the same parameters as on one host.
#
# Two runs of the same config, seed and steps with 2 ranks each: one with a rank on each of two network-namespace
# hosts (OpenMPI's TCP transport between them, launched through launch/dtrain-mpirun with a hostfile), one with both
# ranks on this machine. The final checkpoints must match tensor by tensor: with 2 ranks every sum is a+b whatever
# the transport, so bitwise (MULTIHOST_TOLERANCE, relative, default 0). With the real dtrain a third run shards the
# optimizer across the two hosts (reduce-scatter over TCP, allgather, momentum gathered into the checkpoint): with
# 2 ranks it too must match bitwise. Namespaces are removed when it ends.
# DTRAIN_TEST_MOCK=1 runs it against the mock dtrain (see lib.sh).
TEST_NAME=${TEST_NAME:-multihost}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$CLUSTER_DIR/netns.sh"
set -u

use_dtrain
STEPS=${MULTIHOST_STEPS:-20}
TOLERANCE=${MULTIHOST_TOLERANCE:-0}
RUN_LIMIT=${MULTIHOST_RUN_LIMIT:-180}
# Both runs checkpoint at the end only.
# shellcheck disable=SC2034 # read by dtrain_checkpoint_args (lib.sh)
CHECKPOINT_EVERY=$STEPS
[[ ${DTRAIN_TEST_MOCK:-0} == 1 ]] && MOCK_STEP_SECONDS=${MOCK_STEP_SECONDS:-0.02}
# shellcheck disable=SC2207
args=("$DTRAIN_TEST_CONFIG" $(dtrain_common_args) $(dtrain_checkpoint_args) --max-steps "$STEPS")

t0=$(date +%s.%N)
namespace_hosts_up 2
log "2 hosts up on $NETNS_SUBNET in $(seconds_since "$t0") s"

t0=$(date +%s.%N)
mkdir -p "$TEST_TMP/two-hosts" "$TEST_TMP/one-host"
MPIRUN=$NETNS_MPIRUN timeout -k 5 "$RUN_LIMIT" "$REPO/launch/dtrain-mpirun" -n 2 --hostfile "$NETNS_HOSTFILE" \
    -- "${args[@]}" --output "$TEST_TMP/two-hosts" >"$TEST_TMP/two-hosts.log" 2>&1
status=$?
[[ $status -eq 0 ]] || { tail -n 30 "$TEST_TMP/two-hosts.log"; fail "the two-host run exited with $status"; }
log "two hosts, 2 ranks over TCP: $STEPS steps in $(seconds_since "$t0") s"

t0=$(date +%s.%N)
timeout -k 5 "$RUN_LIMIT" "$REPO/launch/dtrain-mpirun" -n 2 \
    -- "${args[@]}" --output "$TEST_TMP/one-host" >"$TEST_TMP/one-host.log" 2>&1
status=$?
[[ $status -eq 0 ]] || { tail -n 30 "$TEST_TMP/one-host.log"; fail "the one-host run exited with $status"; }
log "one host, 2 ranks over shared memory: $STEPS steps in $(seconds_since "$t0") s"

runs=(two-hosts one-host)
if [[ ${DTRAIN_TEST_MOCK:-0} != 1 ]]; then
    t0=$(date +%s.%N)
    mkdir -p "$TEST_TMP/two-hosts-sharded"
    MPIRUN=$NETNS_MPIRUN timeout -k 5 "$RUN_LIMIT" "$REPO/launch/dtrain-mpirun" -n 2 --hostfile "$NETNS_HOSTFILE" \
        -- "${args[@]}" --set solver.shard_optimizer=true --output "$TEST_TMP/two-hosts-sharded" \
        >"$TEST_TMP/two-hosts-sharded.log" 2>&1
    status=$?
    [[ $status -eq 0 ]] ||
        { tail -n 30 "$TEST_TMP/two-hosts-sharded.log"; fail "the sharded two-host run exited with $status"; }
    grep -q "optimizer state sharded over 2 ranks" "$TEST_TMP/two-hosts-sharded.log" ||
        fail "the sharded run did not say it shards the optimizer"
    log "two hosts, sharded optimizer: $STEPS steps in $(seconds_since "$t0") s"
    runs+=(two-hosts-sharded)
fi
for run in "${runs[@]}"; do
    [[ -f $TEST_TMP/$run/last.safetensors ]] || fail "the $run run left no last.safetensors"
done
step=$(checkpoint_step "$TEST_TMP/two-hosts/last.safetensors")
[[ -z $step || $step == "$STEPS" ]] || fail "the two-host checkpoint is at step $step, not $STEPS"
verdict=$(compare_checkpoints "$TEST_TMP/two-hosts/last.safetensors" "$TEST_TMP/one-host/last.safetensors" \
    "$TOLERANCE") || fail "two hosts and one host differ: $verdict"
if [[ ${#runs[@]} -eq 3 ]]; then
    sharded=$(compare_checkpoints "$TEST_TMP/two-hosts-sharded/last.safetensors" "$TEST_TMP/one-host/last.safetensors" \
        "$TOLERANCE") || fail "the sharded two-host run and one host differ: $sharded"
    verdict="$verdict; sharded across the hosts: $sharded"
fi
pass "$verdict (2 ranks on 2 namespace hosts vs 1 host, $STEPS steps)"
