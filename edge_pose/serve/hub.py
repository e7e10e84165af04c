"""`LiveHub`: the latest frame record and annotated frame, handed from the pipeline to HTTP clients.

The pipeline's output thread calls `publish(record, image)` (or the sink-protocol `write`) once per frame:
that only stores two references and wakes waiting clients. JSON and JPEG encoding happen lazily, at most
once per published frame and only when a client asks, in the client's thread. Streaming clients block in
`wait(after_seq, timeout)` and always get the newest frame, so a slow client skips frames instead of
queueing them. `close()` wakes everyone; streams end, `latest()` keeps answering.
"""
from __future__ import annotations

import json
import logging
import math
import threading
import time

import numpy as np

log = logging.getLogger(__name__)


def _plain(obj):
    """json.dumps `default`: NumPy arrays and scalars as lists and Python numbers."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError("%s is not JSON serialisable" % type(obj).__name__)


def _finite(obj):
    """A copy of a JSON-ready structure with NaN / infinity replaced by None (browsers reject NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def to_json(record):
    """A frame record as compact JSON bytes (NumPy values converted, non-finite numbers as null)."""
    try:
        text = json.dumps(record, separators=(",", ":"), default=_plain, allow_nan=False)
    except ValueError:
        plain = json.loads(json.dumps(record, default=_plain))
        text = json.dumps(_finite(plain), separators=(",", ":"), allow_nan=False)
    return text.encode("utf-8")


class LiveHub:
    """The newest frame record and annotated image of a live pipeline, for any number of readers.

    jpeg_quality: cv2 JPEG quality of the MJPEG / snapshot frames. The hub keeps a reference to each
    published image: publish a frame the pipeline does not draw on again (a fresh capture or a copy).
    """

    def __init__(self, jpeg_quality=80):
        self.jpeg_quality = int(jpeg_quality)
        self._cond = threading.Condition()
        self._jpeg_lock = threading.Lock()  # one encoder at a time: each frame is encoded once
        self._json_lock = threading.Lock()
        self._seq = 0
        self._record = None
        self._image = None
        self._published = None  # time.monotonic() of the last publish
        self._jpeg = (0, None)  # (seq, bytes) cache
        self._json = (0, None)
        self._stats_fn = None
        self._closed = False
        self.clients = {"mjpeg": 0, "sse": 0}

    # ------------------------------------------------------------------------------------ pipeline side
    def publish(self, record, image_bgr=None):
        """Store the newest frame record (a JSON-ready dict) and its annotated BGR image (or None)."""
        with self._cond:
            self._seq += 1
            self._record = record
            self._image = image_bgr
            self._published = time.monotonic()
            self._cond.notify_all()

    def write(self, record, image=None):
        """Sink protocol: the same as publish."""
        self.publish(record, image)

    def set_stats_fn(self, fn):
        """A callable returning the pipeline's stats() dict (read on each /metrics and /healthz)."""
        self._stats_fn = fn

    def close(self):
        """End the streams: wakes every waiting client. The last frame stays readable."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # ------------------------------------------------------------------------------------- client side
    @property
    def closed(self):
        return self._closed

    @property
    def seq(self):
        """How many frames were published (0: none yet)."""
        return self._seq

    def latest(self, jpeg=True):
        """(seq, record, JPEG bytes or None) of the newest frame; (0, None, None) before the first.
        jpeg=False: no encoding, None in its place."""
        if not jpeg:
            with self._cond:
                return self._seq, self._record, None
        seq, jpeg = self.latest_jpeg()
        with self._cond:
            if self._seq != seq:  # a newer frame came while encoding: its record, no image yet
                return self._seq, self._record, None
            return seq, self._record, jpeg

    def wait(self, after_seq, timeout=None):
        """Block until a frame newer than `after_seq` is published, the hub closes or `timeout` s pass;
        then (seq, record) of the newest frame (seq == after_seq: nothing new)."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq > after_seq or self._closed, timeout)
            return self._seq, self._record

    def latest_jpeg(self):
        """(seq, JPEG bytes) of the newest frame's image, encoded once per frame; (seq, None) without one."""
        with self._cond:
            seq, image = self._seq, self._image
        if image is None:
            return seq, None
        with self._jpeg_lock:
            cached_seq, data = self._jpeg
            if cached_seq == seq:
                return seq, data
            import cv2

            ok, buf = cv2.imencode(".jpg", image, [int(cv2.IMWRITE_JPEG_QUALITY), self.jpeg_quality])
            data = buf.tobytes() if ok else None
            self._jpeg = (seq, data)
            return seq, data

    def latest_json(self):
        """(seq, JSON bytes) of the newest record, serialised once per frame; (0, None) before the first."""
        with self._cond:
            seq, record = self._seq, self._record
        if record is None:
            return seq, None
        with self._json_lock:
            cached_seq, data = self._json
            if cached_seq != seq:
                data = to_json(record)
                self._json = (seq, data)
            return seq, data

    def age(self):
        """Seconds since the last frame was published (None before the first)."""
        published = self._published
        return None if published is None else time.monotonic() - published

    def stats(self):
        """The pipeline's stats dict; without a stats fn, what the newest record tells (frames, fps, ...)."""
        fn = self._stats_fn
        if fn is not None:
            try:
                return dict(fn())
            except Exception:  # a metrics scrape must not fail with the pipeline
                log.warning("stats function failed", exc_info=True)
        with self._cond:
            record, seq = self._record, self._seq
        out = {"frames": seq}
        rec_stats = (record or {}).get("stats") or {}
        for key in ("fps", "dropped", "reconnects", "queues"):
            if key in rec_stats:
                out[key] = rec_stats[key]
        return out

    def open_stream(self, kind, limit=None):
        """Count a streaming client of `kind` in; False (not counted) when `limit` streams are open."""
        with self._cond:
            if limit is not None and sum(self.clients.values()) >= limit:
                return False
            self.clients[kind] = self.clients.get(kind, 0) + 1
            return True

    def close_stream(self, kind):
        with self._cond:
            self.clients[kind] = max(0, self.clients.get(kind, 0) - 1)
