#!/bin/bash
# ust-seed.sh FOLD REGION SEED: the recommended run (uncertain blocks + self-training) at another seed, after
# seeds.sh FOLD SEED (its cross-region model, probabilities and random-block models); scored on the tiles neither
# the random blocks nor this seed's uncertain blocks labelled, beside the random-block self-trained model.
set -x
F=$1 R=$2 S=$3
export OMP_NUM_THREADS=1
RS="python -m robosat_effnet.cli"
export DATA=${DATA:-../shared/data/buildings-oam}
C=final-$F-s$S/efficientnet-lite0-imagenet-s$S/last.pth
EP=ft-s$S.toml; [ $F = c ] && EP=ft-c-s$S.toml
if [ ! -f uft-$F-s$S/last.pth ]; then
  ./uncertain-blocks.sh $F $R $S || exit 1
  $RS train --dataset dataset-$F-uft-s$S.toml --model $EP --weights $C --checkpoint-dir uft-$F-s$S -q || exit 1
fi
[ -f ust-$F-s$S/last.pth ] || $RS train --dataset dataset-$F-uft-s$S.toml --model st-$F-s$S.toml \
    --weights uft-$F-s$S/last.pth --unlabelled data-$F-uft-s$S/validation/images --checkpoint-dir ust-$F-s$S -q || exit 1
python common_split.py blocks-$F blocks-$F-unc-s$S blocks-$F-common-s$S
for m in st ust; do
  [ -f post-$F-$m-common-s$S/grid.csv ] || python exp_post.py $m-$F-s$S/last.pth data-$F post-$F-$m-common-s$S \
      --split blocks-$F-common-s$S || exit 1
done
