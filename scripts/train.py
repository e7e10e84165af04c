#!/usr/bin/env python3
"""Train a pose model: same as `edge-pose train --config F.yaml [--resume auto] [--set key=value ...]`."""
import sys

from edge_pose.cli import main

if __name__ == "__main__":
    sys.exit(main(["train"] + sys.argv[1:]))
