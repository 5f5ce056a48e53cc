#!/bin/bash
# long.sh FOLD REGION EPOCHS [SEED]: item 5, a longer schedule. The study's cross-region Lite0 run with final.toml
# at EPOCHS epochs instead of 8, then the recommended run from it (its uncertain blocks, fine-tune, self-training).
# Scored beside the 8-epoch models of the same seed: the cross-region models on the random blocks' rest tiles, the
# recommended runs on the tiles that neither the random blocks nor either model's uncertain blocks labelled.
# Run after pipeline.sh and ust.sh (seed 0) or ust-seed.sh (other seeds) for the fold, from the same study folder.
# COLOUR=1: the cross-region model with model.toml's colour augmentation too (hue 60, saturation 0.4, grayscale
# 0.25; runs named eE-col); CROSS_ONLY=1: stop after scoring the cross-region model.
set -x
F=$1 R=$2 E=$3 S=${4:-0}
N=e$E; [ -n "$COLOUR" ] && N=e$E-col
T=$S-$N                                   # read as the seed by uncertain-blocks.sh: blocks-F-unc-sS-eE, ...
export OMP_NUM_THREADS=1
RS="python -m robosat_effnet.cli"
if [ $S = 0 ]; then EP=ft.toml ST=st-$F.toml COMMON=blocks-$F-common; else EP=ft-s$S.toml ST=st-$F-s$S.toml
  COMMON=blocks-$F-common-s$S; fi
[ $F = c ] && EP=${EP/ft/ft-c}
KEYS="epochs=$E"; [ -n "$COLOUR" ] && KEYS="$KEYS hue=60 saturation=0.4 grayscale=0.25"
"$(dirname "$0")"/set-keys.sh final.toml final-$N.toml $KEYS
C=final-$F-$N-s$S/efficientnet-lite0-imagenet-s$S/last.pth
[ $S = 0 ] && [ -z "$COLOUR" ] && C=final-$F-e$E/efficientnet-lite0-imagenet-s0/last.pth   # the first run's folder name
OUT=$(dirname $(dirname $C))
[ -f $OUT/results.csv ] || $RS study --dataset dataset-$F.toml --model final-$N.toml --out $OUT \
    --min-area 2 --speed-repeats 2 -q --backbones lite0 --weights imagenet --seeds $S || exit 1
[ -f post-$F-cross-s$T/grid.csv ] || python exp_post.py $C data-$F post-$F-cross-s$T --split blocks-$F || exit 1
[ -n "$CROSS_ONLY" ] && exit 0
if [ ! -f uft-$F-s$T/last.pth ]; then
  ./uncertain-blocks.sh $F $R $T || exit 1
  $RS train --dataset dataset-$F-uft-s$T.toml --model $EP --weights $C --checkpoint-dir uft-$F-s$T -q || exit 1
fi
[ -f ust-$F-s$T/last.pth ] || $RS train --dataset dataset-$F-uft-s$T.toml --model $ST \
    --weights uft-$F-s$T/last.pth --unlabelled data-$F-uft-s$T/validation/images --checkpoint-dir ust-$F-s$T -q || exit 1
python common_split.py $COMMON blocks-$F-unc-s$T blocks-$F-common-s$T
for m in ust-$F-s$S ust-$F-s$T; do
  [ -f post-$m-common-s$T/grid.csv ] || python exp_post.py $m/last.pth data-$F post-$m-common-s$T \
      --split blocks-$F-common-s$T || exit 1
done
