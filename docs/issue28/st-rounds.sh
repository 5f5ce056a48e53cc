#!/bin/bash
# st-rounds.sh FOLD NAME: after another fine-tune NAME/last.pth on seed 0's uncertain blocks, both rounds of
# self-training as the recipe runs them (NAME-st, NAME-st2), and all three scored on the tiles the recommended run
# is scored on. Used by ft-variant.sh and replay-ft.sh; uses exp_post.py beside it.
set -ex
F=$1 N=$2
export OMP_NUM_THREADS=1
TRAIN=${TRAIN:-python -m robosat_effnet.cli}  # ft-variant.sh passes a prototype's with ALL=1
U=data-$F-uft-s0/validation/images
P=$N
for R in st st2; do
  [ -f $N-$R/last.pth ] || $TRAIN train --dataset dataset-$F-uft-s0.toml --model st-$F.toml \
      --weights $P/last.pth --unlabelled $U --checkpoint-dir $N-$R -q
  P=$N-$R
done
for m in $N $N-st $N-st2; do
  [ -f post-$m/grid.csv ] || python exp_post.py $m/last.pth data-$F post-$m --split blocks-$F-common
done
