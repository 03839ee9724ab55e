#!/usr/bin/env bash
# setup.sh: everything dtrain needs on a Debian 12 machine, then a release build. Safe to run again: packages
# already installed are not fetched again, and the build is incremental.
#
#   bash launch/setup.sh              system packages, Python test tools (torch and ONNX optional), release build
#   bash launch/setup.sh --no-build   the same without the build
#   bash launch/setup.sh --data-only  only what `dtrain prepare fashion-mnist` needs (the dataset package)
#
# Needs root (or sudo) for apt-get. The Swift toolchain is expected in /opt/swift (see README.md).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=1 data_only=0
for arg in "$@"; do
    case $arg in
        --no-build) build=0 ;;
        --data-only) data_only=1; build=0 ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "setup.sh: unknown option '$arg' (see --help)" >&2; exit 2 ;;
    esac
done

say() { printf 'setup: %s\n' "$*"; }

# Every Debian package the project uses, and why.
packages=(
    libopenmpi-dev openmpi-bin     # MPI: headers and libraries for the build, mpirun and mpicc
    libopenblas-dev                # GEMM for convolution and fully connected layers
    libturbojpeg0-dev libpng-dev   # image decoding
    pkg-config                     # SwiftPM finds the C libraries through it
    dataset-fashion-mnist          # the data the quick start and the tests train on
    libjpeg-turbo-progs            # cjpeg/djpeg: test images
    python3-numpy python3-pip      # checkpoint comparisons in the tests; pip for safetensors
    iproute2                       # ip netns: the multi-host test
    slurm-wlm                      # slurmctld/slurmd/sbatch: the batch-job test
    chromium                       # headless browser: the test that OUTPUT/report.html renders (ReportBrowserJobTests)
)
[[ $data_only -eq 1 ]] && packages=(dataset-fashion-mnist)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

sudo_=()
[[ $EUID -eq 0 ]] || sudo_=(sudo)
if [[ ${#missing[@]} -gt 0 ]]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo_[@]}" apt-get update -qq
    "${sudo_[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
else
    say "all ${#packages[@]} Debian packages are installed"
fi
[[ $data_only -eq 1 ]] && { say "Fashion-MNIST is in /usr/share/datasets/fashion-mnist"; exit 0; }

# Python: safetensors for the interoperability tests (the checkpoints must load in Python), TensorBoard to
# check that its own reader parses the event files. Both are optional for training.
python=python3
pip_install() {
    "$python" -m pip install -q --disable-pip-version-check "$@" 2>/dev/null ||
        "$python" -m pip install -q --disable-pip-version-check --break-system-packages "$@"
}
# python_module NAME WITHOUT: installs the Python module NAME unless it imports already; WITHOUT says what a
# failed install costs.
python_module() {
    if "$python" -c "import $1" 2>/dev/null; then
        say "python $1 is installed"
    elif pip_install "$1"; then
        say "installed python $1"
    else
        say "could not install python $1: $2"
    fi
}
python_module safetensors "the tests that read checkpoints from Python will say SKIP"
python_module tensorboard "(optional) the TensorBoard cross-check will say SKIP"
"$python" -c 'import numpy' 2>/dev/null || pip_install numpy || say "no numpy for $python: tests use /usr/bin/python3"

# Optional test tools for the PyTorch and ONNX interoperability checks (Tests/python, run by InteropTests): Debian's
# torch and torchvision for Debian's python3, and safetensors, onnx and onnxruntime from PyPI for the same
# interpreter, pinned to Debian's numpy (torch 1.13 is built against numpy 1.x). Where any cannot be installed,
# those tests print SKIP and the rest of the suite runs.
system_python=/usr/bin/python3
torch_packages=(python3-torch python3-torchvision)
torch_missing=()
for p in "${torch_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || torch_missing+=("$p")
done
if [[ ${#torch_missing[@]} -gt 0 ]]; then
    say "installing ${torch_missing[*]} (optional: the PyTorch interoperability tests)"
    DEBIAN_FRONTEND=noninteractive "${sudo_[@]}" apt-get install -y -qq "${torch_missing[@]}" >/dev/null ||
        say "SKIP: could not install ${torch_missing[*]}: the PyTorch and ONNX interoperability tests will say SKIP"
fi
if "$system_python" -c 'import torch' 2>/dev/null; then
    if "$system_python" -c 'import safetensors, onnx, onnxruntime' 2>/dev/null; then
        say "safetensors, onnx and onnxruntime are installed for $system_python"
    else
        constraint=$(mktemp)
        "$system_python" -c 'import numpy; print("numpy==" + numpy.__version__)' >"$constraint"
        if "$system_python" -m pip install -q --disable-pip-version-check --break-system-packages -c "$constraint" \
            safetensors onnx onnxruntime 2>/dev/null; then
            say "installed safetensors, onnx and onnxruntime for $system_python"
        else
            say "SKIP: could not install safetensors, onnx and onnxruntime for $system_python:" \
                "the ONNX checks will say SKIP"
        fi
        rm -f "$constraint"
    fi
fi

export PATH="/opt/swift/usr/bin:$PATH"
if [[ $build -eq 1 ]]; then
    command -v swift >/dev/null || { echo "setup.sh: no swift in /opt/swift/usr/bin or on PATH" >&2; exit 1; }
    say "swift build -c release"
    (cd "$repo" && swift build -c release)
    say "built $repo/.build/release/dtrain"
fi
say "for swift in your shell: export PATH=/opt/swift/usr/bin:\$PATH"
