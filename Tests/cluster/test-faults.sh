#!/usr/bin/env bash
# test-faults.sh CASE: faults that a cluster job meets, each bounded in time; the job must end and lose nothing.
#
#   kill-rank  kill -9 of rank 1 mid-training: the job ends non-zero within KILL_LIMIT s (30); then --resume
#              continues from the last checkpoint (steps lost = steps done since it, reported).
#   link-down  a 2-host namespace run whose second host loses its link mid-training: the job ends within
#              DTRAIN_COLLECTIVE_TIMEOUT (10) + DTRAIN_ABORT_GRACE (10) + LINK_SLACK (10) s instead of hanging.
#   sigterm    SIGTERM to the job (launch/dtrain-mpirun): a checkpoint at the next step boundary and exit 0;
#              resuming from it and training on gives the same parameters as an uninterrupted run.
#   kill-writer  kill -9 of rank 0 at random moments of a run that checkpoints every step, KILL_ROUNDS (5) times,
#              each run resuming from the previous one's checkpoint: the checkpoint always loads.
#   disk-full  OUTPUT on a small tmpfs that fills up after the first checkpoint: the job ends non-zero with a
#              message about the full disk, and the previous checkpoint is intact.
# Without CASE it runs them all. DTRAIN_TEST_MOCK=1 runs it against the mock dtrain (see lib.sh).
TEST_NAME=${TEST_NAME:-faults}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$CLUSTER_DIR/netns.sh"
set -u

KILL_LIMIT=${KILL_LIMIT:-30}
export DTRAIN_COLLECTIVE_TIMEOUT=${DTRAIN_COLLECTIVE_TIMEOUT:-10}
export DTRAIN_ABORT_GRACE=${DTRAIN_ABORT_GRACE:-10}
export DTRAIN_LINK_TIMEOUT=${DTRAIN_LINK_TIMEOUT:-10}
LINK_SLACK=${LINK_SLACK:-10}
WAIT=${FAULT_TEST_WAIT:-120}           # seconds to reach a checkpoint, or for a run to finish
LONG_RUN=${FAULT_TEST_STEPS:-1000000}  # step limit of runs that a fault or a signal stops
use_dtrain

# start_training OUTPUT LOG [dtrain-mpirun options]: starts a 2-rank run in the background, in a process group of
# its own (so a signal meant for the job reaches only the launcher, and cleanup can end the whole group); sets
# TRAIN_PID. TRAIN_DTRAIN_ARGS (e.g. --resume) are added to dtrain's arguments. It is bounded by the waits
# below, and killed with its group when the test ends.
start_training() {
    local output=$1 log_file=$2
    shift 2
    mkdir -p "$output"
    # shellcheck disable=SC2046
    setsid "$REPO/launch/dtrain-mpirun" -n 2 "$@" -- "$DTRAIN_TEST_CONFIG" \
        $(dtrain_common_args) $(dtrain_checkpoint_args) --max-steps "$LONG_RUN" --output "$output" \
        ${TRAIN_DTRAIN_ARGS:-} >"$log_file" 2>&1 &
    TRAIN_PID=$!
    on_exit "kill -9 -- -$TRAIN_PID 2>/dev/null"
}

# finish_training OUTPUT LOG STEPS [--resume]: a foreground 2-rank run to STEPS; returns its status.
finish_training() {
    local output=$1 log_file=$2 steps=$3
    shift 3
    mkdir -p "$output"
    # shellcheck disable=SC2046
    timeout -k 5 "$WAIT" "$REPO/launch/dtrain-mpirun" -n 2 -- "$DTRAIN_TEST_CONFIG" \
        $(dtrain_common_args) $(dtrain_checkpoint_args) --max-steps "$steps" --output "$output" "$@" \
        >"$log_file" 2>&1
}

# rank_pid EXECUTABLE RANK: the pid of that rank (found through OMPI_COMM_WORLD_RANK in its environment).
rank_pid() {
    local pid
    for pid in $(pgrep -f "^$1( |\$)"); do
        tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" && { echo "$pid"; return 0; }
    done
    return 1
}

# wait_exit PID LIMIT: waits up to LIMIT seconds for PID (a child of this shell); sets EXIT_STATUS and
# EXIT_SECONDS. Returns 1 (after killing it) when it is still running then.
wait_exit() {
    local pid=$1 limit=$2 t0
    t0=$(date +%s.%N)
    while kill -0 "$pid" 2>/dev/null; do
        if [[ $(seconds_since "$t0" | cut -d. -f1) -ge $limit ]]; then
            kill -9 "$pid" 2>/dev/null
            wait "$pid" 2>/dev/null
            EXIT_SECONDS=$(seconds_since "$t0")
            return 1
        fi
        sleep 0.1
    done
    wait "$pid"
    EXIT_STATUS=$?
    EXIT_SECONDS=$(seconds_since "$t0")
    return 0
}

# last_step_in_log LOG: the highest "step N" a progress line reports, if dtrain prints such lines.
last_step_in_log() { grep -oE '(^|[^a-z_])step[ =:]+[0-9]+' "$1" | grep -oE '[0-9]+$' | sort -n | tail -n 1; }

checkpoint_valid() {
    python3 - "$1" <<'PY'
import json, os, struct, sys
path = sys.argv[1]
size = os.path.getsize(path)
with open(path, "rb") as f:
    (n,) = struct.unpack("<Q", f.read(8))
    if 8 + n > size:
        sys.exit("header length %d runs past the file (%d bytes)" % (n, size))
    header = json.loads(f.read(n))
end = 0
for name, info in header.items():
    if name == "__metadata__":
        continue
    end = max(end, info["data_offsets"][1])
if 8 + n + end != size:
    sys.exit("tensor data ends at %d but the file has %d bytes" % (8 + n + end, size))
try:
    from safetensors.numpy import load_file
    load_file(path)
except ImportError:
    pass
PY
}

case_kill_rank() {
    local out="$TEST_TMP/kill-rank" status elapsed saved resumed before
    start_training "$out" "$TEST_TMP/kill-rank.log"
    wait_for_step "$out/last.safetensors" "$CHECKPOINT_EVERY" "$WAIT" "$TRAIN_PID" ||
        { tail -n 20 "$TEST_TMP/kill-rank.log"; fail "kill-rank: no checkpoint within $WAIT s"; }
    local victim
    victim=$(rank_pid "$DTRAIN_BIN" 1) || fail "kill-rank: cannot find rank 1's process"
    kill -9 "$victim"
    wait_exit "$TRAIN_PID" "$KILL_LIMIT" ||
        { tail -n 20 "$TEST_TMP/kill-rank.log"; fail "kill-rank: the job still ran $KILL_LIMIT s after kill -9 of rank 1"; }
    status=$EXIT_STATUS elapsed=$EXIT_SECONDS
    [[ $status -ne 0 ]] || fail "kill-rank: the job exited 0 after losing rank 1"
    saved=$(checkpoint_step "$out/last.safetensors")
    before=$(last_step_in_log "$TEST_TMP/kill-rank.log")
    checkpoint_valid "$out/last.safetensors" || fail "kill-rank: the last checkpoint is damaged"
    log "kill-rank: job ended $elapsed s after kill -9 of rank 1 (status $status); checkpoint at step $saved," \
        "last step reported ${before:-?}"
    finish_training "$out" "$TEST_TMP/kill-rank-resume.log" $((saved + 5)) --resume ||
        { tail -n 20 "$TEST_TMP/kill-rank-resume.log"; fail "kill-rank: --resume failed"; }
    resumed=$(checkpoint_step "$out/last.safetensors")
    [[ $resumed == $((saved + 5)) ]] || fail "kill-rank: after --resume the checkpoint is at step $resumed, not $((saved + 5))"
    grep -v '^dtrain' "$TEST_TMP/kill-rank-resume.log" | grep -qE '[Rr]esum(ed|ing)' ||
        fail "kill-rank: the resumed run did not say it resumed"
    local lost="?"
    [[ -n $before && -n $saved ]] && lost=$((before - saved))
    RESULT="kill-rank: ended in $elapsed s (status $status); resumed from step $saved; steps lost: $lost"
}

case_link_down() {
    netns_up 2 1
    case $? in
        0) ;;
        3) RESULT="link-down: skipped: no network namespaces here"; return 0 ;;
        *) netns_down; fail "link-down: the namespace hosts did not come up" ;;
    esac
    on_exit netns_down
    local out="$TEST_TMP/link-down" status elapsed limit
    MPIRUN=$NETNS_MPIRUN start_training "$out" "$TEST_TMP/link-down.log" --hostfile "$NETNS_HOSTFILE"
    wait_for_step "$out/last.safetensors" "$CHECKPOINT_EVERY" "$WAIT" "$TRAIN_PID" ||
        { tail -n 20 "$TEST_TMP/link-down.log"; fail "link-down: no checkpoint within $WAIT s"; }
    netns_link_down 2
    limit=$((DTRAIN_COLLECTIVE_TIMEOUT + DTRAIN_ABORT_GRACE + LINK_SLACK))
    wait_exit "$TRAIN_PID" "$limit" ||
        { tail -n 20 "$TEST_TMP/link-down.log"; fail "link-down: the job still ran $limit s after the link went down"; }
    status=$EXIT_STATUS elapsed=$EXIT_SECONDS
    [[ $status -ne 0 ]] || fail "link-down: the job exited 0 although a host was lost"
    checkpoint_valid "$out/last.safetensors" || fail "link-down: the last checkpoint is damaged"
    netns_down
    RESULT="link-down: ended in $elapsed s after the link went down (status $status; watchdog"
    RESULT+=" ${DTRAIN_COLLECTIVE_TIMEOUT} s, abort grace ${DTRAIN_ABORT_GRACE} s, link timeout ${DTRAIN_LINK_TIMEOUT} s)"
}

case_sigterm() {
    local out="$TEST_TMP/sigterm" straight="$TEST_TMP/straight" status elapsed saved verdict
    start_training "$out" "$TEST_TMP/sigterm.log"
    wait_for_step "$out/last.safetensors" "$CHECKPOINT_EVERY" "$WAIT" "$TRAIN_PID" ||
        { tail -n 20 "$TEST_TMP/sigterm.log"; fail "sigterm: no checkpoint within $WAIT s"; }
    kill -TERM "$TRAIN_PID"
    wait_exit "$TRAIN_PID" "$KILL_LIMIT" || fail "sigterm: the job still ran $KILL_LIMIT s after SIGTERM"
    status=$EXIT_STATUS elapsed=$EXIT_SECONDS
    [[ $status -eq 0 ]] || { tail -n 20 "$TEST_TMP/sigterm.log"; fail "sigterm: the job exited $status, not 0"; }
    saved=$(checkpoint_step "$out/last.safetensors")
    [[ -n $saved ]] || fail "sigterm: the checkpoint has no step"
    local reported
    reported=$(last_step_in_log "$TEST_TMP/sigterm.log")
    [[ -z $reported || $reported -le $saved ]] ||
        fail "sigterm: steps up to $reported ran but the checkpoint holds step $saved"
    # Resume to saved+5 and compare with a straight run to saved+5: the signal must have lost nothing.
    finish_training "$out" "$TEST_TMP/sigterm-resume.log" $((saved + 5)) --resume ||
        { tail -n 20 "$TEST_TMP/sigterm-resume.log"; fail "sigterm: --resume failed"; }
    # A run from scratch would end with the same parameters: the run must also say that it resumed.
    grep -v '^dtrain' "$TEST_TMP/sigterm-resume.log" | grep -qE '[Rr]esum(ed|ing)' ||
        fail "sigterm: the resumed run did not say it resumed"
    finish_training "$straight" "$TEST_TMP/straight.log" $((saved + 5)) ||
        { tail -n 20 "$TEST_TMP/straight.log"; fail "sigterm: the uninterrupted run failed"; }
    verdict=$(compare_checkpoints "$out/last.safetensors" "$straight/last.safetensors" "${RESUME_TOLERANCE:-0}") ||
        fail "sigterm: resumed run differs from the uninterrupted one: $verdict"
    RESULT="sigterm: exit 0 in $elapsed s with a checkpoint at step $saved; resume to $((saved + 5)) matches: $verdict"
}

case_kill_writer() {
    local out="$TEST_TMP/kill-writer" round rounds=${KILL_ROUNDS:-5} victim pause steps="" previous=0
    local saved_every=$CHECKPOINT_EVERY
    CHECKPOINT_EVERY=1
    for ((round = 1; round <= rounds; round++)); do
        # Every round after the first resumes from what the kill left.
        if [[ -f $out/last.safetensors ]]; then TRAIN_DTRAIN_ARGS=--resume; else TRAIN_DTRAIN_ARGS=""; fi
        start_training "$out" "$TEST_TMP/kill-writer-$round.log"
        # Once this run has written a checkpoint of its own, kill rank 0 at a random moment.
        wait_for_step "$out/last.safetensors" $((${previous:-0} + 1)) "$WAIT" "$TRAIN_PID" ||
            { tail -n 20 "$TEST_TMP/kill-writer-$round.log"; fail "kill-writer: no new checkpoint in round $round"; }
        pause=$(awk -v r="$RANDOM" 'BEGIN { printf "%.2f", 0.3 + (r % 100) / 100 }')
        sleep "$pause"
        victim=$(rank_pid "$DTRAIN_BIN" 0) || fail "kill-writer: cannot find rank 0's process in round $round"
        kill -9 "$victim"
        wait_exit "$TRAIN_PID" "$KILL_LIMIT" || fail "kill-writer: the job still ran $KILL_LIMIT s after kill -9 of rank 0"
        checkpoint_valid "$out/last.safetensors" ||
            fail "kill-writer: after kill -9 of rank 0 in round $round the checkpoint does not load"
        previous=$(checkpoint_step "$out/last.safetensors")
        steps+="${steps:+, }$previous"
    done
    CHECKPOINT_EVERY=$saved_every
    TRAIN_DTRAIN_ARGS=""
    RESULT="kill-writer: $rounds kills of rank 0 while it checkpoints every step; the checkpoint loaded each time"
    RESULT+=" (steps $steps)"
}

case_disk_full() {
    local mnt="$TEST_TMP/small-disk" status elapsed saved size
    mkdir -p "$mnt"
    # Room for the first checkpoint and the logs, not for much more; then filled to the last byte.
    if ! mount -t tmpfs -o size="${DISK_FULL_SIZE:-64m}" tmpfs "$mnt" 2>"$TEST_TMP/mount.err"; then
        RESULT="disk-full: skipped: cannot mount a tmpfs here: $(cat "$TEST_TMP/mount.err")"
        return 0
    fi
    on_exit "umount -l '$mnt' 2>/dev/null"
    local out="$mnt/output"
    start_training "$out" "$TEST_TMP/disk-full.log"
    wait_for_step "$out/last.safetensors" "$CHECKPOINT_EVERY" "$WAIT" "$TRAIN_PID" ||
        { tail -n 20 "$TEST_TMP/disk-full.log"; fail "disk-full: no checkpoint within $WAIT s"; }
    cp "$out/last.safetensors" "$TEST_TMP/before-full.safetensors"
    saved=$(checkpoint_step "$out/last.safetensors")
    dd if=/dev/zero of="$mnt/filler" bs=64k status=none 2>/dev/null
    size=$(du -k "$out/last.safetensors" | cut -f1)
    wait_exit "$TRAIN_PID" "$WAIT" ||
        { tail -n 20 "$TEST_TMP/disk-full.log"; fail "disk-full: the job still ran $WAIT s after the disk filled up"; }
    status=$EXIT_STATUS elapsed=$EXIT_SECONDS
    [[ $status -ne 0 ]] || fail "disk-full: the job exited 0 although it could not write its checkpoint"
    grep -qiE 'no space|space left|ENOSPC|disk is full|disk full|full disk|out of space' "$TEST_TMP/disk-full.log" ||
        { tail -n 20 "$TEST_TMP/disk-full.log"; fail "disk-full: no message about the full disk"; }
    checkpoint_valid "$out/last.safetensors" || fail "disk-full: the previous checkpoint is damaged"
    local now
    now=$(checkpoint_step "$out/last.safetensors")
    [[ -z $saved || $now -ge $saved ]] || fail "disk-full: the checkpoint went back from step $saved to $now"
    RESULT="disk-full: job ended $elapsed s after the disk filled (status $status); checkpoint at step $now"
    RESULT+=" (${size} KiB) intact; message: $(grep -iE 'no space|space left|ENOSPC|disk is full|disk full|full disk|out of space' "$TEST_TMP/disk-full.log" | head -n 1)"
}

# Each case runs in this shell (not a subshell), so its cleanups registered with on_exit run whatever happens;
# a failing check ends the test through fail().
cases=("$@")
[[ ${#cases[@]} -gt 0 ]] || cases=(kill-rank link-down sigterm kill-writer disk-full)
summary=()
for name in "${cases[@]}"; do
    t0=$(date +%s.%N)
    RESULT=""
    case $name in
        kill-rank) case_kill_rank ;;
        link-down) case_link_down ;;
        sigterm) case_sigterm ;;
        kill-writer) case_kill_writer ;;
        disk-full) case_disk_full ;;
        *) fail "unknown case '$name' (kill-rank, link-down, sigterm, kill-writer, disk-full)" ;;
    esac
    log "$RESULT ($(seconds_since "$t0") s)"
    summary+=("$RESULT")
done
pass "$(printf '%s; ' "${summary[@]}" | sed 's/; $//')"
