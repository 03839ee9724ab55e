#!/usr/bin/env bash
# transfer-learning.sh: the lecture's fine-tuning experiment on Fashion-MNIST, reproducible in a few minutes on
# two cores (docs/transfer-learning.md shows a run and what it means).
#
#   bash launch/transfer-learning.sh [--work DIR] [--seed N]
#
# 1. Pre-trains configs/fashion-lenet-16.json on the first five classes (t-shirt/top, trouser, pullover, dress, coat:
#    30,000 images, 3 epochs).
# 2. On the other five (sandal, shirt, sneaker, bag, ankle boot) with 10, 100 and 1,000 training images per class,
#    trains five ways and measures validation top-1 on 500 images per class. The learning rate is 0.05 (the
#    pre-training rate) for new weights and, as the lecture suggests, a tenth of it for pre-trained weights that are
#    fine-tuned (finetune.lr_mult 0.1). The head is fc1 and fc2 (the convolutional layers extract the features):
#      scratch            every layer from random weights
#      fine-tune all      pre-trained conv layers and fc1 fine-tuned, a new fc2 (the usual recipe)
#      fine-tune, new head  pre-trained conv layers fine-tuned, a new head (fc1 and fc2)
#      freeze convs       conv and batch-norm layers fixed, a new head trained
#      last layer         everything fixed but a new last layer (a linear classifier on fixed features)
#    Each run takes about the same number of steps: 20 epochs of 50 images, 10 of 500, 4 of 5,000.
# 3. Prints the table (validation top-1 and wall time of each run).
#
# Needs the release build and Debian's dataset-fashion-mnist (launch/setup.sh installs both). Writes only in DIR
# (default runs/transfer-learning): the prepared images, the subsets (symbolic links) and one folder per run.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$repo/runs/transfer-learning
seed=0
while [[ $# -gt 0 ]]; do
    case $1 in
        --work) work=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "transfer-learning.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
dtrain=$repo/.build/release/dtrain
config=$repo/configs/fashion-lenet-16.json
[[ -x $dtrain ]] || { echo "transfer-learning.sh: no $dtrain: run 'swift build -c release' first" >&2; exit 1; }

old_classes=(t-shirt-top trouser pullover dress coat)
new_classes=(sandal shirt sneaker bag ankle-boot)
val_per_class=500
mkdir -p "$work"
"$dtrain" prepare fashion-mnist "$work/fashion-mnist" >/dev/null

# subset ROOT TRAIN_PER_CLASS(0 = all) CLASSES...: ROOT/train and ROOT/val of links to the prepared images.
subset() {
    local root=$1 count=$2
    shift 2
    rm -rf "$root"
    for class in "$@"; do
        for split in train val; do
            mkdir -p "$root/$split/$class"
            local n=$count
            [[ $split == val ]] && n=$val_per_class
            local source=$work/fashion-mnist/$split/$class
            # The first n files in name order, linked a few thousand per ln call.
            local files
            files=$(ls "$source" | sort)
            [[ $n -gt 0 ]] && files=$(head -n "$n" <<<"$files")
            sed "s|^|$source/|" <<<"$files" | xargs ln -s -t "$root/$split/$class"
        done
    done
}

# run NAME ROOT ARGS...: trains quietly; sets $top1 (final-epoch validation accuracy, %) and $seconds.
run() {
    local name=$1 root=$2
    shift 2
    local out=$work/runs/$name start
    start=$(date +%s.%N)
    if ! "$dtrain" "$config" --data "$root" --output "$out" --overwrite --seed "$seed" --set log.every_steps=1000 "$@" \
        >"$work/$name.log" 2>&1; then
        echo "transfer-learning.sh: run $name failed; see $work/$name.log" >&2
        tail -5 "$work/$name.log" >&2
        exit 1
    fi
    seconds=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    # metrics.csv: the last row with a validation top-1 error (column 8).
    top1=$(awk -F, 'NR > 1 && $8 != "" { e = $8 } END { printf "%.1f", 100 * (1 - e) }' "$out/metrics.csv")
}

echo "pre-training on ${old_classes[*]} (30,000 images, 3 epochs) ..."
subset "$work/old" 0 "${old_classes[@]}"
run pretrain "$work/old" --epochs 3 --batch-size 128 --lr 0.05
pretrained=$work/runs/pretrain/best.safetensors
printf 'pre-trained: %s%% validation top-1 on the first five classes (%s s)\n\n' "$top1" "$(printf '%.0f' "$seconds")"

conv_layers='["conv1","bn1","conv2","bn2"]'
declare -A result
total_start=$(date +%s)
for n in 10 100 1000; do
    subset "$work/new-$n" "$n" "${new_classes[@]}"
    case $n in
        10) epochs=20 batch=25 ;;
        100) epochs=10 batch=50 ;;
        1000) epochs=4 batch=100 ;;
    esac
    common=(--epochs "$epochs" --batch-size "$batch" --lr 0.05)
    finetune=(--set "finetune.from=$pretrained" --set 'finetune.reinit=["fc2"]')
    new_head=(--set "finetune.from=$pretrained" --set 'finetune.reinit=["fc1","fc2"]')
    run "scratch-$n" "$work/new-$n" "${common[@]}"
    result[scratch,$n]="$top1 ($(printf '%.0f' "$seconds") s)"
    run "finetune-all-$n" "$work/new-$n" "${common[@]}" "${finetune[@]}" \
        --set 'finetune.lr_mult={"conv1":0.1,"bn1":0.1,"conv2":0.1,"bn2":0.1,"fc1":0.1}'
    result[all,$n]="$top1 ($(printf '%.0f' "$seconds") s)"
    run "finetune-new-head-$n" "$work/new-$n" "${common[@]}" "${new_head[@]}" \
        --set 'finetune.lr_mult={"conv1":0.1,"bn1":0.1,"conv2":0.1,"bn2":0.1}'
    result[head,$n]="$top1 ($(printf '%.0f' "$seconds") s)"
    run "freeze-convs-$n" "$work/new-$n" "${common[@]}" "${new_head[@]}" --set "finetune.freeze=$conv_layers"
    result[convs,$n]="$top1 ($(printf '%.0f' "$seconds") s)"
    run "last-layer-$n" "$work/new-$n" "${common[@]}" "${finetune[@]}" \
        --set 'finetune.freeze=["conv1","bn1","conv2","bn2","fc1"]'
    result[last,$n]="$top1 ($(printf '%.0f' "$seconds") s)"
    echo "done: $n images per class"
done

echo
echo "validation top-1 (%) on the five new classes ($((val_per_class * 5)) images), wall time per run; seed $seed"
printf '| %-58s | %-14s | %-14s | %-15s |\n' "training" "10 per class" "100 per class" "1,000 per class"
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..60})" "$(printf -- '-%.0s' {1..16})" "$(printf -- '-%.0s' {1..16})" \
    "$(printf -- '-%.0s' {1..17})"
for row in "scratch:from scratch" "all:fine-tune all layers (pre-trained at lr/10), new fc2" \
    "head:fine-tune conv layers (lr/10), new head fc1 + fc2" \
    "convs:freeze conv layers, retrain the head (new fc1 + fc2)" "last:freeze all but the last layer (new fc2)"; do
    key=${row%%:*} label=${row#*:}
    printf '| %-58s | %-14s | %-14s | %-15s |\n' "$label" \
        "${result[$key,10]}" "${result[$key,100]}" "${result[$key,1000]}"
done
echo "(15 runs in $(($(date +%s) - total_start)) s after pre-training)"
