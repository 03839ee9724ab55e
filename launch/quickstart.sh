#!/usr/bin/env bash
# quickstart.sh: from a fresh clone to a trained network. Installs and builds (launch/setup.sh), prepares
# Fashion-MNIST into data/fashion-mnist (once), then trains with 2 MPI ranks through launch/dtrain-mpirun.
#
#   bash launch/quickstart.sh                 the run below
#   QUICKSTART_RANKS=1 bash launch/quickstart.sh
#   bash launch/quickstart.sh --epochs 1      extra arguments go to dtrain
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

# ---- What the quick start trains: change these, or pass extra dtrain arguments on the command line ----------
QUICKSTART_CONFIG=${QUICKSTART_CONFIG:-configs/fashion-lenet.json}
QUICKSTART_DATA=${QUICKSTART_DATA:-data/fashion-mnist}
QUICKSTART_OUTPUT=${QUICKSTART_OUTPUT:-runs/quickstart}
QUICKSTART_RANKS=${QUICKSTART_RANKS:-2}
# --overwrite: running the quick start again replaces its own earlier run in runs/quickstart.
DTRAIN_ARGS=("$QUICKSTART_CONFIG" --data "$QUICKSTART_DATA" --output "$QUICKSTART_OUTPUT" --overwrite)

bash launch/setup.sh
dtrain=${DTRAIN_BIN:-$repo/.build/release/dtrain}

if [[ -d $QUICKSTART_DATA && -n $(ls -A "$QUICKSTART_DATA" 2>/dev/null) ]]; then
    echo "quickstart: $QUICKSTART_DATA is prepared already"
else
    echo "quickstart: preparing Fashion-MNIST into $QUICKSTART_DATA"
    "$dtrain" prepare fashion-mnist "$QUICKSTART_DATA"
fi

oversubscribe=()
[[ $QUICKSTART_RANKS -gt $(nproc) ]] && oversubscribe=(--oversubscribe)
echo "quickstart: training $QUICKSTART_CONFIG with $QUICKSTART_RANKS ranks; output in $QUICKSTART_OUTPUT"
exec "$repo/launch/dtrain-mpirun" -n "$QUICKSTART_RANKS" "${oversubscribe[@]}" -- "${DTRAIN_ARGS[@]}" "$@"
