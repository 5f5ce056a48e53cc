#!/bin/bash
# [S=SEED] colour-cross.sh FOLD [NAME]: the recipe's fine-tune and both rounds of self-training (no colour
# augmentation) from colour.sh's cross-region model of that seed (final-FOLD-NAME-sS, NAME default col), on the
# recipe's uncertain blocks of that seed; each model scored like the recipe's (exp_post.py on
# blocks-FOLD-common[-sS]). Runs ucp-FOLD-sS, ucp-FOLD-sS-st, ucp-FOLD-sS-st2. Resumable.
set -ex
F=$1 N=${2:-col}
S=${S:-0}
export OMP_NUM_THREADS=1
RS="python -m robosat_effnet.cli"
EP=ft.toml ST=st-$F.toml B=blocks-$F-common
[ $F = c ] && EP=ft-c.toml
if [ $S != 0 ]; then EP=${EP%.toml}-s$S.toml ST=st-$F-s$S.toml B=$B-s$S; fi
M=ucp-$F-s$S P=final-$F-$N-s$S/efficientnet-lite0-imagenet-s$S
[ -f $M/last.pth ] || $RS train --dataset dataset-$F-uft-s$S.toml --model $EP --weights $P/last.pth \
    --checkpoint-dir $M -q
P=$M
for R in st st2; do
  [ -f $M-$R/last.pth ] || $RS train --dataset dataset-$F-uft-s$S.toml --model $ST --weights $P/last.pth \
      --unlabelled data-$F-uft-s$S/validation/images --checkpoint-dir $M-$R -q
  P=$M-$R
done
for m in $M $M-st $M-st2; do
  [ -f post-$m/grid.csv ] || python exp_post.py $m/last.pth data-$F post-$m --split $B
done
