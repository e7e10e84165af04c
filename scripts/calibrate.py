#!/usr/bin/env python3
"""Same as `edge-pose calibrate` (see `edge-pose calibrate --help`)."""
import sys

from edge_pose.cli import main

if __name__ == "__main__":
    sys.exit(main(["calibrate"] + sys.argv[1:]))
