"""`edge-pose bench --report pipeline`: how close the threaded pipeline comes to its inference stage.

One run per model of the full live pipeline (`edge-pose run --realtime --headless`: newest-frame capture
paced at the video's fps, person source, batched inference, tracking, smoothing, a JSONL sink) and, from the
same run's frame records:

- pipelined FPS: frames finished per second at the output;
- inference-only FPS: what the pose stage alone would give on this source: a zero-overhead loop that takes
  the newest frame, spends the measured pose-stage time of each frame (persons + preprocess + infer +
  decode, in the run's order) on it, and waits for the next frame when it is faster than the source
  (`ideal_latest_fps`); 1000 / mean pose time is also shown (the stage's speed without the camera's pace);
- ratio = pipelined / inference-only (target >= 0.95);
- capture -> result latency p50 / p95 against the frame's own work (pose stage + track + smooth) p50 / p95
  (target <= 1.3x): the rest is waiting (for the stage to be free, in queues).
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

WORK = ("persons", "preprocess", "infer", "decode")


class _Collector:
    wants_image = False

    def __init__(self):
        self.records, self.times = [], []

    def write(self, record, image=None):
        self.records.append(record)
        self.times.append(time.perf_counter())

    def close(self):
        pass


def pipeline_run(model, video, threads=None, device="cpu", max_frames=None, config=None):
    """Run the live pipeline on `video` (realtime) with `model`; returns the figures as a dict."""
    from edge_pose.estimator import PoseEstimator
    from edge_pose.pipeline import Pipeline
    from edge_pose.rotating import RotatingJsonlWriter
    from edge_pose.run import make_person_source, make_smoother, make_tracker
    from edge_pose.run_config import parse_run_config
    from edge_pose.sources import open_source

    cfg = config or parse_run_config({})
    collector = _Collector()
    with tempfile.TemporaryDirectory(prefix="edge-pose-bench-") as tmp, open_source(video) as src, \
            PoseEstimator(model, device=device, threads=threads) as est:
        est(np.zeros((256, 192, 3), np.uint8))  # warm-up outside the measurement
        jsonl = RotatingJsonlWriter(str(Path(tmp) / "frames.jsonl"))
        pipe = Pipeline(src, est, make_person_source(cfg), tracker=make_tracker(cfg), smoother=make_smoother(cfg),
                        sinks=[collector, jsonl], realtime=True, max_frames=max_frames)
        summary = pipe.run()
        source_fps = src.fps
    return figures(collector.records, collector.times, summary, source_fps, model, video)


def ideal_latest_fps(work_ms, source_fps, n_frames):
    """FPS of an ideal newest-frame loop on a source delivering `n_frames` at `source_fps`: frame k of the
    loop costs work_ms[k] (cycled); after each, the loop takes the newest frame that has arrived, or waits for
    the next one when it has already done the newest. Capture, drawing and outputs cost nothing."""
    work = np.asarray(work_ms, dtype=np.float64) / 1e3
    if not source_fps:
        return 1.0 / float(np.mean(work))
    period = 1.0 / float(source_fps)
    t, last, done, k = 0.0, -1, 0, 0
    while True:
        newest = min(int(np.floor(t / period + 1e-9)), n_frames - 1)
        if newest <= last:
            if last >= n_frames - 1:
                break
            newest = last + 1
            t = newest * period
        t += work[k % len(work)]
        k += 1
        done += 1
        last = newest
    return (done - 1) / max(t - work[(k - 1) % len(work)], 1e-9) if done > 1 else 0.0


def figures(records, times, summary, source_fps, model="", video=""):
    """The report's numbers from a run's frame records and output times."""
    if len(records) < 3:
        raise RuntimeError("too few frames finished (%d) to measure" % len(records))
    t = [r["timings"] for r in records]
    pose_ms = np.array([sum(x.get(k, 0.0) for k in WORK) for x in t])
    work_ms = pose_ms + np.array([x.get("track", 0.0) + x.get("smooth", 0.0) for x in t])
    latency = np.array([x["latency"] for x in t])
    pipelined = (len(times) - 1) / max(times[-1] - times[0], 1e-9)
    infer_only = 1e3 / float(np.mean(pose_ms))
    cap = ideal_latest_fps(pose_ms, source_fps, summary.captured)
    out = {
        "model": model, "video": str(video), "source_fps": source_fps, "captured": summary.captured,
        "finished": summary.finished, "dropped": summary.dropped,
        "pipelined_fps": pipelined, "inference_only_fps": infer_only, "inference_only_fps_capped": cap,
        "fps_ratio": pipelined / cap,
        "latency_p50_ms": float(np.percentile(latency, 50)), "latency_p95_ms": float(np.percentile(latency, 95)),
        "work_p50_ms": float(np.percentile(work_ms, 50)), "work_p95_ms": float(np.percentile(work_ms, 95)),
        "max_behind": int(max(r["stats"].get("behind", 0) for r in records)),
        "persons_per_frame": float(np.mean([len(r["persons"]) for r in records])),
        "per_frame": [{"frame": r["frame"], "persons": len(r["persons"]), "crops": r["stats"].get("crops"),
                       "timings": r["timings"]} for r in records],
    }
    out["latency_ratio_p50"] = out["latency_p50_ms"] / out["work_p50_ms"]
    out["latency_ratio_p95"] = out["latency_p95_ms"] / out["work_p95_ms"]
    return out


def format_pipeline(rows):
    head = ["model", "src fps", "frames", "dropped", "pipelined FPS", "infer-only FPS", "ratio",
            "latency p50/p95 ms", "work p50/p95 ms", "x p50/p95", "persons"]
    lines = [head]
    for r in rows:
        if r.get("error"):
            lines.append([r["model"], "error: " + r["error"]])
            continue
        lines.append([r["model"], "%.0f" % (r["source_fps"] or 0), str(r["finished"]), str(r["dropped"]),
                      "%.1f" % r["pipelined_fps"],
                      "%.1f%s" % (r["inference_only_fps_capped"],
                                  " (%.1f)" % r["inference_only_fps"] if r["inference_only_fps"] >
                                  r["inference_only_fps_capped"] + 0.05 else ""),
                      "%.3f" % r["fps_ratio"], "%.1f / %.1f" % (r["latency_p50_ms"], r["latency_p95_ms"]),
                      "%.1f / %.1f" % (r["work_p50_ms"], r["work_p95_ms"]),
                      "%.2f / %.2f" % (r["latency_ratio_p50"], r["latency_ratio_p95"]),
                      "%.2f" % r["persons_per_frame"]])
    ncol = len(head)
    widths = [max(len(line[i]) for line in lines if len(line) == ncol) for i in range(ncol)]
    out = []
    for i, line in enumerate(lines):
        out.append("  ".join(c.rjust(widths[j]) if j else c.ljust(widths[j]) for j, c in enumerate(line))
                   if len(line) == ncol else "  ".join(line))
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)
