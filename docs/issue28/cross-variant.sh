#!/bin/bash
# [S=SEED] cross-variant.sh FOLD NAME WRAPPER [KEY=VALUE ...]: the study's cross-region Lite0 run (final.toml,
# ImageNet weights, seed S, default 0) with each KEY set to VALUE in final.toml's [opt] table, trained by
# rs-effnet itself (WRAPPER=rs) or by a prototype that changes one thing in its own process (zoom_aug.py); scored
# on the whole validation region like the recipe's cross-region models (exp_post.py, post-FOLD-NAME-cross-sS).
# E.g. ZOOM=1.33 cross-variant.sh b zoom zoom_aug.py
set -ex
F=$1 V=$2 W=$3; shift 3
S=${S:-0}
export OMP_NUM_THREADS=1
M=final.toml; [ $F = c ] && M=final-c.toml
"$(dirname "$0")"/set-keys.sh $M final-$V.toml "$@"
TRAIN="python -m robosat_effnet.cli"; [ $W = rs ] || TRAIN="python $W"
OUT=final-$F-$V-s$S
[ -f $OUT/results.csv ] || $TRAIN study --dataset dataset-$F.toml --model final-$V.toml --out $OUT --min-area 2 \
    --speed-repeats 2 -q --backbones lite0 --weights imagenet --seeds $S
[ -f post-$F-$V-cross-s$S/grid.csv ] || python exp_post.py $OUT/efficientnet-lite0-imagenet-s$S/last.pth data-$F \
    post-$F-$V-cross-s$S --split blocks-$F
