#!/bin/bash
# [S=SEED] colour.sh FOLD NAME [HUE SATURATION GRAYSCALE]: the recommended run with model.toml's colour
# augmentation (`[opt] hue`, `saturation`, `grayscale`; default 60 / 0.4 / 0.25) in every training step: the
# study's cross-region run (final.toml, Lite0 from ImageNet, seed S, default 0), the fine-tune on that seed's
# uncertain blocks of the recipe (so the same tiles are scored as the recipe's run of that seed) and both rounds
# of self-training, each model scored like the recipe's (exp_post.py on blocks-FOLD-common[-sS]). Run from the
# study folder after the recipe's run of that seed. Resumable.
set -ex
F=$1 N=$2 H=${3:-60} SAT=${4:-0.4} G=${5:-0.25}
S=${S:-0}
export OMP_NUM_THREADS=1
RS="python -m robosat_effnet.cli"
EP=ft.toml ST=st-$F.toml B=blocks-$F-common
[ $F = c ] && EP=ft-c.toml
if [ $S != 0 ]; then EP=${EP%.toml}-s$S.toml ST=st-$F-s$S.toml B=$B-s$S; fi
for t in final.toml $EP $ST; do  # each toml with the three keys at the end of its [opt] table (the last table)
  printf '%s\nhue = %s\nsaturation = %s\ngrayscale = %s\n' "$(cat $t)" $H $SAT $G > ${t%.toml}-$N.toml
done
C=final-$F-$N-s$S/efficientnet-lite0-imagenet-s$S/last.pth
[ -f final-$F-$N-s$S/results.csv ] || $RS study --dataset dataset-$F.toml --model final-$N.toml \
    --out final-$F-$N-s$S --min-area 2 --speed-repeats 2 -q --backbones lite0 --weights imagenet --seeds $S
[ -f u$N-$F-s$S/last.pth ] || $RS train --dataset dataset-$F-uft-s$S.toml --model ${EP%.toml}-$N.toml \
    --weights $C --checkpoint-dir u$N-$F-s$S -q
U=data-$F-uft-s$S/validation/images P=u$N-$F-s$S
for R in st st2; do
  [ -f $N$R-$F-s$S/last.pth ] || $RS train --dataset dataset-$F-uft-s$S.toml --model ${ST%.toml}-$N.toml \
      --weights $P/last.pth --unlabelled $U --checkpoint-dir $N$R-$F-s$S -q
  P=$N$R-$F-s$S
done
[ -f post-$F-$N-cross-s$S/grid.csv ] || python exp_post.py $C data-$F post-$F-$N-cross-s$S --split $B
for m in u$N $N"st" $N"st2"; do
  [ -f post-$F-$m-common-s$S/grid.csv ] || python exp_post.py $m-$F-s$S/last.pth data-$F post-$F-$m-common-s$S \
      --split $B
done
