#!/bin/bash
# uncertain-blocks.sh FOLD REGION SEED: the quarter of REGION the fold's cross-region model (seed SEED) is least sure
# of (`blocks --probs`), laid out as data-FOLD-uft-sSEED (those blocks to train on, the rest to score) with its
# dataset-FOLD-uft-sSEED.toml. Used by pipeline.sh and ust-seed.sh.
set -e
F=$1 R=$2 S=$3
DATA=${DATA:-../shared/data/buildings-oam}
copy() { while IFS=, read x y z; do mkdir -p $3/$z/$x && cp $2/$z/$x/$y.png $3/$z/$x/$y.png; done < $1; }
d=data-$F-uft-s$S
rm -rf blocks-$F-unc-s$S $d
python -m robosat_effnet.cli blocks $DATA/$R/images blocks-$F-unc-s$S --zoom 20 --fraction 0.25 \
    --probs post-$F-cross-s$S/probs
copy blocks-$F-unc-s$S/rest.csv data-$F/validation/images $d/validation/images
copy blocks-$F-unc-s$S/rest.csv data-$F/validation/labels $d/validation/labels
copy blocks-$F-unc-s$S/local.csv data-$F/validation/images $d/training/images
copy blocks-$F-unc-s$S/local.csv data-$F/validation/labels $d/training/labels
sed "s/dataset = \"data-$F\"/dataset = \"$d\"/" dataset-$F.toml > dataset-$F-uft-s$S.toml
