#!/usr/bin/env python3
"""Jitter / lag of the keypoint smoothers on real videos and error on synthetic tracks (issue 5, item 5).

    python scripts/smoothing_report.py [--videos V ...] [--max-frames 300] [--json-out F] [--sweep-accel 0.5,1,2]

--sweep-accel adds the Kalman trade-off: jitter reduction and lag per video, and synthetic RMSE, for each
process noise (KalmanParams.accel) given, other parameters as set.

`edge-pose bench --report smoothing` gives the same report without the sweep.
"""
import argparse
import json
from pathlib import Path

from edge_pose.smooth_report import DEFAULT_VIDEOS, format_smoothing_report, smoothing_report


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", nargs="+", default=DEFAULT_VIDEOS)
    p.add_argument("--model", default="mobilenetv3")
    p.add_argument("--max-frames", type=int, default=300)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cache-dir", default=None, help="where recorded tracks are cached (default: a temp folder)")
    p.add_argument("--kalman", default=None, metavar="JSON", help='KalmanParams overrides, e.g. \'{"accel": 2}\'')
    p.add_argument("--one-euro", default=None, metavar="JSON", help="OneEuroParams overrides")
    p.add_argument("--sweep-accel", default=None, metavar="A[,A...]", help="Kalman accel values to compare")
    p.add_argument("--json-out", default=None)
    a = p.parse_args()
    params = {"kalman": json.loads(a.kalman) if a.kalman else None,
              "one_euro": json.loads(a.one_euro) if a.one_euro else None}
    d = smoothing_report(a.videos, a.model, a.max_frames, a.threads, params, a.cache_dir)
    print(format_smoothing_report(d))
    if a.sweep_accel:
        rows = []
        for accel in [float(v) for v in a.sweep_accel.split(",")]:
            kp = dict(params["kalman"] or {}, accel=accel)
            rows.append((accel, smoothing_report(a.videos, a.model, a.max_frames, a.threads, dict(params, kalman=kp),
                                                 a.cache_dir)))
        print(format_sweep(rows))
        d["sweep_accel"] = [{"accel": accel, "report": r} for accel, r in rows]
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(d, indent=1))


def format_sweep(rows):
    """Kalman trade-off table: per accel, reduction / lag (frames) per video, synthetic RMSE and lag."""
    videos = [v["video"] for v in rows[0][1]["videos"]]
    head = "%-6s | " % "accel" + " | ".join("%-17.17s" % v for v in videos) + " | synthetic rmse, lag"
    lines = ["", "Kalman trade-off (reduction, lag frames):", head, "-" * len(head)]
    for accel, r in rows:
        cells = ["%4.0f%% %5.2f fr    " % (100 * v["reduction"]["kalman"], v["lag_frames"]["kalman"])
                 for v in r["videos"]]
        s = r["synthetic"]
        lines.append("%-6g | " % accel + " | ".join(cells) + " | %.4f (raw %.4f), %.2f fr" % (
            s["rmse"]["kalman"], s["rmse"]["raw"], s["lag_frames"]["kalman"]))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
