#!/bin/bash
# [S=SEED] [ONLY_CROSS=1] colour.sh FOLD NAME [HUE SATURATION GRAYSCALE]: the recommended run with model.toml's
# colour augmentation (`[opt] hue`, `saturation`, `grayscale`; default 60 / 0.4 / 0.25): the study's cross-region
# run (final.toml, Lite0 from ImageNet, seed S, default 0), the fine-tune on that seed's uncertain blocks of the
# recipe (so the same tiles are scored as the recipe's run of that seed) and both rounds of self-training, each
# model scored like the recipe's (exp_post.py on blocks-FOLD-common[-sS]). With colour in every step the runs are
# uNAME-FOLD-sS, NAMEst-..., NAMEst2-...; with ONLY_CROSS=1 the cross-region model alone has it and the fine-tune
# and rounds are the recipe's own (ucp-FOLD-sS, ucp-FOLD-sS-st, ucp-FOLD-sS-st2). Run from the study folder after
# the recipe's run of that seed. Resumable.
set -ex
F=$1 N=$2 H=${3:-60} SAT=${4:-0.4} G=${5:-0.25}
S=${S:-0}
export OMP_NUM_THREADS=1
RS="python -m robosat_effnet.cli"
EP=ft.toml ST=st-$F.toml B=blocks-$F-common
[ $F = c ] && EP=ft-c.toml
if [ $S != 0 ]; then EP=${EP%.toml}-s$S.toml ST=st-$F-s$S.toml B=$B-s$S; fi
COLOURED=final.toml; [ -n "$ONLY_CROSS" ] || COLOURED="final.toml $EP $ST"
for t in $COLOURED; do  # each toml with the three keys at the end of its [opt] table (the last table)
  printf '%s\nhue = %s\nsaturation = %s\ngrayscale = %s\n' "$(cat $t)" $H $SAT $G > ${t%.toml}-$N.toml
done
C=final-$F-$N-s$S/efficientnet-lite0-imagenet-s$S/last.pth
[ -f final-$F-$N-s$S/results.csv ] || $RS study --dataset dataset-$F.toml --model final-$N.toml \
    --out final-$F-$N-s$S --min-area 2 --speed-repeats 2 -q --backbones lite0 --weights imagenet --seeds $S
[ -f post-$F-$N-cross-s$S/grid.csv ] || python exp_post.py $C data-$F post-$F-$N-cross-s$S --split $B
if [ -n "$ONLY_CROSS" ]; then  # the recipe's own tomls after the cross-region model
  M=ucp-$F-s$S; RUNS="$M $M-st $M-st2"; POSTS="post-$M post-$M-st post-$M-st2"
else
  EP=${EP%.toml}-$N.toml ST=${ST%.toml}-$N.toml
  RUNS="u$N-$F-s$S $N"st-$F-s$S" $N"st2-$F-s$S""
  POSTS="post-$F-u$N-common-s$S post-$F-$N"st-common-s$S" post-$F-$N"st2-common-s$S""
fi
set -- $RUNS
[ -f $1/last.pth ] || $RS train --dataset dataset-$F-uft-s$S.toml --model $EP --weights $C --checkpoint-dir $1 -q
[ -f $2/last.pth ] || $RS train --dataset dataset-$F-uft-s$S.toml --model $ST --weights $1/last.pth \
    --unlabelled data-$F-uft-s$S/validation/images --checkpoint-dir $2 -q
[ -f $3/last.pth ] || $RS train --dataset dataset-$F-uft-s$S.toml --model $ST --weights $2/last.pth \
    --unlabelled data-$F-uft-s$S/validation/images --checkpoint-dir $3 -q
for post in $POSTS; do
  [ -f $post/grid.csv ] || python exp_post.py $1/last.pth data-$F $post --split $B
  shift
done
