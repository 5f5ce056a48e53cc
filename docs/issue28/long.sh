#!/bin/bash
# long.sh FOLD REGION EPOCHS: item 5, a longer schedule. The study's cross-region Lite0 run with final.toml at
# EPOCHS epochs instead of 8 (seed 0), then the recommended run from it (its uncertain blocks, fine-tune,
# self-training). Scored beside the 8-epoch models: the cross-region models on the random blocks' rest tiles, the
# recommended runs on the tiles that neither the random blocks nor either model's uncertain blocks labelled.
# Run after pipeline.sh and ust.sh for the fold, from the same study folder. Resumable.
set -x
F=$1 R=$2 E=$3
T=0-e$E                                   # read as the seed by uncertain-blocks.sh: blocks-F-unc-s0-eE, ...
export OMP_NUM_THREADS=1
RS="python -m robosat_effnet.cli"
EP=ft.toml; [ $F = c ] && EP=ft-c.toml
sed "s/^epochs *= .*/epochs = $E/" final.toml > final-e$E.toml
C=final-$F-e$E/efficientnet-lite0-imagenet-s0/last.pth
[ -f final-$F-e$E/results.csv ] || $RS study --dataset dataset-$F.toml --model final-e$E.toml --out final-$F-e$E \
    --min-area 2 --speed-repeats 2 -q --backbones lite0 --weights imagenet --seeds 0 || exit 1
[ -f post-$F-cross-s$T/grid.csv ] || python exp_post.py $C data-$F post-$F-cross-s$T --split blocks-$F || exit 1
if [ ! -f uft-$F-s$T/last.pth ]; then
  ./uncertain-blocks.sh $F $R $T || exit 1
  $RS train --dataset dataset-$F-uft-s$T.toml --model $EP --weights $C --checkpoint-dir uft-$F-s$T -q || exit 1
fi
[ -f ust-$F-s$T/last.pth ] || $RS train --dataset dataset-$F-uft-s$T.toml --model st-$F.toml \
    --weights uft-$F-s$T/last.pth --unlabelled data-$F-uft-s$T/validation/images --checkpoint-dir ust-$F-s$T -q || exit 1
python common_split.py blocks-$F-common blocks-$F-unc-s$T blocks-$F-common-e$E
for m in ust-$F-s0 ust-$F-s$T; do
  [ -f post-$m-common-e$E/grid.csv ] || python exp_post.py $m/last.pth data-$F post-$m-common-e$E \
      --split blocks-$F-common-e$E || exit 1
done
