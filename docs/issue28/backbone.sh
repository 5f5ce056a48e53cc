#!/bin/bash
# backbone.sh FOLD REGION BACKBONE: the recommended run (two rounds of self-training) with another backbone (e.g.
# lite1, whose cross-region study runs had the best fold means): the study's cross-region run with BACKBONE from
# ImageNet (seed 0, final.toml), its uncertain blocks, the fine-tune and both rounds with the recipe's tomls
# (backbone replaced). Scored on the tiles neither the random blocks, the Lite0 run's blocks nor its own labelled
# (blocks-FOLD-common-BACKBONE), the Lite0 two-round model beside it. Run after ust-round.sh FOLD 0 2, from the same
# study folder, with exp_post.py, uncertain-blocks.sh and common_split.py beside it. Resumable.
set -ex
F=$1 R=$2 B=$3
T=0-$B                                    # read as the seed by uncertain-blocks.sh: blocks-F-unc-s0-B, ...
export OMP_NUM_THREADS=1
RS="python -m robosat_effnet.cli"
EP=ft.toml; [ $F = c ] && EP=ft-c.toml
for t in $EP st-$F.toml; do sed "s/^backbone *= .*/backbone   = \"efficientnet-$B\"/" $t > ${t%.toml}-$B.toml; done
C=final-$F-$B/efficientnet-$B-imagenet-s0/last.pth
[ -f final-$F-$B/results.csv ] || $RS study --dataset dataset-$F.toml --model final.toml --out final-$F-$B \
    --min-area 2 --speed-repeats 2 -q --backbones $B --weights imagenet --seeds 0
[ -f post-$F-cross-s$T/grid.csv ] || python exp_post.py $C data-$F post-$F-cross-s$T --split blocks-$F
if [ ! -f uft-$F-s$T/last.pth ]; then
  ./uncertain-blocks.sh $F $R $T
  $RS train --dataset dataset-$F-uft-s$T.toml --model ${EP%.toml}-$B.toml --weights $C --checkpoint-dir uft-$F-s$T -q
fi
U=data-$F-uft-s$T/validation/images
[ -f ust-$F-s$T/last.pth ] || $RS train --dataset dataset-$F-uft-s$T.toml --model st-$F-$B.toml \
    --weights uft-$F-s$T/last.pth --unlabelled $U --checkpoint-dir ust-$F-s$T -q
[ -f ust2-$F-s$T/last.pth ] || $RS train --dataset dataset-$F-uft-s$T.toml --model st-$F-$B.toml \
    --weights ust-$F-s$T/last.pth --unlabelled $U --checkpoint-dir ust2-$F-s$T -q
python common_split.py blocks-$F-common blocks-$F-unc-s$T blocks-$F-common-$B
for m in ust2-$F-s0 ust2-$F-s$T; do
  [ -f post-$m-common-$B/grid.csv ] || python exp_post.py $m/last.pth data-$F post-$m-common-$B \
      --split blocks-$F-common-$B
done
