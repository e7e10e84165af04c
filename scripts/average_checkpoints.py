#!/usr/bin/env python3
"""Average the weights of several training checkpoints ("model soup") and re-estimate BatchNorm statistics.

Checkpoints fine-tuned from the same weights (restarts of a shipped model with other augmentation, a teacher...)
often sit in one basin, where their mean scores better than each of them. Each checkpoint's EMA weights are
averaged element-wise; BatchNorm running statistics are then re-estimated on `--bn-samples` training crops of the
config's train sets (its augmentation on, as in training). The result is a `.pt` that `edge-pose eval`,
`edge-pose export` and `scripts/ship_model.py` take like any checkpoint.

    python scripts/average_checkpoints.py runs/a/last.pt runs/b/last.pt --config configs/mobilenetv3_finetune.yaml \
        --out runs/mobilenetv3_soup/last.pt
"""
import argparse
import os
import sys

import torch
from tqdm import tqdm

from edge_pose.config import ConfigError, load_config, to_dict
from edge_pose.models import load_checkpoint
from edge_pose.train.loop import save_atomic, training_data
from edge_pose.train.soup import average_state_dicts, recompute_batchnorm


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+", help="edge-pose training checkpoints (.pt) of one architecture")
    ap.add_argument("--config", required=True, help="training config whose train sets re-estimate BatchNorm")
    ap.add_argument("--out", required=True, help="the averaged checkpoint (.pt)")
    ap.add_argument("--bn-samples", type=int, default=2000, help="training crops for the BatchNorm statistics")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if len(args.checkpoints) < 2:
        sys.exit("error: give at least two checkpoints to average")
    for p in args.checkpoints:
        if not os.path.isfile(p):
            sys.exit("error: no checkpoint at %s" % p)
    try:
        cfg = load_config(args.config)
    except ConfigError as e:
        sys.exit("error: %s" % e)
    if args.threads:
        torch.set_num_threads(args.threads)

    loaded = [load_checkpoint(p) for p in args.checkpoints]  # EMA weights where the checkpoint has them
    metas = [m.checkpoint_meta for m in loaded]
    arch = metas[0]["arch"]
    for p, meta in zip(args.checkpoints, metas):
        if meta["arch"] != arch:
            sys.exit("error: %s is %s, %s is %s: only one architecture can be averaged"
                     % (p, meta["arch"], args.checkpoints[0], arch))
    try:
        weights = average_state_dicts([m.state_dict() for m in loaded])
    except ValueError as e:
        sys.exit("error: %s" % e)
    model = loaded[0]
    model.load_state_dict(weights)

    data = training_data(cfg)
    batch = cfg.train.batch_size
    n = max(batch, args.bn_samples)
    recompute_batchnorm(model, tqdm(data.batches(n, batch), total=n // batch, desc="BatchNorm statistics"))

    first = metas[0]
    config = dict(first.get("config") or to_dict(cfg))
    config["soup_of"] = [{"checkpoint": p, "epoch": m.get("epoch"), "run": (m.get("config") or {}).get("name")}
                         for p, m in zip(args.checkpoints, metas)]
    config["soup_batchnorm"] = {"config": args.config, "samples": n // batch * batch}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    save_atomic({"arch": arch, "model": model.state_dict(), "ema": None, "epoch": first.get("epoch"),
                 "config": config, "input_size": first.get("input_size"), "metrics": {}}, args.out)
    print("averaged %d checkpoints -> %s" % (len(args.checkpoints), args.out))


if __name__ == "__main__":
    main()
