"""The threaded pipeline: capture -> pose -> track + smooth -> draw + sinks. Only wiring: the stages are
the modules named below, each in its own thread, joined by bounded queues.

    capture   (capture.Capture thread)    newest frame (live) or every frame (files)
    pose      (thread "pose")             persons.propose -> preprocess -> infer -> decode -> persons.update,
                                          all persons of a frame in one inference call
    post      (thread "post")             track.Tracker -> smooth smoother -> frame record
    output    (the caller's thread)       draw.draw_people -> every sink's write(record, image)

Persons, preprocess, inference and decoding share one thread on purpose: the person source places frame t+1's
crops from frame t's decoded keypoints (tracking by pose), so frame t+1 cannot be cropped before frame t is
decoded; separate threads would only add hand-offs. What can overlap (decoding the video, tracking, smoothing,
drawing, encoding, writing) runs in the other stages.

A sink is any object with `write(record, image)` and `close()` (optional `abort()`; `wants_image` False
when it needs no annotated frame; `write` returning False asks the pipeline to stop, as a window does on
q / Esc). Every frame taken in is either finished (its record reaches the sinks) or counted in `dropped`:
`stop()` stops the capture and lets the frames already taken in run to the end; `run()` then closes the
sinks and returns a Summary. An error in a stage stops the pipeline and is re-raised by `run()`; so is a
KeyboardInterrupt of the caller's thread, after the stage threads are stopped (sinks are then aborted,
not closed: annotate's all-or-nothing outputs).
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque, namedtuple

import numpy as np

from edge_pose.capture import END, Capture

log = logging.getLogger(__name__)

STAGES = ("capture_wait", "persons", "preprocess", "infer", "decode", "track", "smooth", "latency")
Summary = namedtuple("Summary", "captured finished dropped seconds fps reconnects")


class _Stop(Exception):
    pass


class TimedPose:
    """A pose function (e.g. PoseEstimator) that adds up its stage timings and crops over one frame."""

    def __init__(self, estimator):
        self.estimator = estimator
        self.reset()

    def reset(self):
        self.timings = {"preprocess": 0.0, "infer": 0.0, "decode": 0.0}
        self.calls = 0
        self.crops = 0

    def __call__(self, frame, boxes):
        people = self.estimator(frame, boxes)
        for key, value in getattr(self.estimator, "timings", {}).items():
            self.timings[key] = self.timings.get(key, 0.0) + value
        self.calls += 1
        self.crops += len(boxes)
        return people


def person_out(person, ndigits=2):
    """A pipeline person -> its JSON-ready part of the frame record."""
    def pts(a):
        if a is None:
            return None
        a = np.asarray(a, dtype=np.float64).reshape(-1, 3)
        return np.concatenate([np.round(a[:, :2], ndigits), np.round(a[:, 2:], 4)], axis=1).tolist()

    tid = person.get("track_id")
    return {"track_id": None if tid is None else int(tid),
            "box": [round(float(v), ndigits) for v in person["box"]],
            "score": round(float(person["score"]), 4),
            "keypoints": pts(person["keypoints"]),
            "smoothed": pts(person.get("smoothed"))}


def display_people(people):
    """Persons as draw.draw_people wants them: smoothed keypoints where there are, the track id as "id"."""
    out = []
    for p in people:
        kp = p.get("smoothed")
        out.append({"box": p["box"], "keypoints": p["keypoints"] if kp is None else kp, "id": p.get("track_id")})
    return out


class Pipeline:
    """Wire a source, a pose estimator, a person source, an optional tracker and smoother and sinks.

    source: an opened sources.Source; estimator: pose function (frame, boxes) -> person dicts (with
    `timings`); persons: a persons.PersonSource; tracker: track.Tracker-like (update(people, index) ->
    people, sets "track_id") or None (the person source's ids are used); smoother: callable (people,
    timestamp) -> people setting "smoothed", or None. realtime: pace a file at its fps with the latest-frame
    policy; policy: force "latest" / "queue". draw_threshold: least keypoint score drawn; overlay: FPS and
    latency on the drawn frame.
    """

    def __init__(self, source, estimator, persons, tracker=None, smoother=None, sinks=(), realtime=False,
                 policy=None, queue_size=4, draw_threshold=0.3, overlay=True, max_frames=None):
        self.source = source
        self.pose = TimedPose(estimator)
        self.persons = persons
        self.tracker = tracker
        self.smoother = smoother
        self.sinks = list(sinks)
        self.draw_threshold = float(draw_threshold)
        self.overlay = bool(overlay)
        self.capture = Capture(source, policy=policy, realtime=realtime, queue_size=queue_size, max_frames=max_frames)
        self.queue_size = max(1, int(queue_size))
        self._q_post = queue.Queue(self.queue_size)
        self._q_out = queue.Queue(self.queue_size)
        self._stop = threading.Event()
        self._errors = []
        self._threads = []
        self._lock = threading.Lock()
        self.finished = 0
        self.started = None
        self._done_at = deque(maxlen=120)
        self._timings = {k: deque(maxlen=300) for k in STAGES}
        self.last_record = None
        self.on_record = []  # callables(record) after the sinks got a frame (heartbeat, counters)

    # ------------------------------------------------------------------ control

    def stop(self):
        """Stop taking frames; those already taken in still run to the end. Safe from any thread or signal
        handler."""
        self._stop.set()
        self.capture.stop(join=0)

    @property
    def stopping(self):
        return self._stop.is_set()

    def _fail(self, exc):
        self._errors.append(exc)
        self.stop()

    def _put(self, q, item):
        """Put unless the pipeline failed (a stage died): then raise _Stop."""
        while True:
            if self._errors:
                raise _Stop()
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _get(self, q):
        while True:
            if self._errors:
                raise _Stop()
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                continue

    # ------------------------------------------------------------------ stages

    def _pose_stage(self):
        try:
            while True:
                item = self.capture.get(timeout=0.1)
                if item is None:
                    if self._errors:
                        return
                    continue
                if item is END:
                    self._put(self._q_post, END)
                    return
                behind = self.capture.newest - item.index  # newer frames captured before this one was taken
                t0 = time.perf_counter()
                self.pose.reset()
                people = self.persons(item.image, self.pose)
                total = 1e3 * (time.perf_counter() - t0)
                timings = dict(self.pose.timings)
                timings["capture_wait"] = 1e3 * (t0 - item.mono)
                timings["persons"] = max(0.0, total - sum(self.pose.timings.values()))
                timings["crops"] = self.pose.crops
                timings["behind"] = behind
                self._put(self._q_post, (item, people, timings))
        except _Stop:
            return
        except BaseException as exc:
            self._fail(exc)

    def _post_stage(self):
        try:
            while True:
                got = self._get(self._q_post)
                if got is END:
                    self._put(self._q_out, END)
                    return
                item, people, timings = got
                t0 = time.perf_counter()
                if self.tracker is not None:
                    people = self.tracker.update(people, item.index)
                    removed = getattr(self.tracker, "removed", None)
                    if removed and hasattr(self.smoother, "forget"):
                        self.smoother.forget(removed)
                else:
                    for p in people:
                        p["track_id"] = p.get("id")
                t1 = time.perf_counter()
                if self.smoother is not None:
                    stamp = item.time if item.time is not None else item.mono
                    people = self.smoother(people, stamp)
                t2 = time.perf_counter()
                timings["track"] = 1e3 * (t1 - t0)
                timings["smooth"] = 1e3 * (t2 - t1)
                timings["latency"] = 1e3 * (t2 - item.mono)
                self._put(self._q_out, (item, people, timings))
        except _Stop:
            return
        except BaseException as exc:
            self._fail(exc)

    def _record(self, item, people, timings):
        with self._lock:
            self.finished += 1
            now = time.perf_counter()
            self._done_at.append(now)
            for key in STAGES:
                if key in timings:
                    self._timings[key].append(timings[key])
        rec = {"frame": int(item.index), "time": None if item.time is None else round(float(item.time), 6),
               "captured": round(item.wall, 6),
               "persons": [person_out(p) for p in people],
               "timings": {k: round(float(v), 3) for k, v in timings.items() if k not in ("crops", "behind")},
               "stats": {"fps": round(self.fps(), 2), "dropped": self.capture.dropped,
                         "behind": int(timings.get("behind", 0)), "crops": int(timings.get("crops", 0)),
                         "queues": self.queue_depths(), "reconnects": self.capture.reconnects}}
        if item.name is not None:
            rec["file"] = str(item.name)
        return rec

    def _output(self, item, people, timings):
        from edge_pose.draw import draw_label, draw_people

        record = self._record(item, people, timings)
        image = None
        if any(getattr(s, "wants_image", True) for s in self.sinks):
            image = draw_people(item.image, display_people(people), self.draw_threshold,
                                fps=record["stats"]["fps"] if self.overlay else None)
            if self.overlay:
                draw_label(image, "latency %.0f ms" % timings.get("latency", 0.0), (0, image.shape[0]))
        for sink in self.sinks:
            if sink.write(record, image if getattr(sink, "wants_image", True) else None) is False:
                self.stop()
        self.last_record = record
        for fn in self.on_record:
            fn(record)

    # ------------------------------------------------------------------ run

    def start(self):
        self.started = time.perf_counter()
        self.capture.start()
        for name, target in (("pose", self._pose_stage), ("post", self._post_stage)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def run(self):
        """Run to the end of the input or `stop()`; the output stage runs in this thread. Returns a Summary;
        re-raises a stage's error (sinks aborted) or a KeyboardInterrupt (sinks aborted)."""
        if self.started is None:
            self.start()
        ok = False
        try:
            while True:
                try:
                    got = self._get(self._q_out)
                except _Stop:
                    break
                if got is END:
                    break
                self._output(*got)
            ok = not self._errors
        except BaseException as exc:
            if not isinstance(exc, KeyboardInterrupt):
                self._errors.append(exc)
            raise
        finally:
            self._shutdown(ok)
        return self.summary()

    def _shutdown(self, ok):
        self.stop()
        if not ok:  # unblock stages waiting on full queues: what they hold is dropped, not finished
            self._errors.append(_Stop())
        for thread in self._threads:
            thread.join(2.0)
        self.capture.discard()
        first_error = next((e for e in self._errors if not isinstance(e, _Stop)), None)
        for sink in self.sinks:
            try:
                if ok:
                    sink.close()
                elif hasattr(sink, "abort"):
                    sink.abort()
                else:
                    sink.close()
            except Exception as exc:  # one failing sink must not keep the others from closing
                log.error("closing %r failed: %s", sink, exc)
                if first_error is None and ok:
                    first_error = exc
        if first_error is not None:
            raise first_error

    # ------------------------------------------------------------------ figures

    def fps(self):
        """Frames finished per second over the last ~2 s (the whole run while it is shorter)."""
        times = list(self._done_at)
        if len(times) < 2:
            return 0.0
        end = times[-1]
        recent = [t for t in times if end - t <= 2.0]
        if len(recent) < 2:
            recent = times[-2:]
        return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-9)

    def queue_depths(self):
        return {"capture": self.capture.depth(), "post": self._q_post.qsize(), "output": self._q_out.qsize()}

    def stats(self):
        """Counters and per-stage latency percentiles (ms) for metrics and the live view."""
        with self._lock:
            lat = {}
            for key, values in self._timings.items():
                if values:
                    arr = np.asarray(values)
                    lat[key] = {"p50": float(np.percentile(arr, 50)), "p95": float(np.percentile(arr, 95)),
                                "last": float(arr[-1])}
            finished = self.finished
        last = self.last_record
        return {"frames": finished, "captured": self.capture.captured, "fps": self.fps(),
                "dropped": self.capture.dropped, "reconnects": self.capture.reconnects,
                "queues": self.queue_depths(), "latency_ms": lat, "source": getattr(self.source, "uri", None),
                "model": getattr(self.pose.estimator, "name", None), "running": not self._stop.is_set(),
                "persons": len(last["persons"]) if last else 0}

    def summary(self):
        seconds = time.perf_counter() - self.started if self.started else 0.0
        return Summary(self.capture.captured, self.finished, self.capture.dropped, seconds,
                       self.finished / seconds if seconds > 0 else 0.0, self.capture.reconnects)
