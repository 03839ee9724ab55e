#!/usr/bin/env bash
# test-launcher.sh: launch/dtrain-mpirun builds the mpirun command the rules ask for, and a real 2-rank launch
# hands every rank the thread count and the DTRAIN_* variables.
TEST_NAME=${TEST_NAME:-launcher}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
set -u

launcher="$REPO/launch/dtrain-mpirun"
cores=$(nproc)
# Hide the caller's settings: each check below decides them.
unset OPENBLAS_NUM_THREADS SLURM_JOB_ID SLURM_NTASKS

# dry NAME ARGS...: the command line (the second line of --dry-run's output).
dry() { env -u OPENBLAS_NUM_THREADS "$launcher" --dry-run "$@" c.json | sed -n 2p; }
expect() { grep -qF -- "$2" <<<"$1" || fail "$3: expected '$2' in: $1"; }
refuse() { grep -qF -- "$2" <<<"$1" && fail "$3: did not expect '$2' in: $1"; return 0; }

line=$(dry -n 1)
expect "$line" "OPENBLAS_NUM_THREADS=$cores" "1 rank gets every core"
[[ $cores -gt 1 ]] && expect "$line" "--bind-to none" "several threads per rank are not bound to one core"
line=$(dry -n "$cores")
expect "$line" "OPENBLAS_NUM_THREADS=1" "one rank per core gets one thread"
expect "$line" "--bind-to core" "one thread per rank is bound to a core"
refuse "$line" "mpi_yield_when_idle" "ranks = cores need no yielding"
refuse "$line" "--oversubscribe" "--oversubscribe only when asked"
if [[ $EUID -eq 0 ]]; then expect "$line" "--allow-run-as-root" "root"; else refuse "$line" "--allow-run-as-root" "not root"; fi
message=$("$launcher" --dry-run -n $((cores * 4)) c.json 2>&1) && fail "more ranks than cores without --oversubscribe was accepted"
expect "$message" "--oversubscribe" "the refusal names the option"
line=$(dry -n $((cores * 4)) --oversubscribe)
expect "$line" "--mca mpi_yield_when_idle 1" "ranks > cores yield"
expect "$line" "--bind-to none" "oversubscribed ranks are not bound"
expect "$line" "--oversubscribe" "asked for"
printf 'node-a slots=2\nnode-b slots=2  # comment\n\n# node-c slots=8\n' >"$TEST_TMP/hostfile"
line=$(dry -n 4 --hostfile "$TEST_TMP/hostfile")
expect "$line" "--hostfile $TEST_TMP/hostfile" "hostfile passed"
expect "$line" "OPENBLAS_NUM_THREADS=$(( cores / 2 > 0 ? cores / 2 : 1 ))" "2 ranks on each node share its cores"
line=$(dry -n 2 --hostfile "$TEST_TMP/hostfile")
expect "$line" "OPENBLAS_NUM_THREADS=$(( cores / 2 > 0 ? cores / 2 : 1 ))" "slots are filled in order"
line=$(dry -n 2 --threads 3)
expect "$line" "OPENBLAS_NUM_THREADS=3" "--threads wins"
line=$(DTRAIN_PROBE=1 OPENBLAS_CORETYPE=Haswell "$launcher" --dry-run -n 1 c.json | sed -n 2p)
expect "$line" "-x DTRAIN_PROBE" "DTRAIN_* forwarded"
expect "$line" "-x OPENBLAS_CORETYPE" "OPENBLAS_* forwarded"
line=$(SLURM_JOB_ID=7 SLURM_NTASKS=4 SLURM_JOB_NUM_NODES=2 SLURM_CPUS_PER_TASK=3 "$launcher" --dry-run c.json | sed -n 2p)
refuse "$line" " -n " "inside an allocation mpirun reads the ranks from Slurm"
expect "$line" "OPENBLAS_NUM_THREADS=3" "inside an allocation threads = cpus per task"
for bad in "-n 0" "-n x" "--threads 0" "--bogus" ""; do
    # shellcheck disable=SC2086
    "$launcher" --dry-run $bad c.json >/dev/null 2>&1 && fail "bad arguments '$bad' were accepted"
done
"$launcher" -n 1 >/dev/null 2>&1 && fail "a launch without a config was accepted"

# A real launch: every rank sees the thread count and a forwarded variable.
cat >"$TEST_TMP/probe" <<'PROBE'
#!/bin/sh
echo "rank=$OMPI_COMM_WORLD_RANK threads=$OPENBLAS_NUM_THREADS omp=$OMP_NUM_THREADS probe=$DTRAIN_PROBE args=$*"
PROBE
chmod +x "$TEST_TMP/probe"
output=$(DTRAIN_BIN="$TEST_TMP/probe" DTRAIN_PROBE=forwarded timeout -k 5 60 "$launcher" -n 2 -- c.json --epochs 1 2>&1) ||
    { echo "$output"; fail "the 2-rank launch failed"; }
[[ $(grep -c "threads=1 omp=1 probe=forwarded args=c.json --epochs 1" <<<"$output") -eq 2 ]] ||
    { echo "$output"; fail "the ranks did not get OPENBLAS_NUM_THREADS=1, OMP_NUM_THREADS=1 and DTRAIN_PROBE"; }
DTRAIN_BIN="$TEST_TMP/missing" "$launcher" -n 1 c.json >/dev/null 2>&1 && fail "a missing binary was not reported"

# The checkpoint helpers the other tests rely on: equal files compare equal, different ones do not.
mock=$(compile_fixture mock-dtrain) || fail "cannot compile the mock dtrain"
for steps in 3 4; do
    mkdir -p "$TEST_TMP/ckpt$steps"
    timeout 30 "$mock" c.json --output "$TEST_TMP/ckpt$steps" --max-steps "$steps" --step-seconds 0 >/dev/null ||
        fail "the mock did not write a checkpoint"
done
[[ $(checkpoint_step "$TEST_TMP/ckpt3/last.safetensors") == 3 ]] || fail "checkpoint_step misread the step"
compare_checkpoints "$TEST_TMP/ckpt3/last.safetensors" "$TEST_TMP/ckpt3/last.safetensors" 0 >/dev/null ||
    fail "a checkpoint differs from itself"
compare_checkpoints "$TEST_TMP/ckpt3/last.safetensors" "$TEST_TMP/ckpt4/last.safetensors" 0 >/dev/null &&
    fail "checkpoints of steps 3 and 4 compared equal"
pass "dry-run rules, a 2-rank launch, checkpoint helpers"
