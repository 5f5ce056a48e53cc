#!/bin/bash
# seeds.sh FOLD SEED: issue 28's recommended recipe for one more seed: the cross-region study run (own folder),
# the recipe's fine-tune on the random local blocks (blocks-FOLD), self-training on the rest tiles' images; each
# scored by exp_post.py. Resumable: every step is skipped when its output exists.
set -x
F=$1 S=$2
export OMP_NUM_THREADS=1
RS="python -m robosat_effnet.cli"
M=final.toml; EP=ft-s$S.toml; [ $F = c ] && { M=final-c.toml; EP=ft-c-s$S.toml; }
C=final-$F-s$S/efficientnet-lite0-imagenet-s$S/last.pth
[ -f final-$F-s$S/study.json ] || flock lock-final-$F-s$S $RS study --dataset dataset-$F.toml --model $M --out final-$F-s$S \
    --min-area 2 --speed-repeats 2 -q --backbones lite0 --weights imagenet --seeds $S || exit 1
[ -f post-$F-cross-s$S/grid.csv ] || python exp_post.py $C data-$F post-$F-cross-s$S --split blocks-$F || exit 1
[ -f ft-$F-s$S/last.pth ] || $RS train --dataset dataset-$F-ft.toml --model $EP --weights $C --checkpoint-dir ft-$F-s$S -q || exit 1
[ -f post-$F-ft-s$S/grid.csv ] || python exp_post.py ft-$F-s$S/last.pth data-$F post-$F-ft-s$S --split blocks-$F || exit 1
[ -f st-$F-s$S/last.pth ] || $RS train --dataset dataset-$F-ft.toml --model st-$F-s$S.toml \
    --weights ft-$F-s$S/last.pth --unlabelled data-$F-ft/validation/images --checkpoint-dir st-$F-s$S -q || exit 1
[ -f post-$F-st-s$S/grid.csv ] || python exp_post.py st-$F-s$S/last.pth data-$F post-$F-st-s$S --split blocks-$F || exit 1
