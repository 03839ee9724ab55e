#!/usr/bin/env bash
# test-slurm.sh: launch/slurm/dtrain.sbatch, unchanged but for sbatch options, on a private one-node Slurm cluster.
#
#   1. The job trains and writes a checkpoint.
#   2. Slurm's pre-timeout signal (USR1 to the batch shell): the ranks checkpoint, the job exits 0 and requeues
#      itself; the second run (SLURM_RESTART_COUNT=1) passes --resume and continues past the checkpoint.
#   3. SIGTERM to the batch shell: a checkpoint, exit 0, the job COMPLETED (no requeue).
#   4. `scontrol requeue` of a running job from outside: it runs again and resumes.
# Bounded: every wait has a limit, the whole test is under TEST_TIMEOUT (run-all.sh adds its own).
# DTRAIN_TEST_MOCK=1 runs it against the mock dtrain (see lib.sh).
TEST_NAME=${TEST_NAME:-slurm}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$CLUSTER_DIR/slurm.sh"
set -u

use_dtrain
WAIT=${SLURM_TEST_WAIT:-120}          # seconds any one phase may take
MAX_STEPS=${SLURM_TEST_MAX_STEPS:-1000000} # the job is always stopped by a signal before this
# What dtrain prints when it resumes (the launch scripts' own lines, which show --resume, are not counted).
RESUME_PATTERN=${RESUME_PATTERN:-[Rr]esum(ed|ing)}

started=$(date +%s.%N)
slurm_up "$(nproc)"
case $? in
    0) ;;
    3) skip "the private Slurm cluster cannot run here (reason above)" ;;
    *) fail "the private Slurm cluster did not start" ;;
esac
on_exit slurm_down
log "cluster up in $(seconds_since "$started") s"

output="$TEST_TMP/output"
export DTRAIN_OUTPUT="$output" DTRAIN_CONFIG="$DTRAIN_TEST_CONFIG" DTRAIN_BIN
[[ ${DTRAIN_TEST_MOCK:-0} == 1 ]] || export DTRAIN_DATA="$DTRAIN_TEST_DATA"
# shellcheck disable=SC2207
dtrain_args=($(dtrain_common_args) $(dtrain_checkpoint_args) --max-steps "$MAX_STEPS")

# shellcheck disable=SC2120 # options may be added to submit; none are needed now
submit() {
    (cd "$REPO" && sbatch --parsable --nodes=1 --ntasks-per-node=2 --cpus-per-task=1 --time=10 \
        --output="$TEST_TMP/slurm-%j.out" "$@" launch/slurm/dtrain.sbatch "${dtrain_args[@]}") | cut -d';' -f1
}
job_log() { cat "$output"/job-"$1".log 2>/dev/null; }
show_logs() {
    local j
    for j in "$@"; do
        echo "--- job $j log (last 25 lines):"
        job_log "$j" | tail -n 25
        tail -n 5 "$TEST_TMP/slurm-$j.out" 2>/dev/null
    done
}
failed() { show_logs "$@" >&2; }
# resumed_in_run JOB RESTART: waits until dtrain (not these scripts) says it resumed in that run of the job.
resumed_in_run() {
    local deadline=$((SECONDS + WAIT))
    until job_log "$1" | sed -n "/restart $2 /,\$p" | grep -v '^dtrain' | grep -qE -- "$RESUME_PATTERN"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.25
    done
}
# wait_for_log JOB PATTERN: waits until the job's log has a line matching PATTERN (grep -E).
wait_for_log() {
    local deadline=$((SECONDS + WAIT))
    until job_log "$1" | grep -qE -- "$2"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.25
    done
}

# ---- 1. trains and checkpoints ----
# The library forced to its SSE3 kernels inside the job; dtrain must choose better ones on each rank (sbatch passes
# the environment on). Only where the processor has AVX2, else there is nothing better to choose.
blas_expect=""
if grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
    export OPENBLAS_CORETYPE=Prescott DTRAIN_BLAS_KERNELS=best
    blas_expect="kernels (chosen by dtrain; the library detected Prescott)"
fi
t0=$(date +%s.%N)
job=$(submit) || fail "sbatch refused the script"
slurm_wait_state "$job" RUNNING "$WAIT" || { failed "$job"; fail "job $job did not start"; }
wait_for_step "$output/last.safetensors" "$CHECKPOINT_EVERY" "$WAIT" ||
    { failed "$job"; fail "job $job wrote no checkpoint at step >= $CHECKPOINT_EVERY within $WAIT s"; }
log "1. job $job running and checkpointed after $(seconds_since "$t0") s"
# Every rank chose its OpenBLAS kernels before MPI started (forced weak here, so it must have restarted).
if [[ -n $blas_expect ]]; then
    job_log "$job" | grep -qF -- "$blas_expect" ||
        { failed "$job"; fail "the job's start-up line does not say '$blas_expect'"; }
    log "1. kernel choice inside the job: '$blas_expect'"
fi

# ---- 2. pre-timeout signal: checkpoint, exit 0, requeue, resume ----
t0=$(date +%s.%N)
slurm_signal "$job" USR1 || fail "scancel --signal=USR1 failed"
deadline=$((SECONDS + WAIT))
while [[ $(slurm_field "$job" Restarts) != 1 ]]; do
    ((SECONDS < deadline)) || { failed "$job"; fail "job $job was not requeued after USR1"; }
    sleep 0.25
done
step_at_signal=$(checkpoint_step "$output/last.safetensors")
[[ -n $step_at_signal ]] || fail "the checkpoint has no step in its metadata"
job_log "$job" | grep -q "ranks ended with status 0" ||
    { failed "$job"; fail "after USR1 the ranks did not exit 0"; }
log "2. USR1: checkpoint at step $step_at_signal, requeued after $(seconds_since "$t0") s"
slurm_wait_state "$job" RUNNING "$WAIT" || { failed "$job"; fail "the requeued job $job did not run again"; }
log "2. requeued job running again $(seconds_since "$t0") s after the signal"
wait_for_step "$output/last.safetensors" $((step_at_signal + 1)) "$WAIT" ||
    { failed "$job"; fail "the requeued run wrote no checkpoint past step $step_at_signal"; }
resumed_in_run "$job" 1 ||
    { failed "$job"; fail "the requeued run did not say it resumed (no '$RESUME_PATTERN' in its log)"; }
job_log "$job" | sed -n '/restart 1 /,$p' | grep -q -- "--resume" ||
    { failed "$job"; fail "the requeued run was not given --resume"; }
first_new=$(checkpoint_step "$output/last.safetensors")
[[ $first_new -gt $step_at_signal ]] ||
    { failed "$job"; fail "after resume the checkpoint is at step $first_new, not past $step_at_signal: started afresh"; }
log "2. requeued run resumed: checkpoint at step $first_new > $step_at_signal, $(seconds_since "$t0") s after the signal"

# ---- 3. SIGTERM: checkpoint, exit 0, COMPLETED ----
t0=$(date +%s.%N)
slurm_signal "$job" TERM || fail "scancel --signal=TERM failed"
state=$(slurm_wait_end "$job" "$WAIT") || { failed "$job"; fail "job $job did not end after SIGTERM"; }
exit_code=$(slurm_field "$job" ExitCode)
[[ $state == COMPLETED && $exit_code == 0:0 ]] ||
    { failed "$job"; fail "after SIGTERM job $job is $state with exit code $exit_code, not COMPLETED 0:0"; }
final_step=$(checkpoint_step "$output/last.safetensors")
[[ $final_step -ge $first_new ]] || fail "the final checkpoint (step $final_step) is older than step $first_new"
log "3. SIGTERM: job COMPLETED 0:0 after $(seconds_since "$t0") s, checkpoint at step $final_step"

# ---- 4. scontrol requeue from outside, then resume ----
t0=$(date +%s.%N)
job2=$(submit) || fail "sbatch refused the second job"
slurm_wait_state "$job2" RUNNING "$WAIT" || { failed "$job2"; fail "job $job2 did not start"; }
wait_for_log "$job2" "--output" || { failed "$job2"; fail "job $job2 printed no command line"; }
grep -q -- "--resume" <<<"$(job_log "$job2")" ||
    { failed "$job2"; fail "a new job over an output directory with a checkpoint was not given --resume"; }
wait_for_step "$output/last.safetensors" $((final_step + 1)) "$WAIT" ||
    { failed "$job2"; fail "job $job2 did not continue past step $final_step"; }
slurm_requeue "$job2" || fail "scontrol requeue $job2 failed"
deadline=$((SECONDS + WAIT))
while [[ $(slurm_field "$job2" Restarts) != 1 ]]; do
    ((SECONDS < deadline)) || { failed "$job2"; fail "job $job2 did not requeue"; }
    sleep 0.25
done
slurm_wait_state "$job2" RUNNING "$WAIT" || { failed "$job2"; fail "requeued job $job2 did not run again"; }
step_before=$(checkpoint_step "$output/last.safetensors")
wait_for_step "$output/last.safetensors" $((step_before + 1)) "$WAIT" ||
    { failed "$job2"; fail "requeued job $job2 did not continue past step $step_before"; }
resumed_in_run "$job2" 1 ||
    { failed "$job2"; fail "requeued job $job2 did not resume"; }
log "4. scontrol requeue: job $job2 ran again and resumed past step $step_before after $(seconds_since "$t0") s"
scancel "$job2"

pass "trained, checkpointed, signalled, requeued and resumed in $(seconds_since "$started") s${blas_expect:+; dtrain chose better BLAS kernels than the forced Prescott}"
