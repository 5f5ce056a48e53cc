#!/bin/bash
# gentle-ft.sh FOLD EPOCHS: the recommended run (seed 0, the same uncertain blocks) with a fine-tune of EPOCHS
# instead of ft.toml's 60 (each epoch is one step over the 4-8 local tiles), then both rounds of self-training as the
# recipe runs them. lost_roofs.py found the fine-tune losing roofs the cross-region model half-saw; fewer passes
# over the few local tiles may forget less. Scored on the same tiles as the recommended run. Uses st-rounds.sh
# beside it.
set -ex
F=$1 E=$2
export OMP_NUM_THREADS=1
RS="python -m robosat_effnet.cli"
C=final-$F/efficientnet-lite0-imagenet-s0/last.pth
N=gft$E-$F-s0
sed "s/^epochs *= .*/epochs = $E/" ft.toml > ft-e$E.toml
[ -f $N/last.pth ] || $RS train --dataset dataset-$F-uft-s0.toml --model ft-e$E.toml --weights $C --checkpoint-dir $N -q
"$(dirname "$0")"/st-rounds.sh $F $N
