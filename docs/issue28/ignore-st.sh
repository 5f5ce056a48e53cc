#!/bin/bash
# ignore-st.sh FOLD SEED NAME [ignore_st.py options]: the recommended run's two rounds of self-training again, from
# the same fine-tuned model (uft-FOLD-sSEED), with pseudo-labels of confident pixels only (ignore_st.py): clean-st.sh
# with that script. Runs NAME-FOLD-sSEED and NAME2-..., scored on the same tiles as the recommended run.
LABELS=ignore_st.py exec "$(dirname "$0")"/clean-st.sh "$@"
