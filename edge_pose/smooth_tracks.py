"""Keypoint tracks: record them from a video with a pose model (cached as .npz) and group them by track id.

A recording is flat arrays, one row per person per frame: frame (N,), time (N,) s, id (N,), box (N, 4) [x, y, w, h],
keypoints (N, 17, 3) x, y, score. `tracks(rec)` groups it into {track id: {"frames", "time", "box", "keypoints"}}
with rows in frame order, the form smooth_metrics works on.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

FIELDS = ("frame", "time", "id", "box", "keypoints")


def default_cache_dir():
    """Where recordings are cached: $EDGE_POSE_CACHE/tracks, else <tmp>/edge-pose-cache/tracks."""
    root = os.environ.get("EDGE_POSE_CACHE") or os.path.join(tempfile.gettempdir(), "edge-pose-cache")
    return Path(root) / "tracks"


def _stamp(path):
    st = os.stat(path)
    return "%s:%d:%d" % (os.path.realpath(path), st.st_size, int(st.st_mtime))


def _cache_path(video, model, max_frames, persons, cache_dir):
    from edge_pose.runtime import resolve

    key = "|".join([_stamp(video), _stamp(resolve(model)), str(max_frames), persons])
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    name = "%s_%s_%s_%s.npz" % (Path(video).stem, Path(str(model)).stem, max_frames, digest)
    return Path(cache_dir) / name


def record(video, estimator, max_frames=300, persons="keypoints"):
    """Run `estimator` (a PoseEstimator) with person source `persons` over the first `max_frames` frames of
    `video`; the recording (dict of FIELDS arrays, plus fps and n_frames). Person-source ids serve as track ids."""
    from edge_pose.persons import make_person_source
    from edge_pose.sources import open_source

    source = make_person_source(persons)
    rows = {k: [] for k in FIELDS}
    n = 0
    with open_source(str(video)) as src:
        fps = float(getattr(src, "fps", 0.0) or 0.0)
        for frame in src:
            if max_frames is not None and frame.index >= max_frames:
                break
            n += 1
            t = frame.time if frame.time is not None else frame.index / (fps or 30.0)
            for p in source(frame.image, estimator):
                rows["frame"].append(frame.index)
                rows["time"].append(t)
                rows["id"].append(int(p["id"]))
                rows["box"].append(p["box"])
                rows["keypoints"].append(p["keypoints"])
    rec = {"frame": np.asarray(rows["frame"], np.int64), "time": np.asarray(rows["time"], np.float64),
           "id": np.asarray(rows["id"], np.int64), "box": np.asarray(rows["box"], np.float64).reshape(-1, 4),
           "keypoints": np.asarray(rows["keypoints"], np.float32).reshape(-1, 17, 3)}
    rec["fps"] = fps
    rec["n_frames"] = n
    return rec


def cached_record(video, model="mobilenetv3", max_frames=300, threads=None, persons="keypoints", cache_dir=None,
                  estimator=None):
    """`record` of `video` with model `model`, loaded from / saved to the cache when there (see default_cache_dir)."""
    cache_dir = default_cache_dir() if cache_dir is None else Path(cache_dir)
    path = _cache_path(video, model, max_frames, persons, cache_dir)
    if path.exists():
        with np.load(path) as z:
            rec = {k: z[k] for k in z.files}
        rec["fps"] = float(rec["fps"])
        rec["n_frames"] = int(rec["n_frames"])
        return rec
    if estimator is None:
        from edge_pose.estimator import PoseEstimator

        with PoseEstimator(model, threads=threads) as est:
            rec = record(video, est, max_frames, persons)
    else:
        rec = record(video, estimator, max_frames, persons)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".part.npz")
    np.savez_compressed(tmp, **rec)
    os.replace(tmp, path)
    return rec


def tracks(rec, keypoints=None):
    """Group a recording by id: {id: {"frames", "time", "box", "keypoints"}}; `keypoints` (N, 17, 3) replaces
    the recording's (e.g. smoothed ones, same rows)."""
    kp = rec["keypoints"] if keypoints is None else keypoints
    out = {}
    for tid in np.unique(rec["id"]):
        rows = np.flatnonzero(rec["id"] == tid)
        rows = rows[np.argsort(rec["frame"][rows], kind="stable")]
        out[int(tid)] = {"frames": rec["frame"][rows], "time": rec["time"][rows], "box": rec["box"][rows],
                         "keypoints": np.asarray(kp[rows], np.float32)}
    return out

