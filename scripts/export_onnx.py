#!/usr/bin/env python3
"""Export a checkpoint to ONNX: same as `edge-pose export --checkpoint C.pt --out M.onnx`."""
import sys

from edge_pose.cli import main

if __name__ == "__main__":
    sys.exit(main(["export"] + sys.argv[1:]))
