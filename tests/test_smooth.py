from __future__ import annotations

import math

import numpy as np
import pytest

from edge_pose.smooth import KalmanParams, OneEuroParams, make_smoother
from edge_pose.smooth_metrics import apply_smoother, jitter, lag, rmse, synthetic_tracks

SPORTS2D = "videos/sports2d_two_people.mp4"


def random_tracks(n_frames=300, n_tracks=2, seed=1):
    """Irregularly timed frames of random-walk keypoints with varying boxes and scores; each track misses some
    frames (dt spans them) and ~15 % of its keypoints score below 0.2 (not measured)."""
    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.uniform(0.02, 0.06, n_frames))
    frames = []
    for f in range(n_frames):
        people = []
        for tid in range(1, n_tracks + 1):
            if f > 0 and rng.random() < 0.1:
                continue
            people.append(tid)
        frames.append(people)
    pos = {tid: rng.uniform(100, 500, (17, 2)) for tid in range(1, n_tracks + 1)}
    vel = {tid: rng.normal(0, 50, (17, 2)) for tid in range(1, n_tracks + 1)}
    out = []
    for f, ids in enumerate(frames):
        people = []
        for tid in ids:
            vel[tid] += rng.normal(0, 20, (17, 2))
            pos[tid] += vel[tid] * 0.04
            kp = np.zeros((17, 3), np.float32)
            kp[:, :2] = pos[tid] + rng.normal(0, 3, (17, 2))
            kp[:, 2] = rng.uniform(0.0, 1.0, 17)
            kp[rng.random(17) < 0.15, 2] = rng.uniform(0.0, 0.19)
            box = [0.0, 0.0, rng.uniform(80, 120), rng.uniform(200, 260)]
            people.append({"track_id": tid, "box": box, "keypoints": kp})
        out.append((float(times[f]), people))
    return out


def test_kalman_matches_filterpy():
    from filterpy.common import Q_discrete_white_noise
    from filterpy.kalman import KalmanFilter
    from scipy.linalg import block_diag

    p = KalmanParams(accel=3.0, measurement=0.02, score_exponent=1.5, min_score=0.2, init_velocity=2.0,
                     max_coast=1e9)
    smoother = make_smoother("kalman", p)
    ref = {}  # (track, keypoint) -> filterpy filter; state x, vx, y, vy
    last = {}
    worst, worst_cov, updates, skipped = 0.0, 0.0, 0, 0
    for t, people in random_tracks():
        smoother(people, t)
        for person in people:
            tid, kp = person["track_id"], person["keypoints"].astype(np.float64)
            size2 = person["box"][2] * person["box"][3]
            dt = t - last.get(tid, t)
            last[tid] = t
            for k in range(17):
                score = kp[k, 2]
                r = (p.measurement * min(max(score, p.min_score), 1.0) ** -p.score_exponent) ** 2 * size2
                kf = ref.get((tid, k))
                if kf is not None:
                    F1 = np.array([[1.0, dt], [0.0, 1.0]])
                    q = Q_discrete_white_noise(2, dt=dt, var=p.accel ** 2 * size2)
                    kf.predict(F=block_diag(F1, F1), Q=block_diag(q, q))
                    if score >= p.min_score:
                        kf.update(kp[k, :2], R=r * np.eye(2))
                        updates += 1
                    else:
                        skipped += 1
                elif score >= p.min_score:
                    kf = ref[(tid, k)] = KalmanFilter(dim_x=4, dim_z=2)
                    kf.H = np.array([[1.0, 0, 0, 0], [0, 0, 1.0, 0]])
                    kf.x = np.array([kp[k, 0], 0.0, kp[k, 1], 0.0])
                    kf.P = np.diag([r, p.init_velocity ** 2 * size2, r, p.init_velocity ** 2 * size2])
                row = smoother.bank.rows[tid]
                if kf is None:  # never measured yet: raw
                    np.testing.assert_array_equal(person["smoothed"][k], person["keypoints"][k])
                    continue
                state = np.concatenate([smoother.bank.pos[row, k], smoother.bank.vel[row, k]])
                worst = max(worst, float(np.abs(state - kf.x[[0, 2, 1, 3]]).max()))
                cov = smoother.bank.cov[row, k]
                worst_cov = max(worst_cov, float(np.abs(cov - kf.P[[0, 0, 1], [0, 1, 1]]).max() / kf.P[0, 0]))
                np.testing.assert_allclose(kf.P[2:, 2:], kf.P[:2, :2], rtol=1e-12)  # x and y share one 2x2
                assert not kf.P[:2, 2:].any()
                np.testing.assert_allclose(person["smoothed"][k, :2], kf.x[[0, 2]], rtol=1e-6)  # float32 output
            np.testing.assert_array_equal(person["smoothed"][:, 2], person["keypoints"][:, 2])
    assert updates > 5000 and skipped > 1000
    assert worst < 1e-9  # px and px/s, every keypoint of every frame
    assert worst_cov < 1e-9  # relative to the position variance


class ScalarOneEuro:
    """Casiez et al.'s One Euro filter for one value, speed in units of `size` per second, holding on low scores."""

    def __init__(self, min_cutoff, beta, d_cutoff):
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.x = None
        self.dx = 0.0
        self.t = None

    @staticmethod
    def alpha(cutoff, dt):
        tau = 1.0 / (2.0 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, value, t, size):
        if self.x is None:
            self.x, self.t = value, t
            return value
        dt = t - self.t
        self.t = t
        dx = (value - self.x) / dt / size
        self.dx += self.alpha(self.d_cutoff, dt) * (dx - self.dx)
        cutoff = self.min_cutoff + self.beta * abs(self.dx)
        self.x += self.alpha(cutoff, dt) * (value - self.x)
        return self.x


def test_one_euro_matches_scalar_reference():
    p = OneEuroParams(min_cutoff=0.7, beta=2.0, d_cutoff=1.3, min_score=0.2)
    smoother = make_smoother("one_euro", p)
    ref = {}
    worst, n = 0.0, 0
    for t, people in random_tracks(seed=2):
        smoother(people, t)
        for person in people:
            tid, kp = person["track_id"], person["keypoints"].astype(np.float64)
            size = math.sqrt(person["box"][2] * person["box"][3])
            for k in range(17):
                for c in range(2):
                    f = ref.setdefault((tid, k, c), ScalarOneEuro(p.min_cutoff, p.beta, p.d_cutoff))
                    if kp[k, 2] >= p.min_score:
                        f(kp[k, c], t, size)
                        n += 1
                    if f.x is None:  # never measured yet: raw
                        assert person["smoothed"][k, c] == person["keypoints"][k, c]
                        continue
                    worst = max(worst, abs(f.x - smoother.bank.pos[smoother.bank.rows[tid], k, c]))
                    assert person["smoothed"][k, c] == pytest.approx(f.x, rel=1e-6)  # float32 output
    assert n > 10000
    assert worst < 1e-9


def test_smoothing_reduces_jitter_and_error_on_noisy_synthetic_tracks():
    # Gaussian noise of 5 % of the person's size / score (10-20 px for 200 px) on fast limb swings; the Kalman
    # filter told that noise level and an acceleration like the motion's (the defaults smooth more: they
    # are tuned against the real models' outliers, and lag on these fast swings)
    truth, measured = synthetic_tracks(noise=0.05, outliers=0.0, n_people=3, seed=3)
    raw_jitter, raw_error = jitter(measured), rmse(truth, measured, skip=10)
    for method, params in (("kalman", {"accel": 8.0, "measurement": 0.05}), ("one_euro", None)):
        smoothed = apply_smoother(measured, make_smoother(method, params))
        assert jitter(smoothed) < 0.4 * raw_jitter, method
        assert rmse(truth, smoothed, skip=10) < 0.8 * raw_error, method
        # the dropped (low-score, 0.3-size outlier) keypoints: the filters ignore them
        assert rmse(truth, smoothed, skip=10, low=True) < 0.5 * rmse(truth, measured, skip=10, low=True), method
    assert jitter(apply_smoother(measured, make_smoother("kalman"))) < 0.3 * raw_jitter


def constant_velocity_track(n=150, fps=30.0, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / fps
    base = rng.uniform(200, 400, (17, 2))
    v = np.array([120.0, -40.0])  # px/s, a person of size ~200 px walking
    xy = base[None] + t[:, None, None] * v
    kp = np.concatenate([xy + rng.normal(0, noise, xy.shape), np.full((n, 17, 1), 0.9)], -1).astype(np.float32)
    box = np.tile([0.0, 0.0, 140.0, 280.0], (n, 1))
    truth = {1: {"frames": np.arange(n), "time": t, "box": box,
                 "keypoints": np.concatenate([xy, np.ones((n, 17, 1))], -1)}}
    return truth, {1: dict(truth[1], keypoints=kp)}


def test_kalman_tracks_constant_velocity_without_lag():
    truth, measured = constant_velocity_track()
    smoothed = apply_smoother(measured, make_smoother("kalman"))
    err = smoothed[1]["keypoints"][60:, :, :2] - truth[1]["keypoints"][60:, :, :2]
    assert np.abs(err).max() < 0.05  # px, converged: no steady-state lag on a ramp
    truth, measured = constant_velocity_track(noise=2.0, seed=1)
    smoothed = apply_smoother(measured, make_smoother("kalman"))
    err = smoothed[1]["keypoints"][60:, :, :2] - truth[1]["keypoints"][60:, :, :2]
    assert np.abs(err.mean(axis=(0, 1))).max() < 0.3  # px of bias along the motion
    assert abs(lag(truth, smoothed)) < 0.15


@pytest.mark.parametrize("method", ["kalman", "one_euro"])
def test_low_score_outlier_does_not_move_the_estimate(method):
    truth, measured = constant_velocity_track(n=40)
    kp = measured[1]["keypoints"]
    clean = apply_smoother(measured, make_smoother(method))[1]["keypoints"]
    kp[30, 9, :2] += 150.0  # left wrist far off
    kp[30, 9, 2] = 0.05
    low = apply_smoother(measured, make_smoother(method))[1]["keypoints"]
    # Kalman: predicted; One Euro: held (at most one frame of motion, 4 px, behind)
    tol = 1.0 if method == "kalman" else 5.0
    np.testing.assert_allclose(low[30, 9, :2], clean[30, 9, :2], atol=tol)
    np.testing.assert_allclose(low[31:, 9, :2], clean[31:, 9, :2], atol=tol)
    kp[30, 9, 2] = 0.9  # the same outlier, confident: it is measured
    high = apply_smoother(measured, make_smoother(method))[1]["keypoints"]
    assert np.abs(high[30, 9, :2] - clean[30, 9, :2]).max() > 10.0


def test_kalman_stops_extrapolating_after_max_coast():
    truth, measured = constant_velocity_track(n=90)
    measured[1]["keypoints"][60:, :, 2] = 0.1  # nobody measured for the last second
    out = apply_smoother(measured, make_smoother("kalman", {"max_coast": 0.2}))[1]["keypoints"]
    np.testing.assert_allclose(out[60:66, :, :2], truth[1]["keypoints"][60:66, :, :2], atol=0.5)  # predicted on
    np.testing.assert_array_equal(out[67:], out[66:-1])  # then held still
    np.testing.assert_array_equal(out[60:, :, 2], measured[1]["keypoints"][60:, :, 2])


def person(tid, x=100.0, score=0.9):
    kp = np.zeros((17, 3), np.float32)
    kp[:, 0] = x + np.arange(17)
    kp[:, 1] = 50.0
    kp[:, 2] = score
    return {"track_id": tid, "box": [0.0, 0.0, 100.0, 200.0], "keypoints": kp}


@pytest.mark.parametrize("method", ["kalman", "one_euro"])
def test_tracks_are_created_forgotten_and_reset(method):
    s = make_smoother(method, {"forget_after": 3})
    s([person(1), person(2)], 0.0)
    for i in range(1, 4):
        out = s([person(1, 100.0 + 5 * i)], i / 30)
    assert s.track_ids == [1]  # 2 not seen for 3 frames
    back = s([person(1, 120.0), person(2, 300.0)], 4 / 30)
    np.testing.assert_array_equal(back[1]["smoothed"], back[1]["keypoints"])  # fresh state: first frame = raw
    assert not np.allclose(out[0]["smoothed"], out[0]["keypoints"])  # track 1 is smoothed
    s.forget([2])
    assert s.track_ids == [1]
    s.reset()
    assert s.track_ids == []
    first = s([person(1, 500.0)], 0.0)
    np.testing.assert_array_equal(first[0]["smoothed"], first[0]["keypoints"])


@pytest.mark.parametrize("method", ["kalman", "one_euro", "none"])
def test_people_without_track_id_pass_through(method):
    s = make_smoother(method)
    for i in range(5):
        a, b, c = person(None, 100.0 + 7 * i), person(1, 100.0 + 7 * i), person(7, 10.0 * i)
        del c["track_id"]
        s([a, b, c], i / 30)
        for q in (a, c):
            np.testing.assert_array_equal(q["smoothed"], q["keypoints"])
            assert q["smoothed"] is not q["keypoints"]
    if method == "none":
        np.testing.assert_array_equal(b["smoothed"], b["keypoints"])
    assert s.track_ids == ([] if method == "none" else [1])


def test_missing_timestamps_step_one_frame():
    truth, measured = constant_velocity_track(n=20, noise=3.0)
    timed = apply_smoother(measured, make_smoother("kalman", {"fps": 30.0}))
    untimed = {1: dict(measured[1])}
    del untimed[1]["time"]
    frame_counted = apply_smoother(untimed, make_smoother("kalman", {"fps": 30.0}))
    np.testing.assert_allclose(frame_counted[1]["keypoints"], timed[1]["keypoints"], atol=1e-4)
    slow = apply_smoother(untimed, make_smoother("kalman", {"fps": 5.0}))
    assert not np.allclose(slow[1]["keypoints"], timed[1]["keypoints"], atol=1e-2)


def test_params_from_dicts_and_unknown_method():
    s = make_smoother("kalman", {"accel": 5.0, "measurement": 0.1})
    assert s.bank.params == KalmanParams(accel=5.0, measurement=0.1)
    assert make_smoother("one_euro", OneEuroParams(beta=0.5)).bank.params.beta == 0.5
    with pytest.raises(ValueError, match="kalman"):
        make_smoother("median")
    with pytest.raises(TypeError):
        make_smoother("kalman", {"min_cutoff": 1.0})


def test_metrics_on_known_signals():
    truth, measured = synthetic_tracks(n_people=2, seed=4, dropout=0.0)  # noise and confident outliers
    for d in (1, 2, 3):
        delayed = {tid: dict(t, keypoints=np.concatenate([t["keypoints"][:1].repeat(d, 0), t["keypoints"][:-d]]))
                   for tid, t in measured.items()}
        assert lag(measured, delayed) == pytest.approx(d, abs=0.15)
        assert lag(delayed, measured) == pytest.approx(-d, abs=0.15)
    line, _ = constant_velocity_track(n=30)
    assert jitter(line) < 1e-9
    shaken = {1: dict(line[1], keypoints=line[1]["keypoints"].copy())}
    shaken[1]["keypoints"][10, 0, 0] += 10.0  # one 10 px spike on one keypoint of a 210 px (sqrt area) person
    n = 28 * 17  # three-frame windows x keypoints
    assert jitter(shaken) == pytest.approx((10 + 20 + 10) / math.sqrt(140 * 280) / n, rel=1e-6)


def test_real_video_jitter_drops_with_lag_within_a_frame_for_walking(shared_data, check_model):
    from edge_pose.smooth_report import compare, filter_params
    from edge_pose.smooth_tracks import cached_record, tracks

    rec = cached_record(shared_data / SPORTS2D, check_model, max_frames=150, threads=1)
    tr = tracks(rec)
    long = {tid: t for tid, t in tr.items() if len(t["frames"]) >= 60}
    assert len(long) == 2  # the jumping man, then the walking woman
    pooled = compare(tr, filter_params(), rec["fps"])
    assert pooled["reduction"]["kalman"] > 0.6
    assert pooled["reduction"]["one_euro"] > 0.4
    assert pooled["lag_frames"]["kalman"] < 1.5
    # the walker crosses the frame: most horizontal box travel
    walker = max(long, key=lambda tid: abs(long[tid]["box"][-1, 0] - long[tid]["box"][0, 0]))
    walking = compare({walker: long[walker]}, filter_params(), rec["fps"])
    assert walking["reduction"]["kalman"] > 0.7
    assert abs(walking["lag_frames"]["kalman"]) <= 1.0
    for tid, t in long.items():
        assert compare({tid: t}, filter_params(), rec["fps"])["reduction"]["kalman"] > 0.5
