#!/usr/bin/env bash
# run-all.sh: every cluster test in order, each bounded in time; one line per test, then `N passed, N failed`.
#
#   Tests/cluster/run-all.sh [--mock-only | --with-mock] [NAME...]
#
# The first tests check the infrastructure (the launcher, the namespace hosts); then the multi-host, Slurm and
# fault tests run against the real binary (DTRAIN_BIN, default .build/release/dtrain). --mock-only runs them against
# fixtures/mock-dtrain.c instead (a small C program with dtrain's cluster contract: for working on the scripts
# themselves), --with-mock runs both. NAME picks tests
# whose name contains it. Each test's full output goes to RUN_ALL_LOGS (a temporary directory unless set, removed
# when everything passed); a failing test's last lines are printed. Exit status 1 when any test failed.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
limit=${TEST_LIMIT:-600}
logs=${RUN_ALL_LOGS:-$(mktemp -d /tmp/dtrain-cluster-logs.XXXXXX)}
mkdir -p "$logs"

mode=dtrain
filters=()
for arg in "$@"; do
    case $arg in
        --mock-only) mode=mock ;;
        --dtrain-only) mode=dtrain ;;
        --with-mock) mode=all ;;
        -h|--help) sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "run-all.sh: unknown option $arg" >&2; exit 2 ;;
        *) filters+=("$arg") ;;
    esac
done

# name | environment | script and arguments
tests=(
    "launcher||test-launcher.sh"
    "netns-mpi||test-netns-mpi.sh"
    "shaped-link||test-shaped-link.sh"
)
for kind in mock dtrain; do
    [[ $mode != all && $mode != "$kind" ]] && continue
    env_=""
    [[ $kind == mock ]] && env_="DTRAIN_TEST_MOCK=1"
    tests+=(
        "multihost-$kind|$env_|test-multihost.sh"
        "slurm-$kind|$env_|test-slurm.sh"
        "faults-kill-rank-$kind|$env_|test-faults.sh kill-rank"
        "faults-link-down-$kind|$env_|test-faults.sh link-down"
        "faults-sigterm-$kind|$env_|test-faults.sh sigterm"
        "faults-kill-writer-$kind|$env_|test-faults.sh kill-writer"
        "faults-disk-full-$kind|$env_|test-faults.sh disk-full"
    )
    # The batch script's other way to start ranks: srun --mpi=pmix.
    tests+=("slurm-srun-$kind|$env_ DTRAIN_LAUNCHER=srun|test-slurm.sh")
done

# Namespaces left by a run that was killed outright would only confuse this one.
bash "$here/netns.sh" sweep 2>/dev/null

passed=0 failed=0 skipped=0
started=$SECONDS
for entry in "${tests[@]}"; do
    IFS='|' read -r name env_ command <<<"$entry"
    if [[ ${#filters[@]} -gt 0 ]]; then
        match=0
        for f in "${filters[@]}"; do [[ $name == *"$f"* ]] && match=1; done
        [[ $match -eq 1 ]] || continue
    fi
    log_file="$logs/$name.log"
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086 # env_ and command are lists of words
    env TEST_NAME="$name" $env_ timeout -k 10 "$limit" bash $here/$command >"$log_file" 2>&1 </dev/null
    status=$?
    elapsed=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    verdict=$(grep -E '^(PASS|FAIL|SKIP): ' "$log_file" | tail -n 1)
    if [[ $status -eq 124 || $status -eq 137 ]]; then
        result=FAIL detail="timed out after $limit s"
    elif [[ $status -ne 0 ]]; then
        result=FAIL detail=${verdict#FAIL: }
        [[ -n $detail ]] || detail="exit status $status"
    elif [[ $verdict == PASS:* ]]; then
        result=PASS detail=${verdict#PASS: }
    elif [[ $verdict == SKIP:* ]]; then
        result=SKIP detail=${verdict#SKIP: }
    else
        result=FAIL detail="exited 0 without a verdict"
    fi
    printf '%-4s %-26s %7s s  %s\n' "$result" "$name" "$elapsed" "$detail"
    case $result in
        PASS) passed=$((passed + 1)) ;;
        SKIP) skipped=$((skipped + 1)) ;;
        FAIL)
            failed=$((failed + 1))
            echo "     --- last lines of $log_file:"
            tail -n 30 "$log_file" | sed 's/^/     | /'
            ;;
    esac
done
if [[ $failed -eq 0 && -z ${RUN_ALL_LOGS:-} ]]; then
    rm -rf "$logs"
    echo "cluster tests: $((SECONDS - started)) s"
else
    echo "cluster tests: $((SECONDS - started)) s, logs in $logs"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[[ $failed -eq 0 ]]
