#!/bin/bash
# replay-ft.sh FOLD [REPEAT]: the recommended run (seed 0, the same uncertain blocks) with replay_ft.py's
# fine-tune (the source regions' tiles plus the local ones repeated REPEAT times, default 8, 3 epochs) instead of
# ft.toml's, then both rounds of self-training as the recipe runs them. Scored on the same tiles as the
# recommended run. Uses replay_ft.py and st-rounds.sh beside it.
set -ex
F=$1 R=${2:-8}
export OMP_NUM_THREADS=1
RS="python -m robosat_effnet.cli"
C=final-$F/efficientnet-lite0-imagenet-s0/last.pth
N=rft-$F-s0; [ $R = 8 ] || N=rft$R-$F-s0
[ -f $N/last.pth ] || python replay_ft.py dataset-$F.toml dataset-$F-uft-s0.toml ft.toml $C $N --repeat $R
"$(dirname "$0")"/st-rounds.sh $F $N
