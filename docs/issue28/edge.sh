#!/bin/bash
# edge.sh FOLD REGION TRAIN1 TRAIN2 [PX]: the recommended run (uncertain blocks of seed 0 + self-training) with a
# third class on every building's inner rim (edge_labels.py), split apart along it as `features` splits the
# "touching" band. Same tiles, blocks (blocks-FOLD-unc-s0), epochs and seed as the two-class run; resumable.
# LOSS=mIoU: that loss instead of the recipe's Lovasz (which ignores class weights) in all three trainings.
set -ex
F=$1 R=$2 T1=$3 T2=$4 PX=${5:-3}
export OMP_NUM_THREADS=1
DATA=${DATA:-../shared/data/buildings-oam}
RS="python -m robosat_effnet.cli"
E=data-$F-edge$PX
if [ ! -f $E.done ]; then
  rm -rf $E && mkdir -p $E/training $E/validation
  cp -r data-$F/training/images $E/training/images
  cp -r data-$F/validation/images $E/validation/images
  for T in $T1 $T2; do python edge_labels.py $DATA/$T/labels.geojson labels-$F-$T $E/training/labels --px $PX; done
  python edge_labels.py $DATA/$R/labels.geojson data-$F/validation/labels $E/validation/labels --px $PX
  printf '[common]\ndataset = "%s"\nclasses = ["background", "building", "touching"]\ncolors  = ["denim", "orange", "red"]\n' $E > dataset-$F-edge$PX.toml
  $RS weights --dataset dataset-$F-edge$PX.toml -q >> dataset-$F-edge$PX.toml
  touch $E.done
fi
M=final.toml; [ $F = c ] && M=final-c.toml
EP=ft.toml; [ $F = c ] && EP=ft-c.toml
ST=st-$F.toml
V=edge$PX
if [ -n "$LOSS" ]; then
  V=edge$PX-$LOSS
  for t in $M $EP $ST; do sed "s/^loss .*/loss   = \"$LOSS\"/" $t > ${t%.toml}-$LOSS.toml; done
  M=${M%.toml}-$LOSS.toml EP=${EP%.toml}-$LOSS.toml ST=${ST%.toml}-$LOSS.toml
fi
C=final-$F-$V/efficientnet-lite0-imagenet-s0/last.pth
[ -f $C ] || $RS study --dataset dataset-$F-edge$PX.toml --model $M --out final-$F-$V --min-area 2 \
    --speed-repeats 2 -q --backbones lite0 --weights imagenet --seeds 0
L=data-$F-uft-s0-edge$PX
if [ ! -f $L.done ]; then
  copy() { while IFS=, read x y z; do mkdir -p $3/$z/$x && cp $2/$z/$x/$y.png $3/$z/$x/$y.png; done < $1; }
  rm -rf $L
  for part in local:training rest:validation; do
    copy blocks-$F-unc-s0/${part%:*}.csv data-$F/validation/images $L/${part#*:}/images
    copy blocks-$F-unc-s0/${part%:*}.csv $E/validation/labels $L/${part#*:}/labels
  done
  sed "s/dataset = \"$E\"/dataset = \"$L\"/" dataset-$F-edge$PX.toml > dataset-$L.toml
  touch $L.done
fi
[ -f uft-$F-s0-$V/last.pth ] || $RS train --dataset dataset-$L.toml --model $EP --weights $C \
    --checkpoint-dir uft-$F-s0-$V -q
# pseudo-labels at the plain argmax: at 0.7 the rim (where the model hesitates between rim and roof) would go
[ -f ust-$F-s0-$V/last.pth ] || python -c "
from robosat_effnet.adapt import self_train
self_train('dataset-$L.toml', '$ST', '$L/validation/images', weights='uft-$F-s0-$V/last.pth',
           checkpoint_dir='ust-$F-s0-$V', threshold=0, progress=False)"
for pair in cross:final-$F-$V/efficientnet-lite0-imagenet-s0 uft:uft-$F-s0-$V ust:ust-$F-s0-$V; do
  o=post-$F-${pair%%:*}-$V
  [ -f $o/grid.csv ] || python exp_edge.py ${pair#*:}/last.pth data-$F $o --split blocks-$F-common
done
