"""`rs-effnet` with every BatchNorm layer held in eval mode while it trains (issue 28): the layers keep the
running statistics of the model given as --weights and use them for each batch, instead of the batch's own and
an average drifting toward the few local tiles. The classic setting for fine-tuning on little data; the question
is whether the local fine-tune then keeps the roofs the cross-region model half-saw (lost_roofs.py), which a
fine-tune on 4-8 tiles of one dense town teaches away.

A prototype for the measurement, not the package's code: it changes BatchNorm's train() for this process only.

    python frozen_bn.py train --dataset ... --model ... --weights ... --checkpoint-dir ...
"""
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from robosat_effnet.cli import main


def _always_eval(self: _BatchNorm, mode: bool = True) -> _BatchNorm:
    return nn.Module.train(self, False)


_BatchNorm.train = _always_eval

if __name__ == "__main__":
    main(prog_name="rs-effnet")
