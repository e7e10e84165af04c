#!/usr/bin/env python3
"""Training throughput (samples/s of forward + MSE + backward + AdamW) of a model in each memory layout and
precision, side by side in one run: what `train.channels_last` buys on this machine.

    python scripts/train_speed.py --backbone mobilenetv3 --head lite --threads 2
"""
import argparse
import time

import torch

from edge_pose.models import BACKBONES, HEADS, build_model

MODES = {  # name: (memory format, CPU bf16 autocast)
    "nchw": (torch.contiguous_format, False),
    "channels_last": (torch.channels_last, False),
    "nchw+bf16": (torch.contiguous_format, True),
    "channels_last+bf16": (torch.channels_last, True),
}


def step_times(backbone, head, layout, bf16, batch, size, steps):
    torch.manual_seed(0)
    model = build_model(backbone, head).train().to(memory_format=layout)
    w, h = size
    x = torch.randn(batch, 3, h, w).contiguous(memory_format=layout)
    y = torch.rand(batch, 17, h // 4, w // 4)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    times = []
    for _ in range(steps + 1):  # the first step (allocations, kernel choice) is not counted
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(x)
        loss = ((out.float() - y) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return times[1:]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", choices=list(BACKBONES), default="mobilenetv3")
    ap.add_argument("--head", choices=list(HEADS), default="lite")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, nargs=2, default=[192, 256], metavar=("W", "H"))
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2, help="the modes alternate this many times (noisy machines)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    best = {m: float("inf") for m in args.modes}
    for _ in range(args.rounds):
        for m in args.modes:
            t = step_times(args.backbone, args.head, *MODES[m], args.batch, args.size, args.steps)
            best[m] = min(best[m], sorted(t)[len(t) // 2])
    base = best[args.modes[0]]
    print("%s-%s, batch %d, %dx%d, %d threads (median step, best of %d rounds)"
          % (args.backbone, args.head, args.batch, *args.size, torch.get_num_threads(), args.rounds))
    print("| mode | s/step | samples/s | speed-up vs %s |" % args.modes[0])
    print("|---|---|---|---|")
    for m in args.modes:
        print("| %s | %.2f | %.1f | %.2fx |" % (m, best[m], args.batch / best[m], base / best[m]))


if __name__ == "__main__":
    main()
