#!/bin/bash
# cross-st.sh FOLD: self-training with no label of the area at all: the cross-region model (seed 0) labels the
# whole validation region's images, and training continues on the source regions' labelled tiles plus those.
# st-cross.toml: st-a.toml with epochs = 2 (the source regions' 212 or 200 tiles plus the area's 16 or 28).
set -ex
F=$1
export OMP_NUM_THREADS=1
C=final-$F/efficientnet-lite0-imagenet-s0/last.pth
[ -f xst-$F-s0/last.pth ] || python -m robosat_effnet.cli train --dataset dataset-$F.toml --model st-cross.toml \
    --weights $C --unlabelled data-$F/validation/images --checkpoint-dir xst-$F-s0 -q
[ -f post-$F-xst-s0/grid.csv ] || python exp_post.py xst-$F-s0/last.pth data-$F post-$F-xst-s0 --split blocks-$F
