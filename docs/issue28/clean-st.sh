#!/bin/bash
# clean-st.sh FOLD SEED NAME [clean_st.py options]: the recommended run's two rounds of self-training again, from
# the same fine-tuned model (uft-FOLD-sSEED), with other pseudo-labels (clean_st.py: e.g. `cst --min-area 5` for
# clean ones, `tst --tta --min-area 0` for a teacher averaged over flips). Runs NAME-FOLD-sSEED and NAME2-...,
# scored on the same tiles as the recommended run. Uses clean_st.py (or $LABELS, e.g. ignore_st.py: ignore-st.sh)
# and exp_post.py beside it.
set -ex
F=$1 S=$2 N=$3; shift 3
L=${LABELS:-clean_st.py}
export OMP_NUM_THREADS=1
ST=st-$F.toml; B=blocks-$F-common; [ $S = 0 ] || { ST=st-$F-s$S.toml; B=blocks-$F-common-s$S; }
U=data-$F-uft-s$S/validation/images
[ -f $N-$F-s$S/last.pth ] || python $L dataset-$F-uft-s$S.toml $ST uft-$F-s$S/last.pth $U $N-$F-s$S "$@"
[ -f post-$F-$N-common-s$S/grid.csv ] || python exp_post.py $N-$F-s$S/last.pth data-$F post-$F-$N-common-s$S --split $B
[ -f ${N}2-$F-s$S/last.pth ] || python $L dataset-$F-uft-s$S.toml $ST $N-$F-s$S/last.pth $U ${N}2-$F-s$S "$@"
[ -f post-$F-${N}2-common-s$S/grid.csv ] || python exp_post.py ${N}2-$F-s$S/last.pth data-$F post-$F-${N}2-common-s$S --split $B
