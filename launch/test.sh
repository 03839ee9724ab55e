#!/usr/bin/env bash
# test.sh: the project's whole test suite, as CI runs it. Checks the house size rules (tools/house_rules.py: lines,
# files, functions), builds in release mode, runs the Swift tests, then the
# cluster tests (launcher, multi-host over TCP in network namespaces, Slurm, faults: Tests/cluster/run-all.sh).
# The ConvNet tests run a second time under other OpenBLAS kernel sets (Prescott, and Haswell where the CPU has AVX2),
# and the fuzz tests a second time against a release build. swift test includes the report's browser test
# (ReportBrowserJobTests, headless chromium), which fails under CI=true when chromium is missing.
# Exits non-zero when anything failed. Run launch/setup.sh once before, on a new machine.
#
#   bash launch/test.sh                 everything
#   bash launch/test.sh --swift-only    build and swift test only
#   bash launch/test.sh --cluster-only  Tests/cluster/run-all.sh only (needs the release build)
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo" || exit 1
export PATH="/opt/swift/usr/bin:$PATH"

run_swift=1 run_cluster=1
for arg in "$@"; do
    case $arg in
        --swift-only) run_cluster=0 ;;
        --cluster-only) run_swift=0 ;;
        -h|--help) sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "test.sh: unknown option '$arg' (see --help)" >&2; exit 2 ;;
    esac
done

failures=()
step() {
    local name=$1 t0=$SECONDS
    shift
    echo "== $name"
    if "$@"; then
        echo "== $name: ok ($((SECONDS - t0)) s)"
    else
        echo "== $name: FAILED ($((SECONDS - t0)) s)"
        failures+=("$name")
    fi
}

if [[ $run_swift -eq 1 ]]; then
    # Issue 14's size rules (120 columns, 400-line files, 60-line functions): a second, and no build needed.
    step "house rules" python3 tools/house_rules.py
fi
if [[ $run_swift -eq 1 || ! -x .build/release/dtrain ]]; then
    step "swift build -c release" swift build -c release
fi
if [[ $run_swift -eq 1 ]]; then
    # Two cores: the test processes run one after another (multi-rank tests start their own mpirun).
    step "swift test" swift test --no-parallel
    # The numeric tests again under other OpenBLAS kernel sets: other block sizes and SIMD widths sum in other
    # orders, as other processors do, so a tolerance fitted to one machine fails here instead of on a user's.
    kernel_sets=(Prescott)
    grep -qw avx2 /proc/cpuinfo && kernel_sets+=(Haswell)
    for core in "${kernel_sets[@]}"; do
        step "swift test ConvNetTests, OpenBLAS $core kernels" \
            env OPENBLAS_CORETYPE="$core" swift test --skip-build --no-parallel --filter ConvNetTests
    done
    # The fuzz tests once more against optimised code, as users run it: Shard and Trainer keep their bounds and
    # overflow checks in release builds, and this shows the parsers still refuse bad bytes there without a trap.
    # A build of its own (testing enabled), so the release binary the cluster tests use stays as built.
    step "fuzz tests, release build" env DTRAIN_FUZZ_ITERATIONS="${DTRAIN_FUZZ_ITERATIONS:-30000}" \
        swift test -c release -Xswiftc -enable-testing --scratch-path .build-fuzz --no-parallel \
        --filter 'SafeTensorsFuzzTests|DecoderFuzzTests'
fi
if [[ $run_cluster -eq 1 ]]; then
    step "cluster tests" bash Tests/cluster/run-all.sh
fi

if [[ ${#failures[@]} -gt 0 ]]; then
    echo "test.sh: failed: ${failures[*]}"
    exit 1
fi
echo "test.sh: all passed"
