#!/bin/bash
# pipeline.sh FOLD REGION [SEED]: issue 28's experiments on one fold, after the cross-region Lite0 run of the study
# (final-FOLD/efficientnet-lite0-imagenet-sSEED), in the study folder of docs/recipe-buildings.md (prepare.sh,
# prepare-local.sh). ft.toml: the recipe's fine-tune; st-a.toml / st-b.toml: ft.toml with epochs = 30 / 20 (about
# as many steps with the pseudo-labelled tiles added); exp_post.py, adabn.py beside it.
set -x
F=$1 R=$2 S=${3:-0}
export DATA=${DATA:-../shared/data/buildings-oam}
C=final-$F/efficientnet-lite0-imagenet-s$S/last.pth
EP=ft.toml; [ $F = c ] && EP=ft-c.toml
# 1. the cross-region model: object-level grid, then AdaBN (BatchNorm statistics of the rest tiles' images)
[ -f post-$F-cross-s$S/grid.csv ] || python exp_post.py $C data-$F post-$F-cross-s$S --split blocks-$F
[ -f adabn-$F-s$S.pth ] || python adabn.py $C data-$F-ft/validation/images adabn-$F-s$S.pth
[ -f post-$F-adabn-s$S/grid.csv ] || python exp_post.py adabn-$F-s$S.pth data-$F post-$F-adabn-s$S --split blocks-$F
# 2. the recipe's fine-tune on the random local blocks
[ -f ft-$F-s$S/last.pth ] || rs-effnet train --dataset dataset-$F-ft.toml --model $EP --weights $C --checkpoint-dir ft-$F-s$S -q
[ -f post-$F-ft-s$S/grid.csv ] || python exp_post.py ft-$F-s$S/last.pth data-$F post-$F-ft-s$S --split blocks-$F
# 3. self-training: the fine-tuned model's masks of the rest tiles (their images only) join the local labels
[ -f st-$F-s$S/last.pth ] || rs-effnet train --dataset dataset-$F-ft.toml --model st-$F.toml \
    --weights ft-$F-s$S/last.pth --unlabelled data-$F-ft/validation/images --checkpoint-dir st-$F-s$S -q
[ -f post-$F-st-s$S/grid.csv ] || python exp_post.py st-$F-s$S/last.pth data-$F post-$F-st-s$S --split blocks-$F
# 4. label where it matters: the blocks the cross-region model is least sure of, same number of tiles
if [ ! -f uft-$F-s$S/last.pth ]; then
  ./uncertain-blocks.sh $F $R $S
  rs-effnet train --dataset dataset-$F-uft-s$S.toml --model $EP --weights $C --checkpoint-dir uft-$F-s$S -q
fi
[ -f post-$F-uft-s$S/grid.csv ] || python exp_post.py uft-$F-s$S/last.pth data-$F post-$F-uft-s$S --split blocks-$F-unc-s$S
