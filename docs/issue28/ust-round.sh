#!/bin/bash
# ust-round.sh FOLD SEED ROUND: another round of self-training after the recommended run: the previous round's
# model (ust-FOLD-sSEED for round 2, ust2-... for round 3) labels the area's unlabelled tiles again, and training
# continues from it with the same st toml, as the first round did from the fine-tune. Scored on the same tiles as
# the recommended run (blocks-FOLD-common[-sSEED]: neither choice of blocks labelled). Uses exp_post.py beside it.
set -ex
F=$1 S=$2 R=$3
export OMP_NUM_THREADS=1
ST=st-$F.toml; B=blocks-$F-common; [ $S = 0 ] || { ST=st-$F-s$S.toml; B=blocks-$F-common-s$S; }
PREV=ust$((R - 1))-$F-s$S; [ $R = 2 ] && PREV=ust-$F-s$S
[ -f ust$R-$F-s$S/last.pth ] || python -m robosat_effnet.cli train --dataset dataset-$F-uft-s$S.toml --model $ST \
    --weights $PREV/last.pth --unlabelled data-$F-uft-s$S/validation/images --checkpoint-dir ust$R-$F-s$S -q
[ -f post-$F-ust$R-common-s$S/grid.csv ] || python exp_post.py ust$R-$F-s$S/last.pth data-$F \
    post-$F-ust$R-common-s$S --split $B
