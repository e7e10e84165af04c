#!/usr/bin/env python3
"""Params and GFLOPs (torch.utils.flop_counter, 1 x 3 x 256 x 192) of every backbone x head, as a Markdown table."""
import torch
from torch.utils.flop_counter import FlopCounterMode

from edge_pose.models import BACKBONES, HEADS, build_model


def gflops(model):
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(torch.zeros(1, 3, 256, 192))
    return fc.get_total_flops() / 1e9


def main():
    print("| backbone | head | params (M) | GFLOPs | head GFLOPs |")
    print("|---|---|---|---|---|")
    for b in BACKBONES:
        for h in HEADS:
            m = build_model(b, h).eval()
            total, base = gflops(m), gflops(m.backbone)
            params = sum(p.numel() for p in m.parameters()) / 1e6
            print("| %s | %s | %.2f | %.2f | %.2f |" % (b, h, params, total, total - base))


if __name__ == "__main__":
    main()
