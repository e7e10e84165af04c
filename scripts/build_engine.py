#!/usr/bin/env python3
"""Same as `edge-pose build-engine` (see `edge-pose build-engine --help`)."""
import sys

from edge_pose.cli import main

if __name__ == "__main__":
    sys.exit(main(["build-engine"] + sys.argv[1:]))
