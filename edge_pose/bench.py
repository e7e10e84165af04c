"""`edge-pose bench`: model latency (batch 1 and 8, median and p90) and end-to-end annotate FPS.

For each model (shipped names or paths) and each backend that can run it, times `backend.infer` on random
crops, then annotates the first `--frames` frames of a video exactly as `edge-pose annotate` does (persons,
pre-processing, inference, decoding, drawing, H.264 encoding, JSONL / COCO writing) into a temporary folder.
Prints a table; `--json-out` writes the figures with the machine's description.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PROG = "edge-pose bench"
DEFAULT_VIDEO = Path(__file__).resolve().parent.parent / "samples" / "two_people.mp4"


def add_arguments(p):
    p.add_argument("--models", default=None, metavar="M[,M...]",
                   help="comma-separated shipped names or model paths (default: every shipped model, "
                        "resnet18,mobilenetv3)")
    p.add_argument("--backends", default="auto", metavar="B[,B...]",
                   help="comma-separated backends to try (onnxruntime, torch); auto: the one each model file needs")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--threads", type=int, default=None, help="CPU inference threads (default: all cores)")
    p.add_argument("--video", default=str(DEFAULT_VIDEO), metavar="V",
                   help="video for the end-to-end annotate FPS (default samples/two_people.mp4); '' to skip")
    p.add_argument("--frames", type=int, default=90, metavar="N", help="frames of the video to annotate (default 90)")
    from edge_pose.persons import MODES

    p.add_argument("--persons", default="keypoints", choices=MODES,
                   help="person source for the annotate run (default keypoints)")
    p.add_argument("--repeat", type=int, default=20, metavar="R", help="timed inference calls per batch size")
    p.add_argument("--batches", default="1,8", metavar="B[,B...]", help="batch sizes to time (default 1,8)")
    p.add_argument("--json-out", default=None, metavar="F", help="write the results as JSON here")
    p.add_argument("--report", default="latency", metavar="R[,R...]",
                   help="latency: inference latency + annotate FPS (default); pipeline: the live pipeline on --video "
                        "with --realtime (pipelined / inference-only FPS, capture->result latency); smoothing: "
                        "jitter and lag of the keypoint filters on the shared videos and synthetic tracks")
    p.add_argument("--max-frames", type=int, default=None, metavar="N",
                   help="pipeline report: stop after N frames (default: the whole video)")


def time_infer(backend, batch_size, repeat=20, warmup=3, seed=0):
    """Milliseconds per infer call on a random (batch_size, 3, 256, 192) batch: median, p90, all times."""
    from edge_pose.runtime.base import INPUT_CHW

    x = np.random.default_rng(seed).standard_normal((batch_size,) + INPUT_CHW).astype(np.float32)
    for _ in range(max(0, warmup)):
        backend.infer(x)
    times = []
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        backend.infer(x)
        times.append(1e3 * (time.perf_counter() - t0))
    return {"median_ms": float(np.median(times)), "p90_ms": float(np.percentile(times, 90)),
            "min_ms": float(np.min(times)), "n": len(times)}


def annotate_fps(estimator, video, frames, persons_mode="keypoints"):
    """End-to-end annotate of the first `frames` frames of `video` into a temporary folder (with the
    annotate defaults: tracking and Kalman smoothing)."""
    from argparse import Namespace

    from edge_pose.annotate import annotate_source, make_stages, plan_outputs
    from edge_pose.sources import open_source

    stages = Namespace(persons=persons_mode, detector="hog", detect_every=15, smoothing="kalman")
    with tempfile.TemporaryDirectory(prefix="edge-pose-bench-") as tmp:
        with open_source(video) as src:
            outputs = plan_outputs(video, tmp)
            persons, tracker, smoother = make_stages(stages)
            result = annotate_source(src, estimator, persons, outputs, progress=False, max_frames=frames,
                                     tracker=tracker, smoother=smoother)
            size = (src.width, src.height)
    return {"fps": result.fps, "frames": result.frames, "persons_per_frame": result.persons_per_frame,
            "seconds": result.seconds, "video": str(video), "size": list(size), "persons": persons_mode}


def backends_for(path, wanted):
    from edge_pose.runtime import choose_backend

    auto = choose_backend(path, "auto")
    if wanted == ["auto"]:
        return [auto]
    return [b for b in wanted if b == auto]


def machine():
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "processor": platform.processor() or platform.machine()}
    try:
        info["load_average"] = [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        pass
    try:
        import onnxruntime as ort

        info["onnxruntime"] = ort.__version__
        info["onnxruntime_providers"] = ort.get_available_providers()
    except ImportError:
        pass
    return info


def format_table(rows, batches):
    head = ["model", "backend"]
    for b in batches:
        head += ["b%d med ms" % b, "b%d p90 ms" % b]
    head += ["ms/crop @b%d" % max(batches), "annotate FPS", "persons/frame"]
    lines = [head]
    for r in rows:
        if r.get("error"):
            lines.append([r["model"], r.get("backend", "-"), "error: " + r["error"]])
            continue
        cells = [r["model"], r["backend"]]
        for b in batches:
            t = r["latency"].get(str(b))
            cells += ["%.1f" % t["median_ms"], "%.1f" % t["p90_ms"]] if t else ["-", "-"]
        big = r["latency"].get(str(max(batches)))
        cells.append("%.1f" % (big["median_ms"] / max(batches)) if big else "-")
        e2e = r.get("annotate")
        cells += ["%.1f" % e2e["fps"], "%.2f" % e2e["persons_per_frame"]] if e2e else ["-", "-"]
        lines.append(cells)
    ncol = len(head)
    widths = [max(len(line[i]) for line in lines if len(line) == ncol) for i in range(ncol)]
    out = []
    for i, line in enumerate(lines):
        if len(line) != ncol:
            out.append("  ".join([line[0].ljust(widths[0]), line[1].ljust(widths[1])] + line[2:]))
        else:
            out.append("  ".join(c.ljust(widths[j]) if j < 2 else c.rjust(widths[j]) for j, c in enumerate(line)))
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def main(args):
    reports = [r.strip() for r in args.report.split(",") if r.strip()]
    unknown = [r for r in reports if r not in ("latency", "pipeline", "smoothing")]
    if unknown or not reports:
        print("%s: error: --report %s: choose from latency, pipeline, smoothing" % (PROG, args.report), file=sys.stderr)
        return 2
    out, rc = {"machine": machine(), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}, 0
    if "latency" in reports:
        rc = max(rc, latency_report(args, out))
    if "pipeline" in reports:
        rc = max(rc, pipeline_report(args, out))
    if "smoothing" in reports:
        rc = max(rc, smoothing_report(args, out))
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=2)
        print("wrote %s" % args.json_out)
    return rc


def _models(args):
    from edge_pose import runtime

    return [m.strip() for m in (args.models or ",".join(runtime.shipped_names())).split(",") if m.strip()]


def pipeline_report(args, out):
    from edge_pose.bench_pipeline import format_pipeline, pipeline_run
    from edge_pose.sources import quiet_ffmpeg

    quiet_ffmpeg()
    video = args.video or str(DEFAULT_VIDEO)
    rows, failed = [], False
    for model in _models(args):
        try:
            rows.append(pipeline_run(model, video, threads=args.threads, device=args.device,
                                     max_frames=args.max_frames))
        except Exception as exc:
            print("%s: error: pipeline %s: %s" % (PROG, model, exc), file=sys.stderr)
            rows.append({"model": model, "error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__})
            failed = True
        print("%s: pipeline %s done" % (PROG, model), file=sys.stderr, flush=True)
    print("pipeline (%s, --realtime, newest-frame capture, tracking + smoothing + JSONL):" % video)
    print(format_pipeline(rows))
    out["pipeline"] = rows
    return 1 if failed else 0


def smoothing_report(args, out):
    from edge_pose.smooth_report import DEFAULT_VIDEOS, format_smoothing_report
    from edge_pose.smooth_report import smoothing_report as report

    videos = [v for v in DEFAULT_VIDEOS if Path(v).is_file()]
    if not videos:
        print("%s: error: smoothing: none of the shared videos is here (%s)" % (PROG, ", ".join(DEFAULT_VIDEOS)),
              file=sys.stderr)
        return 1
    result = report(videos, threads=args.threads, max_frames=args.max_frames or 300)
    print(format_smoothing_report(result))
    out["smoothing"] = result
    return 0


def latency_report(args, out):
    from edge_pose import runtime
    from edge_pose.estimator import PoseEstimator
    from edge_pose.sources import quiet_ffmpeg

    quiet_ffmpeg()
    models = _models(args)
    wanted = [b.strip() for b in args.backends.split(",") if b.strip()] or ["auto"]
    batches = sorted(set(int(b) for b in args.batches.split(",") if b.strip()))
    video = args.video or None
    if video and not Path(video).is_file():
        print("%s: error: video %s: no such file" % (PROG, video), file=sys.stderr)
        return 2
    rows, failed = [], False
    for model in models:
        try:
            path = runtime.resolve(model)
            names = backends_for(path, wanted)
        except (FileNotFoundError, ValueError) as exc:
            print("%s: error: model %s: %s" % (PROG, model, exc), file=sys.stderr)
            rows.append({"model": model, "error": str(exc).splitlines()[0]})
            failed = True
            continue
        if not names:
            rows.append({"model": model, "error": "none of %s can run %s" % (",".join(wanted), path.name)})
            continue
        for name in names:
            row = {"model": model, "path": str(path), "backend": name, "device": args.device,
                   "threads": args.threads, "latency": {}}
            try:
                with PoseEstimator(str(path), backend=name, device=args.device, threads=args.threads) as est:
                    row["backend_detail"] = est.describe()
                    for b in batches:
                        row["latency"][str(b)] = time_infer(est.backend, b, args.repeat)
                    if video:
                        row["annotate"] = annotate_fps(est, video, args.frames, args.persons)
            except Exception as exc:  # one model failing must not hide the others' figures
                print("%s: error: %s on %s: %s" % (PROG, model, name, exc), file=sys.stderr)
                row["error"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                failed = True
            rows.append(row)
            print("%s: %s / %s done" % (PROG, model, name), file=sys.stderr, flush=True)
    print(format_table(rows, batches))
    if video:
        print("annotate FPS: first %d frames of %s, persons=%s, everything included (decode, persons, infer, "
              "draw, H.264, JSONL)" % (args.frames, video, args.persons))
    out.update({"batches": batches, "repeat": args.repeat, "results": rows})
    return 1 if failed else 0
