#!/bin/bash
# ust.sh FOLD: self-training from the model fine-tuned on the uncertain blocks (the two options combined)
# After pipeline.sh FOLD REGION (it makes uft-FOLD-s0: the fine-tune on the blocks `blocks --probs` chose, and their split).
set -x
F=$1 S=${2:-0}
export OMP_NUM_THREADS=1
RS="python -m robosat_effnet.cli"
[ -f ust-$F-s$S/last.pth ] || $RS train --dataset dataset-$F-uft-s$S.toml --model st-$F.toml --weights uft-$F-s$S/last.pth \
    --unlabelled data-$F-uft-s$S/validation/images --checkpoint-dir ust-$F-s$S -q || exit 1
[ -f post-$F-ust-s$S/grid.csv ] || python exp_post.py ust-$F-s$S/last.pth data-$F post-$F-ust-s$S --split blocks-$F-unc-s$S
