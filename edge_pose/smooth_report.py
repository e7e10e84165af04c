"""Smoothing report: jitter and lag of the Kalman and One Euro smoothers on real videos, error on synthetic tracks.

    d = smoothing_report(["sports2d_two_people.mp4"], model="mobilenetv3", max_frames=300)
    print(format_smoothing_report(d))

Real tracks come from the model and the "keypoints" person source (its person ids as track ids), recorded once
and cached (smooth_tracks.cached_record). Jitter: mean |x[t+1] - 2 x[t] + x[t-1]| over confident keypoints in
person sizes (sqrt of the box area); lag: the delay in frames that best aligns the filtered keypoints with the
raw ones (smooth_metrics.lag). Targets from issue 5: jitter reduction >= 70 % with <= 1 frame of lag.
"""
from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

from edge_pose.smooth import KalmanParams, OneEuroParams, make_smoother
from edge_pose.smooth_metrics import apply_smoother, jitter, lag, rmse, synthetic_tracks

FILTERS = ("kalman", "one_euro")
TARGET_REDUCTION = 0.70
TARGET_LAG_FRAMES = 1.0
_PARAMS = {"kalman": KalmanParams, "one_euro": OneEuroParams}

_SHARED = Path(os.environ.get("EDGE_POSE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
# the shared videos the report runs on by default (sports2d: two people; pose2sim: one / several; vtest: a crowd)
DEFAULT_VIDEOS = [str(_SHARED / "videos" / name) for name in (
    "sports2d_two_people.mp4", "pose2sim_single_cam02.mp4", "pose2sim_multi_cam02.mp4", "opencv_vtest_pedestrians.avi")]


def filter_params(params=None):
    """{"kalman": KalmanParams, "one_euro": OneEuroParams} from None, or a dict of params objects / dicts."""
    params = params or {}
    out = {}
    for name, cls in _PARAMS.items():
        p = params.get(name)
        out[name] = cls() if p is None else p if isinstance(p, cls) else cls(**dict(p))
    return out


def compare(tracks, params, fps):
    """Jitter of the raw and smoothed tracks, reduction and lag (frames, ms) of each filter."""
    raw = jitter(tracks)
    out = {"jitter": {"raw": raw}, "reduction": {}, "lag_frames": {}, "lag_ms": {}}
    for name in FILTERS:
        smoothed = apply_smoother(tracks, make_smoother(name, params[name]))
        j = jitter(smoothed)
        d = lag(tracks, smoothed)
        out["jitter"][name] = j
        out["reduction"][name] = 1.0 - j / raw if raw > 0 else float("nan")
        out["lag_frames"][name] = d
        out["lag_ms"][name] = 1e3 * d / fps if fps else float("nan")
    return out


def synthetic_report(params, fps=30.0, n_frames=300, n_people=4, seed=0, skip=10):
    """The filters on synthetic_tracks: RMSE to the truth (person sizes) on measured and on dropped keypoints,
    jitter and lag (against the truth)."""
    truth, measured = synthetic_tracks(n_frames=n_frames, fps=fps, n_people=n_people, seed=seed)
    out = {"fps": fps, "frames": n_frames, "people": n_people,
           "rmse": {"raw": rmse(truth, measured, skip=skip)},
           "rmse_dropped": {"raw": rmse(truth, measured, skip=skip, low=True)},
           "jitter": {"truth": jitter(truth), "raw": jitter(measured)}, "lag_frames": {}}
    for name in FILTERS:
        smoothed = apply_smoother(measured, make_smoother(name, params[name]))
        out["rmse"][name] = rmse(truth, smoothed, skip=skip)
        out["rmse_dropped"][name] = rmse(truth, smoothed, skip=skip, low=True)
        out["jitter"][name] = jitter(smoothed)
        out["lag_frames"][name] = lag(truth, smoothed)
    return out


def smoothing_report(videos, model="mobilenetv3", max_frames=300, threads=None, params=None, cache_dir=None,
                     persons="keypoints", synthetic=True, min_track=30):
    """Measure the smoothers on `videos` (recorded with `model`, first `max_frames` frames, cached in
    `cache_dir`) and on synthetic tracks. params: {"kalman": ..., "one_euro": ...} (params objects or dicts;
    missing: defaults). Each video also gets per-track figures (tracks of >= min_track frames): pooled figures
    average slow and fast motion, and the lag is mostly in the fast. Returns a JSON-serialisable dict for
    format_smoothing_report."""
    from edge_pose.smooth_tracks import cached_record, tracks

    params = filter_params(params)
    rows = []
    for video in videos:
        rec = cached_record(video, model, max_frames, threads=threads, persons=persons, cache_dir=cache_dir)
        tr = tracks(rec)
        fps = rec["fps"] or 30.0
        row = {"video": Path(video).name, "frames": rec["n_frames"], "fps": fps, "tracks": len(tr),
               "persons": int(len(rec["id"]))}
        row.update(compare(tr, params, fps))
        row["per_track"] = [dict(compare({tid: t}, params, fps), track=tid, frames=len(t["frames"]))
                            for tid, t in tr.items() if len(t["frames"]) >= min_track]
        rows.append(row)
    out = {"model": str(model), "max_frames": max_frames, "persons": persons,
           "params": {k: asdict(v) for k, v in params.items()}, "videos": rows,
           "targets": {"reduction": TARGET_REDUCTION, "lag_frames": TARGET_LAG_FRAMES}}
    if synthetic:
        out["synthetic"] = synthetic_report(params)
    return out


def _pct(x):
    return "%5.0f%%" % (100 * x) if x == x else "   n/a"


def _row(name, frames, fps, persons, r):
    j, red, lf, lm = r["jitter"], r["reduction"], r["lag_frames"], r["lag_ms"]
    return "%-28s %6d %4.0f %7d | %7.4f %7.4f %7.4f | %6s %6s | %5.2f (%4.0f)    %5.2f (%4.0f)" % (
        name, frames, fps, persons, j["raw"], j["kalman"], j["one_euro"], _pct(red["kalman"]),
        _pct(red["one_euro"]), lf["kalman"], lm["kalman"], lf["one_euro"], lm["one_euro"])


def format_smoothing_report(d):
    """The report as text tables."""
    lines = ["Keypoint smoothing: %s, person source %s, first %s frames per video" % (
        d["model"], d.get("persons", "keypoints"), d["max_frames"])]
    for name, p in d["params"].items():
        lines.append("  %s: %s" % (name, ", ".join("%s=%g" % kv for kv in p.items())))
    lines.append("Jitter = mean |x[t+1]-2x[t]+x[t-1]| / sqrt(box area), keypoints scoring >= 0.3 in 3 frames; "
                 "lag = delay (frames, and ms) best aligning filtered with raw.")
    lines.append("Targets: reduction >= %.0f%%, lag <= %g frame." % (100 * d["targets"]["reduction"],
                                                                       d["targets"]["lag_frames"]))
    head = "%-28s %6s %4s %7s | %7s %7s %7s | %6s %6s | %-14s %-14s" % (
        "video", "frames", "fps", "persons", "raw", "kalman", "1euro", "red K", "red 1E", "lag K fr (ms)",
        "lag 1E fr (ms)")
    lines += ["", head, "-" * len(head)]
    for r in d["videos"]:
        lines.append(_row(r["video"][:28], r["frames"], r["fps"], r["persons"], r))
        for t in r.get("per_track", ()) if len(r.get("per_track", ())) > 1 else ():
            lines.append(_row("  track %s" % t["track"], t["frames"], r["fps"], t["frames"], t))
    s = d.get("synthetic")
    if s:
        lines += ["", "Synthetic: %d people x %d frames at %g fps, error to the truth in person sizes "
                  "(rmse: keypoints measured; dropped: low-score ones)" % (s["people"], s["frames"], s["fps"])]
        head = "%-9s %7s %8s %8s %9s" % ("", "rmse", "dropped", "jitter", "lag fr")
        lines += [head, "-" * len(head)]
        lines.append("%-9s %7s %8s %8.4f %9s" % ("truth", "", "", s["jitter"]["truth"], ""))
        for name in ("raw",) + FILTERS:
            lag_fr = "%9.2f" % s["lag_frames"][name] if name in s["lag_frames"] else "%9s" % ""
            lines.append("%-9s %7.4f %8.4f %8.4f %s" % (name, s["rmse"][name], s["rmse_dropped"][name],
                                                         s["jitter"][name], lag_fr))
    return "\n".join(lines)
