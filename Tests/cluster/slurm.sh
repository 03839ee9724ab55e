#!/usr/bin/env bash
# slurm.sh: a private one-node Slurm cluster for tests of the batch-job path (Debian's slurm-wlm, 22.05).
#
# slurmctld and slurmd run as root from a temporary directory with their own slurm.conf (free ports, no munge:
# AuthType=auth/none, CredType=cred/none; fast scheduling and requeue: sched_interval=1, cred_expire=10).
# Every client finds the cluster through SLURM_CONF. On exit (also on failure, timeout or SIGINT/SIGTERM) the
# jobs are cancelled, the daemons stopped and the directory removed.
#
# As a command:
#   slurm.sh [--cpus N] [--timeout SEC] job [SBATCH_OPTIONS...] SCRIPT [ARGS...]
#       starts the cluster, submits SCRIPT, waits until the job ends, prints its state and exit code
#       (`scontrol show job`), exits 0 when it COMPLETED with exit code 0:0
#   slurm.sh [--cpus N] [--timeout SEC] run -- COMMAND...
#       starts the cluster and runs COMMAND with SLURM_CONF set; COMMAND may call the actions below
#   slurm.sh submit [SBATCH_OPTIONS...] SCRIPT [ARGS...]   prints the job id
#   slurm.sh state JOB                                     prints the job's state (PENDING, RUNNING, COMPLETED...)
#   slurm.sh wait-state JOB STATE [SEC]                    waits until the job is in STATE (a regex)
#   slurm.sh wait-end JOB [SEC]                            waits until the job has ended; prints its state
#   slurm.sh signal JOB [SIGNAL]                           sends SIGNAL (default USR1) to the batch shell only
#   slurm.sh requeue JOB                                   requeues the job (it runs again, SLURM_RESTART_COUNT+1)
#   slurm.sh field JOB NAME                                prints one field of `scontrol show job` (e.g. Restarts)
#   (these act on the cluster named by SLURM_CONF)
#
# As a library (`source slurm.sh`): slurm_up CPUS, slurm_down and slurm_<action> for each action above.
#
# Not root, or slurm-wlm not installed: prints `SKIP: <reason>` and exits 0 (slurm_up returns 3).

slurm_log() { printf 'slurm: %s\n' "$*" >&2; }

# A TCP port nobody listens on, from a range that differs per process.
slurm_free_port() {
    local port tries
    for ((tries = 0; tries < 200; tries++)); do
        port=$(( 20000 + (RANDOM * 32768 + RANDOM + $$) % 30000 ))
        if ! ss -Htln 2>/dev/null | awk '{print $4}' | grep -q ":${port}\$"; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

# slurm_up CPUS: writes the config, starts both daemons, waits for the node to be idle. Returns 3 after printing
# `SKIP: reason` when Slurm cannot run here.
slurm_up() {
    local cpus=${1:-$(nproc)}
    if [[ $EUID -ne 0 ]]; then
        echo "SKIP: the private Slurm cluster runs its daemons as root (running as uid $EUID)"
        return 3
    fi
    local tool
    for tool in slurmctld slurmd sbatch squeue scontrol scancel sinfo; do
        if ! command -v "$tool" >/dev/null; then
            echo "SKIP: $tool is missing (install slurm-wlm: bash launch/setup.sh)"
            return 3
        fi
    done
    SLURM_TEST_DIR=$(mktemp -d /tmp/dtslurm-$$.XXXXXX) || return 1
    chmod 755 "$SLURM_TEST_DIR"
    mkdir -p "$SLURM_TEST_DIR"/{state,spool,log}
    local node ctld_port slurmd_port
    node=$(hostname -s)
    ctld_port=$(slurm_free_port) && slurmd_port=$(slurm_free_port) || { slurm_log "no free port"; return 1; }
    [[ $ctld_port == "$slurmd_port" ]] && slurmd_port=$((ctld_port + 1))
    cat >"$SLURM_TEST_DIR/slurm.conf" <<CONF
# A one-node test cluster written by Tests/cluster/slurm.sh; removed when the test ends.
ClusterName=dtrain-test
SlurmctldHost=${node}(127.0.0.1)
SlurmctldPort=${ctld_port}
SlurmdPort=${slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/none
CredType=cred/none
AuthInfo=cred_expire=10
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
JobRequeue=1
ReturnToService=2
KillWait=10
MinJobAge=300
MessageTimeout=10
MailProg=/bin/true
StateSaveLocation=${SLURM_TEST_DIR}/state
SlurmdSpoolDir=${SLURM_TEST_DIR}/spool
SlurmctldPidFile=${SLURM_TEST_DIR}/slurmctld.pid
SlurmdPidFile=${SLURM_TEST_DIR}/slurmd.pid
SlurmctldLogFile=${SLURM_TEST_DIR}/log/slurmctld.log
SlurmdLogFile=${SLURM_TEST_DIR}/log/slurmd.log
NodeName=${node} NodeAddr=127.0.0.1 CPUs=${cpus} State=UNKNOWN
PartitionName=test Nodes=${node} Default=YES MaxTime=INFINITE State=UP
CONF
    export SLURM_CONF="$SLURM_TEST_DIR/slurm.conf"
    slurmctld -D -i -f "$SLURM_CONF" >"$SLURM_TEST_DIR/log/slurmctld.out" 2>&1 &
    SLURM_CTLD_PID=$!
    slurmd -D -f "$SLURM_CONF" >"$SLURM_TEST_DIR/log/slurmd.out" 2>&1 &
    SLURM_SLURMD_PID=$!
    local waited
    for ((waited = 0; waited < 100; waited++)); do
        [[ $(sinfo -h -o %T 2>/dev/null) == idle ]] && return 0
        if ! kill -0 "$SLURM_CTLD_PID" 2>/dev/null || ! kill -0 "$SLURM_SLURMD_PID" 2>/dev/null; then
            break
        fi
        sleep 0.2
    done
    slurm_log "the node did not become idle; daemon logs follow"
    tail -n 20 "$SLURM_TEST_DIR"/log/* >&2
    return 1
}

# slurm_down: cancels the jobs, stops the daemons, removes the directory. Idempotent.
slurm_down() {
    [[ -n ${SLURM_TEST_DIR:-} && -d $SLURM_TEST_DIR ]] || return 0
    local jobs waited
    jobs=$(squeue -h -o %i 2>/dev/null)
    if [[ -n $jobs ]]; then
        scancel $jobs 2>/dev/null
        for ((waited = 0; waited < 50; waited++)); do
            [[ -z $(squeue -h -o %i 2>/dev/null) ]] && break
            sleep 0.2
        done
    fi
    scontrol shutdown >/dev/null 2>&1
    for ((waited = 0; waited < 50; waited++)); do
        kill -0 "$SLURM_CTLD_PID" 2>/dev/null || kill -0 "$SLURM_SLURMD_PID" 2>/dev/null || break
        sleep 0.2
    done
    kill -9 "$SLURM_CTLD_PID" "$SLURM_SLURMD_PID" 2>/dev/null
    # Step daemons of jobs that were still running hold the spool directory: end them too.
    local pid
    for pid in $(pgrep -x slurmstepd 2>/dev/null); do
        grep -qs "$SLURM_TEST_DIR" "/proc/$pid/cmdline" "/proc/$pid/environ" && kill -9 "$pid" 2>/dev/null
    done
    wait "$SLURM_CTLD_PID" "$SLURM_SLURMD_PID" 2>/dev/null
    if [[ -n ${SLURM_KEEP_LOGS:-} ]]; then
        mkdir -p "$SLURM_KEEP_LOGS" && cp -r "$SLURM_TEST_DIR/log" "$SLURM_KEEP_LOGS/" 2>/dev/null
    fi
    rm -rf "$SLURM_TEST_DIR"
    SLURM_TEST_DIR=""
}

slurm_submit() { sbatch --parsable "$@" | cut -d';' -f1; }

# The job's state, from squeue while it is queued or running, else from the controller's record.
slurm_state() {
    local state
    state=$(squeue -h -j "$1" -o %T 2>/dev/null)
    [[ -z $state ]] && state=$(slurm_field "$1" JobState)
    echo "$state"
}

slurm_field() {
    scontrol -o show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}

slurm_wait_state() {
    local job=$1 want=$2 limit=${3:-60} start=$SECONDS state
    while ((SECONDS - start < limit)); do
        state=$(slurm_state "$job")
        [[ $state =~ ^($want)$ ]] && return 0
        sleep 0.25
    done
    slurm_log "job $job is '$state', not '$want', after ${limit} s"
    return 1
}

slurm_wait_end() {
    local job=$1 limit=${2:-120}
    slurm_wait_state "$job" "COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED" \
        "$limit" || return 1
    slurm_state "$job"
}

slurm_signal() { scancel --signal="${2:-USR1}" --batch "$1"; }

slurm_requeue() { scontrol requeue "$1"; }

slurm_usage() { sed -n '2,/^$/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

slurm_main() {
    set -u
    local cpus timeout_seconds=300 action=""
    cpus=$(nproc)
    while [[ $# -gt 0 ]]; do
        case $1 in
            --cpus) cpus=$2; shift 2 ;;
            --timeout) timeout_seconds=$2; shift 2 ;;
            -h|--help) slurm_usage; return 0 ;;
            *) action=$1; shift; break ;;
        esac
    done
    case $action in
        submit) slurm_submit "$@"; return ;;
        state) slurm_state "$@"; return ;;
        wait-state) slurm_wait_state "$@"; return ;;
        wait-end) slurm_wait_end "$@"; return ;;
        signal) slurm_signal "$@"; return ;;
        requeue) slurm_requeue "$@"; return ;;
        field) slurm_field "$@"; return ;;
        job|run) ;;
        *) echo "slurm.sh: unknown action '$action' (see --help)" >&2; return 2 ;;
    esac

    SLURM_CHILD=""
    trap 'slurm_down' EXIT
    trap '[[ -n $SLURM_CHILD ]] && kill $SLURM_CHILD 2>/dev/null; exit 143' TERM
    trap '[[ -n $SLURM_CHILD ]] && kill $SLURM_CHILD 2>/dev/null; exit 130' INT
    local started=$SECONDS status
    slurm_up "$cpus"
    status=$?
    [[ $status -eq 3 ]] && return 0
    [[ $status -ne 0 ]] && { slurm_log "bring-up failed"; return 1; }
    slurm_log "up in $((SECONDS - started)) s (SLURM_CONF=$SLURM_CONF)"
    if [[ $action == run ]]; then
        [[ ${1:-} == -- ]] && shift
        timeout -k 5 "$timeout_seconds" "$@" &
        SLURM_CHILD=$!
        wait "$SLURM_CHILD"
        status=$?
        SLURM_CHILD=""
        return $status
    fi
    local job state exit_code
    job=$(slurm_submit "$@") || return 1
    slurm_log "submitted job $job"
    state=$(slurm_wait_end "$job" "$timeout_seconds") || return 1
    exit_code=$(slurm_field "$job" ExitCode)
    echo "job $job: $state, exit code $exit_code"
    [[ $state == COMPLETED && $exit_code == 0:0 ]]
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    slurm_main "$@"
    exit $?
fi
