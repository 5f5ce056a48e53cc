"""Average the weights of several fine-tunes of one model (a "model soup", Wortsman et al. 2022) into one
checkpoint: the runs of ens.sh start from the same cross-region model, so their weights stay comparable. The soup
costs one network at predict time where the ensemble of their probabilities (ensemble.py) costs several.

    python soup.py OUT.pth ust-b-s0/last.pth ust-b-s0-f1/last.pth ust-b-s0-f2/last.pth
"""
import sys

import torch

from robosat_effnet.models.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint

out, paths = sys.argv[1], sys.argv[2:]
states = [load_checkpoint(p) for p in paths]
if any(s["spec"] != states[0]["spec"] for s in states):
    sys.exit("the checkpoints describe different models; a soup needs fine-tunes of one model")
model, spec = model_from_checkpoint(states[0], paths[0])
mean = {k: (torch.stack([s["model"][k].float() for s in states]).mean(0).to(v.dtype) if v.is_floating_point() else v)
        for k, v in states[0]["model"].items()}
model.load_state_dict(mean)
save_checkpoint(out, model, spec)
print(f"{out}: the mean of {len(paths)} checkpoints' weights")
