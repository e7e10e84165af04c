"""Per-track, per-keypoint smoothing of keypoints: a constant-velocity Kalman filter and the One Euro filter.

    smoother = make_smoother("kalman")            # or "one_euro", "none"; params: KalmanParams / OneEuroParams
    people = smoother(people, timestamp)          # sets person["smoothed"] (17, 3) x, y, raw score

State is kept per `track_id` (people without one pass through unsmoothed) in arrays holding every track, so
one frame is a handful of NumPy operations over all keypoints of all people. Noise levels and speeds are in
units of the person's size (sqrt of the box area), so the parameters do not depend on the resolution or on how
far away a person is. Keypoints scoring below `min_score` are not measured: the Kalman filter predicts them,
the One Euro filter holds them. Times are in seconds (live frames come irregularly); without a timestamp a
frame is 1/fps after the previous one. A track not seen for `forget_after` frames is forgotten.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

METHODS = ("kalman", "one_euro", "none")
N_KEYPOINTS = 17


@dataclass
class KalmanParams:
    """Constant-velocity Kalman filter per keypoint (x and y independent, same noise).

    accel: process noise, the standard deviation of the (piecewise constant, white) acceleration in person
    sizes / s^2. measurement: measurement noise standard deviation at score 1, in person sizes; it grows as
    score ** -score_exponent (scores clipped to [min_score, 1]). min_score: keypoints scoring below are
    predicted only. init_velocity: standard deviation of the unknown velocity of a new keypoint, person sizes / s.
    max_coast: seconds a keypoint may go unmeasured before its velocity is set to zero (it then holds still
    instead of drifting away). fps: frame rate assumed when a frame has no timestamp. forget_after: frames a
    track may be missing before its state is dropped.

    The defaults are tuned on the shipped models' keypoints on the shared videos (scripts/smoothing_report.py):
    higher accel (or lower measurement) lags less and smooths less.
    """

    accel: float = 2.0
    measurement: float = 0.03
    score_exponent: float = 1.0
    min_score: float = 0.2
    init_velocity: float = 1.0
    max_coast: float = 0.3
    fps: float = 30.0
    forget_after: int = 30


@dataclass
class OneEuroParams:
    """One Euro filter (Casiez, Roussel and Vogel, CHI 2012) per keypoint coordinate, speeds normalised by the
    person's size as MediaPipe does.

    min_cutoff: cutoff frequency (Hz) at rest; lower is smoother and lags more. beta: how fast the cutoff
    rises with speed (Hz per person size / s); higher lags less when moving. d_cutoff: cutoff (Hz) of the
    speed estimate. min_score: keypoints scoring below are held at their last estimate. fps, forget_after: as
    in KalmanParams.
    """

    min_cutoff: float = 0.5
    beta: float = 3.0
    d_cutoff: float = 1.0
    min_score: float = 0.2
    fps: float = 30.0
    forget_after: int = 30


def person_size(boxes):
    """sqrt(w * h) of [x, y, w, h] boxes (..., 4), at least 1 pixel: the length unit of the filters."""
    b = np.asarray(boxes, dtype=np.float64)
    return np.sqrt(np.maximum(b[..., 2] * b[..., 3], 1.0))


def white_noise_accel_q(dt, var):
    """Process noise (p00, p01, p11) of a constant-velocity model whose acceleration is constant over a step of
    `dt` with variance `var` (filterpy's Q_discrete_white_noise(2, dt, var)); broadcasts."""
    dt = np.asarray(dt, dtype=np.float64)
    return 0.25 * dt ** 4 * var, 0.5 * dt ** 3 * var, dt ** 2 * var


def kalman_predict(pos, vel, cov, dt, q):
    """Constant-velocity prediction in place. pos, vel (..., 2); cov (..., 3) = p00, p01, p11 shared by x and y;
    dt (...) seconds; q = (q00, q01, q11) process noise (...)."""
    p00, p01, p11 = cov[..., 0], cov[..., 1], cov[..., 2]
    pos += vel * dt[..., None]
    n00 = p00 + dt * (2.0 * p01 + dt * p11) + q[0]
    n01 = p01 + dt * p11 + q[1]
    n11 = p11 + q[2]
    cov[..., 0], cov[..., 1], cov[..., 2] = n00, n01, n11


def kalman_update(pos, vel, cov, z, r):
    """Position measurement z (..., 2) with variance r (...): update in place (Joseph form, as filterpy)."""
    p00, p01, p11 = cov[..., 0], cov[..., 1], cov[..., 2]
    s = p00 + r
    k0, k1 = p00 / s, p01 / s
    innov = z - pos
    pos += k0[..., None] * innov
    vel += k1[..., None] * innov
    a = 1.0 - k0
    n00 = a * a * p00 + k0 * k0 * r
    n01 = a * (p01 - k1 * p00) + k0 * k1 * r
    n11 = p11 - 2.0 * k1 * p01 + k1 * k1 * (p00 + r)
    cov[..., 0], cov[..., 1], cov[..., 2] = n00, n01, n11


class _Bank:
    """Per-track filter state in arrays with one row per track (rows reused after a track is forgotten)."""

    def __init__(self, params):
        self.params = params
        self.rows = {}
        self._free = []
        self._alloc(0)

    def _alloc(self, n):
        self.ready = np.zeros((n, N_KEYPOINTS), bool)

    def _grow(self, n):
        old = {k: v for k, v in vars(self).items() if isinstance(v, np.ndarray)}
        self._alloc(n)
        for k, v in old.items():
            getattr(self, k)[:len(v)] = v

    def row(self, track_id):
        r = self.rows.get(track_id)
        if r is None:
            if not self._free:
                n = len(self.ready)
                self._grow(max(4, 2 * n))
                self._free = list(range(len(self.ready) - 1, n - 1, -1))
            r = self._free.pop()
            self.rows[track_id] = r
            self.ready[r] = False
        return r

    def drop(self, track_id):
        r = self.rows.pop(track_id, None)
        if r is not None:
            self.ready[r] = False
            self._free.append(r)

    def step(self, rows, kp, size, dt):
        """rows (M,) of this frame's tracks; kp (M, 17, 3) raw; size (M,) person sizes; dt (M,) seconds since each
        track's previous frame -> smoothed x, y (M, 17, 2)."""
        raise NotImplementedError


class KalmanBank(_Bank):
    """Constant-velocity Kalman filters of every keypoint of every track (see KalmanParams)."""

    def _alloc(self, n):
        super()._alloc(n)
        self.pos = np.zeros((n, N_KEYPOINTS, 2))
        self.vel = np.zeros((n, N_KEYPOINTS, 2))
        self.cov = np.zeros((n, N_KEYPOINTS, 3))
        self.unseen = np.zeros((n, N_KEYPOINTS))  # seconds since the last measurement

    def step(self, rows, kp, size, dt):
        p = self.params
        z = kp[..., :2].astype(np.float64)
        score = kp[..., 2].astype(np.float64)
        measured = score >= p.min_score
        pos, vel, cov, ready = self.pos[rows], self.vel[rows], self.cov[rows], self.ready[rows]
        unseen = self.unseen[rows] + dt[:, None]
        size2 = (size * size)[:, None]
        dtk = np.broadcast_to(dt[:, None], ready.shape)
        kalman_predict(pos, vel, cov, dtk, white_noise_accel_q(dtk, p.accel * p.accel * size2))
        stale = ready & (unseen > p.max_coast)
        vel[stale] = 0.0
        sigma = p.measurement * np.clip(score, max(p.min_score, 1e-3), 1.0) ** -p.score_exponent
        r = sigma * sigma * size2
        upd = measured & ready
        if upd.any():
            pu, vu, cu = pos[upd], vel[upd], cov[upd]
            kalman_update(pu, vu, cu, z[upd], r[upd])
            pos[upd], vel[upd], cov[upd] = pu, vu, cu
        new = measured & ~ready
        if new.any():
            pos[new] = z[new]
            vel[new] = 0.0
            cov[new] = np.stack([r[new], np.zeros(int(new.sum())),
                                 np.broadcast_to(p.init_velocity ** 2 * size2, r.shape)[new]], axis=-1)
        ready = ready | measured
        unseen[measured] = 0.0
        self.pos[rows], self.vel[rows], self.cov[rows], self.ready[rows], self.unseen[rows] = (
            pos, vel, cov, ready, unseen)
        return np.where(ready[..., None], pos, z)


def one_euro_alpha(cutoff, dt):
    """Smoothing factor of a first-order low-pass at `cutoff` Hz for a step of `dt` s."""
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroBank(_Bank):
    """One Euro filters of every keypoint coordinate of every track (see OneEuroParams)."""

    def _alloc(self, n):
        super()._alloc(n)
        self.pos = np.zeros((n, N_KEYPOINTS, 2))
        self.speed = np.zeros((n, N_KEYPOINTS, 2))  # filtered, person sizes / s
        self.unseen = np.zeros((n, N_KEYPOINTS))  # seconds since the last update

    def step(self, rows, kp, size, dt):
        p = self.params
        z = kp[..., :2].astype(np.float64)
        measured = kp[..., 2] >= p.min_score
        pos, speed, ready = self.pos[rows], self.speed[rows], self.ready[rows]
        unseen = self.unseen[rows] + dt[:, None]
        upd = measured & ready
        if upd.any():
            te = unseen[upd][:, None]
            raw_speed = (z[upd] - pos[upd]) / (te * np.broadcast_to(size[:, None], upd.shape)[upd][:, None])
            s = speed[upd]
            s += one_euro_alpha(p.d_cutoff, te) * (raw_speed - s)
            a = one_euro_alpha(p.min_cutoff + p.beta * np.abs(s), te)
            pos[upd] += a * (z[upd] - pos[upd])
            speed[upd] = s
        new = measured & ~ready
        pos[new] = z[new]
        speed[new] = 0.0
        ready = ready | measured
        unseen[measured] = 0.0
        self.pos[rows], self.speed[rows], self.ready[rows], self.unseen[rows] = pos, speed, ready, unseen
        return np.where(ready[..., None], pos, z)


class Smoother:
    """Smooths the keypoints of tracked people frame by frame (see the module docstring).

    bank: a KalmanBank / OneEuroBank, or None (no smoothing: smoothed = raw). `__call__(people, timestamp)`
    sets person["smoothed"] and returns `people`; `forget(ids)` drops tracks; `reset()` drops all.
    """

    def __init__(self, bank=None, fps=30.0, forget_after=30):
        self.bank = bank
        self.fps = float(fps)
        self.forget_after = int(forget_after)
        self.reset()

    def reset(self):
        """Forget every track (e.g. a new video)."""
        if self.bank is not None:
            for tid in list(self.bank.rows):
                self.bank.drop(tid)
        self._clock = None
        self._frame = 0
        self._last = {}  # track id -> (frame number, time) when last seen

    @property
    def track_ids(self):
        """Ids of the tracks with state."""
        return sorted(self._last)

    def forget(self, ids):
        """Drop the state of these track ids."""
        for tid in ids:
            self._last.pop(tid, None)
            if self.bank is not None:
                self.bank.drop(tid)

    def _tick(self, timestamp):
        step = 1.0 / self.fps if self.fps > 0 else 1.0 / 30.0
        if timestamp is None:
            self._clock = 0.0 if self._clock is None else self._clock + step
        else:
            self._clock = float(timestamp)
        self._frame += 1
        return step

    def __call__(self, people, timestamp=None):
        step = self._tick(timestamp)
        tracked, seen = [], set()
        for person in people:
            tid = person.get("track_id")
            if self.bank is None or tid is None or tid in seen:
                person["smoothed"] = np.array(person["keypoints"], dtype=np.float32).reshape(N_KEYPOINTS, 3)
            else:
                seen.add(tid)
                tracked.append(person)
        if tracked:
            kp = np.stack([np.asarray(p["keypoints"], dtype=np.float64).reshape(N_KEYPOINTS, 3) for p in tracked])
            size = person_size([p["box"] for p in tracked])
            ids = [p["track_id"] for p in tracked]
            dt = np.array([self._clock - self._last[t][1] if t in self._last else step for t in ids])
            dt = np.where(dt > 0, dt, step)  # a repeated or backwards time: one frame
            rows = np.array([self.bank.row(t) for t in ids])
            xy = self.bank.step(rows, kp, size, dt)
            out = np.concatenate([xy, kp[..., 2:]], axis=-1).astype(np.float32)
            for person, sm in zip(tracked, out):
                person["smoothed"] = sm
            for t in ids:
                self._last[t] = (self._frame, self._clock)
        gone = [t for t, (f, _) in self._last.items() if self._frame - f >= self.forget_after]
        if gone:
            self.forget(gone)
        return people


def _params(cls, params):
    if params is None:
        return cls()
    if isinstance(params, cls):
        return params
    if isinstance(params, dict):
        return cls(**params)
    return cls(**asdict(params))


def make_smoother(method="kalman", params=None):
    """A Smoother by name: "kalman" (params: KalmanParams or dict), "one_euro" (OneEuroParams or dict) or
    "none" (smoothed = raw copy)."""
    if method == "kalman":
        p = _params(KalmanParams, params)
        return Smoother(KalmanBank(p), p.fps, p.forget_after)
    if method == "one_euro":
        p = _params(OneEuroParams, params)
        return Smoother(OneEuroBank(p), p.fps, p.forget_after)
    if method in ("none", None):
        return Smoother(None)
    raise ValueError("unknown smoothing method %r (choose from %s)" % (method, ", ".join(METHODS)))
