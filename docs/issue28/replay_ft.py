"""A fine-tune that replays the source regions (issue 28): from the cross-region model, train on the fold's own
training tiles (the other regions) plus the area's labelled local tiles repeated --repeat times, for --epochs,
instead of the local tiles alone. lost_roofs.py found the local fine-tune teaching away roofs the cross-region
model half-saw; with the source tiles beside them it may keep what it knew.

    python replay_ft.py DATASET.toml LOCAL_DATASET.toml FT.toml CROSS.pth OUT [--repeat 8] [--epochs 3]
"""
import argparse

from robosat_effnet.config import apply_overrides, load_dataset_config, load_model_config
from robosat_effnet.training.datasets import find_samples
from robosat_effnet.training.loop import train


def main() -> None:
    p = argparse.ArgumentParser()
    for name in ("dataset", "local", "model", "cross", "out"):
        p.add_argument(name)
    p.add_argument("--repeat", type=int, default=8)
    p.add_argument("--epochs", type=int, default=3)
    args = p.parse_args()
    local = find_samples(load_dataset_config(args.local), "training")
    model = apply_overrides(load_model_config(args.model), weights=args.cross, epochs=args.epochs)
    print(f"{len(local)} local tiles x {args.repeat} beside the source regions' tiles")
    train(args.dataset, model, checkpoint_dir=args.out, progress=False, extra_training=local * args.repeat)


if __name__ == "__main__":
    main()
