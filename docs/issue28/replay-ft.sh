#!/bin/bash
# replay-ft.sh FOLD [REPEAT]: the recommended run (seed 0, the same uncertain blocks) with replay_ft.py's
# fine-tune (the source regions' tiles plus the local ones repeated REPEAT times, default 8, 3 epochs) instead of
# ft.toml's, then both rounds of self-training as the recipe runs them. Scored on the same tiles as the
# recommended run. Uses replay_ft.py and exp_post.py beside it.
set -ex
F=$1 R=${2:-8}
export OMP_NUM_THREADS=1
RS="python -m robosat_effnet.cli"
C=final-$F/efficientnet-lite0-imagenet-s0/last.pth
U=data-$F-uft-s0/validation/images
N=rft-$F-s0; [ $R = 8 ] || N=rft$R-$F-s0
[ -f $N/last.pth ] || python replay_ft.py dataset-$F.toml dataset-$F-uft-s0.toml ft.toml $C $N --repeat $R
[ -f ${N}-st/last.pth ] || $RS train --dataset dataset-$F-uft-s0.toml --model st-$F.toml --weights $N/last.pth \
    --unlabelled $U --checkpoint-dir ${N}-st -q
[ -f ${N}-st2/last.pth ] || $RS train --dataset dataset-$F-uft-s0.toml --model st-$F.toml --weights ${N}-st/last.pth \
    --unlabelled $U --checkpoint-dir ${N}-st2 -q
for m in $N ${N}-st ${N}-st2; do
  [ -f post-$m/grid.csv ] || python exp_post.py $m/last.pth data-$F post-$m --split blocks-$F-common
done
