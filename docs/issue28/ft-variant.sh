#!/bin/bash
# [ALL=1] ft-variant.sh FOLD NAME WRAPPER [KEY=VALUE ...]: the recommended run (seed 0, the same uncertain blocks)
# with another fine-tune: ft.toml with each KEY set to VALUE in its [opt] table (e.g. epochs=20,
# encoder_lr=0.00003), trained by rs-effnet itself (WRAPPER=rs) or by a prototype that changes one thing in its own
# process (frozen_bn.py, zoom_aug.py); then both rounds of self-training as the recipe runs them (with ALL=1 by the
# prototype too). Runs NAME-FOLD-s0, -st and -st2, scored on the tiles the recommended run is scored on
# (st-rounds.sh, which uses exp_post.py). E.g. ft-variant.sh a gft20 rs epochs=20; ft-variant.sh b fbn frozen_bn.py
set -ex
F=$1 V=$2 N=$2-$1-s0 W=$3; shift 3
export OMP_NUM_THREADS=1
C=final-$F/efficientnet-lite0-imagenet-s0/last.pth
D=$(dirname "$0")  # set-keys.sh and st-rounds.sh beside this script
$D/set-keys.sh ft.toml ft-$V.toml "$@"
TRAIN="python -m robosat_effnet.cli"; [ $W = rs ] || TRAIN="python $W"
[ -f $N/last.pth ] || $TRAIN train --dataset dataset-$F-uft-s0.toml --model ft-$V.toml --weights $C \
    --checkpoint-dir $N -q
[ -n "$ALL" ] && export TRAIN
$D/st-rounds.sh $F $N
