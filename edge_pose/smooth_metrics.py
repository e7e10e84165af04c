"""Measures of keypoint smoothing: jitter, lag and error against ground truth, and synthetic noisy tracks.

Tracks are {track id: {"frames": (T,) int, "box": (T, 4) [x, y, w, h], "keypoints": (T, 17, 3) x, y, score}}
(see smooth_tracks.tracks). Lengths are in units of the person's size, sqrt(w * h) of the box (smooth.person_size).
"""
from __future__ import annotations

import numpy as np

from edge_pose.smooth import person_size


def jitter(tracks, threshold=0.3):
    """Mean acceleration |x[t+1] - 2 x[t] + x[t-1]| (Euclidean, pixels per frame^2) divided by the person's size
    at t, over keypoints scoring >= threshold in three consecutive frames of a track. nan when there are none."""
    total, count = 0.0, 0
    for tr in tracks.values():
        f, kp = np.asarray(tr["frames"]), np.asarray(tr["keypoints"], np.float64)
        if len(f) < 3:
            continue
        mid = np.flatnonzero((f[1:-1] - f[:-2] == 1) & (f[2:] - f[1:-1] == 1)) + 1
        if not len(mid):
            continue
        acc = kp[mid + 1, :, :2] - 2.0 * kp[mid, :, :2] + kp[mid - 1, :, :2]
        ok = (kp[mid - 1, :, 2] >= threshold) & (kp[mid, :, 2] >= threshold) & (kp[mid + 1, :, 2] >= threshold)
        mag = np.linalg.norm(acc, axis=-1) / person_size(np.asarray(tr["box"])[mid])[:, None]
        total += float(mag[ok].sum())
        count += int(ok.sum())
    return total / count if count else float("nan")


def _confident_runs(frames, score, threshold, min_run):
    """Index arrays of the runs of >= min_run consecutive frames (no gap in `frames`) with score >= threshold."""
    ok = score >= threshold
    after = np.concatenate([[False], (np.diff(frames) == 1) & ok[:-1]])
    run_id = np.cumsum(ok & ~after) * ok
    runs = np.split(np.arange(len(ok)), np.flatnonzero(np.diff(run_id)) + 1)
    return [r for r in runs if len(r) >= min_run and ok[r[0]]]


def shift_errors(raw, filtered, max_lag=5, threshold=0.3, min_run=15, window=7):
    """Mean squared distance (person sizes^2) between filtered[t] and the raw positions at t - k, for
    k = -max_lag..max_lag, over runs of >= min_run consecutive frames in which a keypoint scores >= threshold in
    `raw`. The raw positions are first denoised without delay (Savitzky-Golay, `window` frames, quadratic: a
    symmetric fit that keeps ramps and parabolas), so the raw noise does not pull the minimum to k = 0.
    Returns (lags, errors)."""
    from scipy.signal import savgol_filter

    lags = np.arange(-max_lag, max_lag + 1)
    sq = np.zeros(len(lags))
    cnt = np.zeros(len(lags))
    for tid, tr in raw.items():
        a = np.asarray(tr["keypoints"], np.float64)
        b = np.asarray(filtered[tid]["keypoints"], np.float64)
        scale = float(np.median(person_size(np.asarray(tr["box"]))))
        for k in range(a.shape[1]):
            for idx in _confident_runs(np.asarray(tr["frames"]), a[:, k, 2], threshold, max(min_run, window)):
                ref = savgol_filter(a[idx, k, :2] / scale, window, 2, axis=0)
                out = b[idx, k, :2] / scale
                n = len(idx)
                for i, lag in enumerate(lags):
                    if abs(lag) >= n:
                        continue
                    d = out[lag:] - ref[:n - lag] if lag >= 0 else out[:n + lag] - ref[-lag:]
                    sq[i] += float((d * d).sum())
                    cnt[i] += len(d)
    with np.errstate(invalid="ignore", divide="ignore"):
        return lags, sq / cnt


def lag(raw, filtered, max_lag=5, threshold=0.3, min_run=15, window=7):
    """Delay in frames of the filtered keypoints behind the raw ones (positive: filtered lags): the shift that
    best aligns them, i.e. minimises the squared distance of filtered[t] to the (delay-free denoised) raw positions
    at t - lag (see shift_errors; the same as maximising their cross-correlation, but not fooled by people walking
    across the frame), to a fraction of a frame by a parabola through the minimum. nan without data."""
    lags, e = shift_errors(raw, filtered, max_lag, threshold, min_run, window)
    if not np.isfinite(e).any():
        return float("nan")
    i = int(np.nanargmin(e))
    if 0 < i < len(e) - 1 and np.isfinite(e[i - 1]) and np.isfinite(e[i + 1]):
        den = e[i - 1] - 2.0 * e[i] + e[i + 1]
        if den > 0:
            return float(lags[i] + 0.5 * (e[i - 1] - e[i + 1]) / den)
    return float(lags[i])


def rmse(truth, tracks, threshold=0.3, skip=0, low=False):
    """Root mean square distance to the true positions in person sizes, over keypoints scoring >= threshold in
    `tracks` (low=True: those scoring below it), ignoring the first `skip` frames of each track."""
    sq, n = 0.0, 0
    for tid, tr in tracks.items():
        kp = np.asarray(tr["keypoints"], np.float64)[skip:]
        gt = np.asarray(truth[tid]["keypoints"], np.float64)[skip:]
        size = person_size(np.asarray(tr["box"]))[skip:, None]
        ok = kp[..., 2] < threshold if low else kp[..., 2] >= threshold
        d2 = ((kp[..., :2] - gt[..., :2]) ** 2).sum(-1) / size ** 2
        sq += float(d2[ok].sum())
        n += int(ok.sum())
    return float(np.sqrt(sq / n)) if n else float("nan")


# a standing person's keypoints (COCO-17 order) in person sizes around the box centre
_TEMPLATE = np.array([
    [0.0, -0.62], [-0.04, -0.66], [0.04, -0.66], [-0.09, -0.63], [0.09, -0.63],
    [-0.2, -0.42], [0.2, -0.42], [-0.26, -0.15], [0.26, -0.15], [-0.28, 0.08], [0.28, 0.08],
    [-0.12, 0.1], [0.12, 0.1], [-0.13, 0.42], [0.13, 0.42], [-0.14, 0.72], [0.14, 0.72]])
# how much each keypoint swings (limbs more than the head and trunk), in person sizes
_SWING = np.array([0.03] * 5 + [0.05, 0.05, 0.12, 0.12, 0.2, 0.2, 0.04, 0.04, 0.12, 0.12, 0.2, 0.2])


def synthetic_tracks(n_frames=300, fps=30.0, size=200.0, noise=0.005, outliers=0.03, outlier_size=0.1, dropout=0.05,
                     n_people=2, seed=0):
    """Smooth ground-truth motions of `n_people` people of size `size` px and noisy measurements of them.

    Each person walks in constant-velocity segments (0.3-2 s, speeds up to 1.5 sizes/s, velocity changes eased
    over 0.2 s) while every keypoint swings sinusoidally (0.5-2 Hz, amplitude up to 0.2 sizes for wrists and
    ankles). Measurements: Gaussian noise of standard deviation `noise` * size / score (scores uniform in
    [0.5, 1]); an `outliers` fraction of keypoints is off by Gaussian noise of `outlier_size` sizes at an
    ordinary score (the real models' confident mistakes); a `dropout` fraction gets a low score (0.05-0.25)
    and a position off by 0.3 sizes. The defaults match the raw keypoints of the shipped models on the shared
    videos: median residual ~0.003-0.004 sizes, rms ~0.015-0.02 with the outliers; speeds ~0.8 sizes/s rms.
    Returns (truth, measured) tracks with ids 1..n_people, scores 1 in truth.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames) / fps
    ease = max(1, int(0.2 * fps))
    box_filter = np.full(ease, 1.0 / ease)
    truth, measured = {}, {}
    for pid in range(1, n_people + 1):
        # piecewise-constant velocity, eased: convolve with a 0.2 s box
        vel = np.zeros((n_frames, 2))
        i = 0
        while i < n_frames:
            n = max(1, int(rng.uniform(0.3, 2.0) * fps))
            vel[i:i + n] = rng.uniform(-1.5, 1.5, 2) * [1.0, 0.3] * size
            i += n
        vel = np.stack([np.convolve(vel[:, c], box_filter, mode="same") for c in range(2)], axis=1)
        centre = np.cumsum(vel, axis=0) / fps + rng.uniform(2, 6, 2) * size
        freq = rng.uniform(0.5, 2.0, (17, 2))
        phase = rng.uniform(0, 2 * np.pi, (17, 2))
        swing = _SWING[:, None] * rng.uniform(0.5, 1.0, (17, 2)) * size
        xy = (centre[:, None, :] + _TEMPLATE[None] * size
              + swing[None] * np.sin(2 * np.pi * freq[None] * t[:, None, None] + phase[None]))
        box = np.concatenate([centre - [0.35 * size, 0.7 * size], np.tile([0.7 * size, 1.4 * size], (n_frames, 1))],
                             axis=1)
        score = rng.uniform(0.5, 1.0, (n_frames, 17))
        obs = xy + rng.normal(0.0, 1.0, xy.shape) * (noise * size / score)[..., None]
        wrong = rng.random((n_frames, 17)) < outliers
        obs[wrong] += rng.normal(0.0, outlier_size * size, (int(wrong.sum()), 2))
        drop = rng.random((n_frames, 17)) < dropout
        score[drop] = rng.uniform(0.05, 0.25, int(drop.sum()))
        obs[drop] = xy[drop] + rng.normal(0.0, 0.3 * size, (int(drop.sum()), 2))
        frames = np.arange(n_frames)
        truth[pid] = {"frames": frames, "time": t, "box": box,
                      "keypoints": np.concatenate([xy, np.ones((n_frames, 17, 1))], -1).astype(np.float32)}
        measured[pid] = {"frames": frames, "time": t, "box": box,
                         "keypoints": np.concatenate([obs, score[..., None]], -1).astype(np.float32)}
    return truth, measured


def apply_smoother(tracks, smoother):
    """Run `smoother` over tracks frame by frame (all tracks together); the smoothed tracks (same form)."""
    smoother.reset()
    frames = sorted(set(int(f) for tr in tracks.values() for f in tr["frames"]))
    index = {tid: {int(f): i for i, f in enumerate(tr["frames"])} for tid, tr in tracks.items()}
    out = {tid: dict(tr, keypoints=np.array(tr["keypoints"], np.float32)) for tid, tr in tracks.items()}
    for f in frames:
        people, where = [], []
        for tid, tr in tracks.items():
            i = index[tid].get(f)
            if i is not None:
                people.append({"track_id": tid, "box": tr["box"][i], "keypoints": tr["keypoints"][i]})
                where.append((tid, i))
        t = next(tracks[tid]["time"][i] for tid, i in where) if "time" in tracks[where[0][0]] else None
        smoother(people, None if t is None else float(t))
        for p, (tid, i) in zip(people, where):
            out[tid]["keypoints"][i] = p["smoothed"]
    return out
