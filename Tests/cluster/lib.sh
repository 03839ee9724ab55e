# lib.sh: what every cluster test shares (sourced, never run). Each test prints `PASS: ...`, `FAIL: ...` or
# `SKIP: ...` as its last word and exits 0 (pass or skip) or 1 (fail); run-all.sh reads those lines.
#
# Parameters (environment), with their defaults:
#   DTRAIN_BIN          the binary under test                     (.build/release/dtrain)
#   DTRAIN_TEST_MOCK    1: test the scripts with Tests/cluster/fixtures/mock-dtrain.c instead of dtrain (the
#                       mock keeps dtrain's cluster-facing contract: steps, signals, checkpoints, --resume)
#   DTRAIN_TEST_CONFIG  the config the tests train                (configs/lenet5.json)
#   DTRAIN_TEST_DATA    the prepared Fashion-MNIST directory      (data/fashion-mnist; prepared when missing)
#   DTRAIN_TEST_ARGS    extra dtrain arguments for every run      (a small batch, steps counted by --max-steps)
#   DTRAIN_TEST_CHECKPOINT_ARGS  makes dtrain write last.safetensors every few steps (see CHECKPOINT_EVERY below)

CLUSTER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$CLUSTER_DIR/../.." && pwd)
export PATH="/opt/swift/usr/bin:$PATH"

DTRAIN_TEST_CONFIG=${DTRAIN_TEST_CONFIG:-$REPO/configs/lenet5.json}
DTRAIN_TEST_DATA=${DTRAIN_TEST_DATA:-$REPO/data/fashion-mnist}
# The steps between two checkpoints in the fault tests; the hook below turns it into dtrain's arguments.
CHECKPOINT_EVERY=${CHECKPOINT_EVERY:-10}

# ---- Hooks where the dtrain command line is decided (the only place that knows dtrain's flags) ----------------
# dtrain_checkpoint_args: the arguments that make dtrain write OUTPUT/last.safetensors every CHECKPOINT_EVERY steps.
dtrain_checkpoint_args() {
    if [[ -n ${DTRAIN_TEST_CHECKPOINT_ARGS:-} ]]; then
        echo "$DTRAIN_TEST_CHECKPOINT_ARGS"
    elif [[ ${DTRAIN_TEST_MOCK:-0} == 1 ]]; then
        echo "--checkpoint-every $CHECKPOINT_EVERY"
    else
        echo "--set checkpoint.every_steps=$CHECKPOINT_EVERY"
    fi
}
# dtrain_common_args: arguments every test run gets after CONFIG (data, a small batch, extra ones from the env).
dtrain_common_args() {
    if [[ ${DTRAIN_TEST_MOCK:-0} == 1 ]]; then
        echo "--step-seconds ${MOCK_STEP_SECONDS:-0.2} ${DTRAIN_TEST_ARGS:-}"
    else
        # A progress line every step, so the fault tests can tell how many steps a kill lost.
        # Many epochs: a run that a fault should stop must not end by itself first (LeNet-5 trains fast).
        echo "--data $DTRAIN_TEST_DATA --batch-size ${DTRAIN_TEST_BATCH:-32} --epochs 100000 --set log.every_steps=1 ${DTRAIN_TEST_ARGS:-}"
    fi
}

log() { printf '[%s %s] %s\n' "$(date +%T)" "${TEST_NAME:-test}" "$*" >&2; }
pass() { echo "PASS: ${TEST_NAME:-test}${1:+: $1}"; exit 0; }
fail() { echo "FAIL: ${TEST_NAME:-test}: $*"; exit 1; }
skip() { echo "SKIP: ${TEST_NAME:-test}: $*"; exit 0; }

# A scratch directory removed on exit; tests add their own cleanup with `on_exit CMD`.
TEST_TMP=$(mktemp -d "/tmp/dtrain-${TEST_NAME:-test}.XXXXXX")
EXIT_ACTIONS=()
on_exit() { EXIT_ACTIONS+=("$*"); }
run_exit_actions() {
    local i
    for ((i = ${#EXIT_ACTIONS[@]} - 1; i >= 0; i--)); do eval "${EXIT_ACTIONS[i]}" || true; done
    [[ -n ${KEEP_TEST_TMP:-} ]] || rm -rf "$TEST_TMP"
}
trap run_exit_actions EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# namespace_hosts_up N: N namespace hosts of one slot each (netns.sh, sourced by the test), removed when the test
# ends however it ends; the test is skipped where namespaces cannot be made, and fails when they do not come up.
namespace_hosts_up() {
    netns_up "$1" 1
    case $? in
        0) ;;
        3) skip "no network namespaces here (reason above)" ;;
        *) netns_down; fail "the namespace hosts did not come up" ;;
    esac
    on_exit netns_down
}

# compile_fixture NAME: builds Tests/cluster/fixtures/NAME.c with mpicc; prints the binary's path.
compile_fixture() {
    local out="$TEST_TMP/$1"
    mpicc -O2 -o "$out" "$CLUSTER_DIR/fixtures/$1.c" >&2 || return 1
    echo "$out"
}

# use_dtrain: sets DTRAIN_BIN to the binary under test (the mock when DTRAIN_TEST_MOCK=1), or skips the test
# with the reason when that binary cannot train yet.
use_dtrain() {
    if [[ ${DTRAIN_TEST_MOCK:-0} == 1 ]]; then
        DTRAIN_BIN=$(compile_fixture mock-dtrain) || fail "cannot compile the mock dtrain"
        export DTRAIN_BIN
        return 0
    fi
    DTRAIN_BIN=${DTRAIN_BIN:-$REPO/.build/release/dtrain}
    export DTRAIN_BIN
    [[ -x $DTRAIN_BIN ]] || fail "$DTRAIN_BIN is not built (swift build -c release)"
    [[ -f $DTRAIN_TEST_CONFIG ]] || fail "the test config $DTRAIN_TEST_CONFIG is missing"
    ensure_data
}

# ensure_data: prepares Fashion-MNIST into DTRAIN_TEST_DATA unless it is there already.
ensure_data() {
    [[ -d $DTRAIN_TEST_DATA && -n $(ls -A "$DTRAIN_TEST_DATA" 2>/dev/null) ]] && return 0
    log "preparing Fashion-MNIST into $DTRAIN_TEST_DATA"
    timeout 600 "$DTRAIN_BIN" prepare fashion-mnist "$DTRAIN_TEST_DATA" >&2 || fail "dtrain prepare fashion-mnist failed"
}

# mpirun_base: the mpirun options every local test run needs (root flag, yielding when ranks share cores).
mpirun_base() {
    local opts="--mca mpi_yield_when_idle 1 --bind-to none"
    [[ $EUID -eq 0 ]] && opts="--allow-run-as-root $opts"
    echo "$opts"
}

# python_with MODULE: prints a python3 that imports MODULE (the one on PATH first, then Debian's).
python_with() {
    local py
    for py in python3 /usr/bin/python3; do
        command -v "$py" >/dev/null && "$py" -c "import $1" 2>/dev/null && { echo "$py"; return 0; }
    done
    return 1
}

# checkpoint_step FILE: prints the training step stored in a safetensors checkpoint's metadata, or nothing when
# it has none. Reads the header only (8-byte length, then JSON), with no dependency. This is the hook that knows
# where dtrain keeps its position: a metadata key "step" or "global_step", or "step" inside a metadata value that
# is itself JSON (e.g. {"state": "{\"epoch\": 2, \"step\": 340}"}).
checkpoint_step() {
    python3 - "$1" <<'PY'
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    (n,) = struct.unpack("<Q", f.read(8))
    header = json.loads(f.read(n))
meta = header.get("__metadata__") or {}
def find(meta):
    for key in ("global_step", "step"):
        if key in meta and str(meta[key]).lstrip("-").isdigit():
            return int(meta[key])
    for value in meta.values():
        if isinstance(value, str) and value.startswith("{"):
            try:
                inner = json.loads(value)
            except ValueError:
                continue
            if isinstance(inner, dict):
                found = find(inner)
                if found is not None:
                    return found
    return None
step = find(meta)
if step is not None:
    print(step)
PY
}

# compare_checkpoints A B [RELATIVE_TOLERANCE]: every tensor of A and B has the same name, dtype and shape, and
# max|a-b| <= tol * max(1, max|a|). tol 0 asks for bitwise equality. Prints the largest difference.
compare_checkpoints() {
    local py
    py=$(python_with numpy) || { echo "compare_checkpoints: no python3 with numpy (bash launch/setup.sh)"; return 2; }
    "$py" - "$1" "$2" "${3:-0}" <<'PY'
import json, struct, sys
import numpy as np

def load(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    dtypes = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64, "I32": np.int32,
              "U8": np.uint8, "I8": np.int8}
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        raw = data[8 + n + begin: 8 + n + end]
        tensors[name] = (info["dtype"], np.frombuffer(raw, dtype=dtypes[info["dtype"]]).reshape(info["shape"]))
    return tensors

a, b = load(sys.argv[1]), load(sys.argv[2])
tol = float(sys.argv[3])
if sorted(a) != sorted(b):
    print("tensor names differ: only in first %s, only in second %s" % (sorted(set(a) - set(b)), sorted(set(b) - set(a))))
    sys.exit(1)
worst, worst_name = 0.0, ""
for name in sorted(a):
    (da, ta), (db, tb) = a[name], b[name]
    if da != db or ta.shape != tb.shape:
        print("%s: %s%s vs %s%s" % (name, da, list(ta.shape), db, list(tb.shape)))
        sys.exit(1)
    if ta.size == 0:
        continue
    x, y = ta.astype(np.float64), tb.astype(np.float64)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        print("%s: non-finite values" % name)
        sys.exit(1)
    diff = float(np.max(np.abs(x - y)))
    scale = max(1.0, float(np.max(np.abs(x))))
    if diff / scale > worst:
        worst, worst_name = diff / scale, name
    if diff > tol * scale:
        print("%s differs: max |a-b| = %g (scale %g, tolerance %g)" % (name, diff, scale, tol))
        sys.exit(1)
print("%d tensors match; largest relative difference %g%s" % (len(a), worst, " in " + worst_name if worst_name else ""))
PY
}

# wait_for_file FILE SECONDS [PID]: waits until FILE exists (returns 1 on timeout or when PID has exited).
wait_for_file() {
    local file=$1 limit=$2 pid=${3:-} start=$SECONDS
    while ((SECONDS - start < limit)); do
        [[ -e $file ]] && return 0
        [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null && return 1
        sleep 0.1
    done
    return 1
}

# wait_for_step FILE STEP SECONDS [PID]: waits until the checkpoint FILE holds a step >= STEP.
wait_for_step() {
    local file=$1 want=$2 limit=$3 pid=${4:-} start=$SECONDS step
    while ((SECONDS - start < limit)); do
        if [[ -f $file ]]; then
            step=$(checkpoint_step "$file" 2>/dev/null)
            [[ -n $step && $step -ge $want ]] && return 0
        fi
        [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null && return 1
        sleep 0.1
    done
    return 1
}

# seconds_since T0: wall seconds since T0 (from `date +%s.%N`), one decimal.
seconds_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
