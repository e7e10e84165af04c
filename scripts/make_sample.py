"""Cut the repository's sample clip from ../shared/data/videos/sports2d_two_people.mp4 (BSD-3-Clause).

    python scripts/make_sample.py [--src PATH] [--out samples/two_people.mp4] [--start 30] [--frames 150]

Frames start..start+frames-1, resized to 960 px wide, H.264 (libx264, yuv420p, crf 23) through PyAV.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge_pose.sinks import VideoWriter  # noqa: E402
from edge_pose.sources import open_source  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", default=str(REPO.parent / "shared" / "data" / "videos" / "sports2d_two_people.mp4"))
    p.add_argument("--out", default=str(REPO / "samples" / "two_people.mp4"))
    p.add_argument("--start", type=int, default=30)
    p.add_argument("--frames", type=int, default=150)
    p.add_argument("--width", type=int, default=960)
    p.add_argument("--crf", type=int, default=23)
    args = p.parse_args(argv)
    with open_source(args.src) as src:
        height = int(round(src.height * args.width / float(src.width) / 2)) * 2
        writer = VideoWriter(args.out, src.fps, crf=args.crf, preset="slow")
        with writer:
            for frame in src:
                if frame.index < args.start:
                    continue
                if frame.index >= args.start + args.frames:
                    break
                writer.write(cv2.resize(frame.image, (args.width, height), interpolation=cv2.INTER_AREA))
    size = Path(args.out).stat().st_size
    print("wrote %s: %d frames, %dx%d, %.2f MB" % (args.out, writer.count, args.width, height, size / 1e6))
    return 0


if __name__ == "__main__":
    sys.exit(main())
