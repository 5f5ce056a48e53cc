#!/bin/bash
# ens.sh FOLD: the recommended run's fine-tune and self-training again at fine-tune seeds 1 and 2, on the blocks
# seed 0's cross-region model picked (data-FOLD-uft-s0) and from that model, as a mapper who labelled once would
# run them; each scored alone, then their probabilities averaged with seed 0's (ensemble.py), on the tiles neither
# the random nor the uncertain blocks labelled (blocks-FOLD-common); and their weights averaged into one network
# (soup.py). Run after pipeline.sh and ust.sh. Resumable.
set -x
F=$1
export OMP_NUM_THREADS=1
RS="python -m robosat_effnet.cli"
D=$(dirname "$0")                         # exp_post.py and ensemble.py beside this script
C=final-$F/efficientnet-lite0-imagenet-s0/last.pth
for S in 1 2; do
  EP=ft-s$S.toml; [ $F = c ] && EP=ft-c-s$S.toml
  [ -f uft-$F-s0-f$S/last.pth ] || $RS train --dataset dataset-$F-uft-s0.toml --model $EP --weights $C \
      --checkpoint-dir uft-$F-s0-f$S -q || exit 1
  [ -f ust-$F-s0-f$S/last.pth ] || $RS train --dataset dataset-$F-uft-s0.toml --model st-$F-s$S.toml \
      --weights uft-$F-s0-f$S/last.pth --unlabelled data-$F-uft-s0/validation/images --checkpoint-dir ust-$F-s0-f$S -q || exit 1
  [ -f post-$F-ust-common-f$S/grid.csv ] || python $D/exp_post.py ust-$F-s0-f$S/last.pth data-$F post-$F-ust-common-f$S \
      --split blocks-$F-common || exit 1
done
[ -f post-$F-ust-common-ens/probs.done ] || python $D/ensemble.py post-$F-ust-common-ens post-$F-ust-common-s0/probs \
    post-$F-ust-common-f1/probs post-$F-ust-common-f2/probs || exit 1
[ -f post-$F-ust-common-ens/grid.csv ] || python $D/exp_post.py - data-$F post-$F-ust-common-ens --split blocks-$F-common || exit 1
[ -f soup-$F.pth ] || python $D/soup.py soup-$F.pth ust-$F-s0/last.pth ust-$F-s0-f1/last.pth ust-$F-s0-f2/last.pth || exit 1
[ -f post-$F-ust-common-soup/grid.csv ] || python $D/exp_post.py soup-$F.pth data-$F post-$F-ust-common-soup --split blocks-$F-common
