"""The capture thread: reads a Source and hands its frames to the pipeline under one of two policies.

- "latest" (live sources, and files with `realtime`): a one-frame slot. A new frame replaces one the
  pipeline has not taken yet (counted in `dropped`), so the pipeline always gets the newest frame and
  never works on a stale one, however slow it is.
- "queue" (files, image folders): lossless; a bounded queue, and the reader waits when it is full.

`realtime` paces a file at its native fps (frame i is released at start + i / fps), which is how live
behaviour is tested without a camera. Each frame is stamped with the wall-clock and monotonic time it was
captured.

    cap = Capture(source, realtime=True).start()
    while True:
        frame = cap.get(timeout=0.1)     # a Captured, None on timeout, END when the source is done
        if frame is END: break
    cap.stop()
"""
from __future__ import annotations

import threading
import time
from collections import deque, namedtuple

Captured = namedtuple("Captured", "index time image name wall mono")
Captured.__doc__ = """A captured frame: the Source's Frame fields (index, time, image, name) plus `wall` (time.time())
and `mono` (time.perf_counter()) at capture."""

END = object()  # returned by Capture.get once the source is exhausted or stopped and every frame was handed out


class Capture:
    """A thread reading `source` into a latest-frame slot or a bounded queue (see the module docstring).

    policy: "latest", "queue" or None (latest for live sources and realtime files, else queue); max_frames:
    stop after that many frames.
    Counters: `captured` (frames read), `dropped` (replaced in the slot before being taken),
    `newest` (index of the newest frame read). A source error is re-raised by `get`.
    """

    def __init__(self, source, policy=None, realtime=False, queue_size=4, max_frames=None):
        if policy is None:
            policy = "latest" if (getattr(source, "live", False) or realtime) else "queue"
        if policy not in ("latest", "queue"):
            raise ValueError("unknown capture policy %r (latest, queue)" % (policy,))
        self.source = source
        self.policy = policy
        self.realtime = bool(realtime)
        self.max_frames = None if max_frames is None else int(max_frames)
        self.capacity = 1 if policy == "latest" else max(1, int(queue_size))
        self.captured = 0
        self.dropped = 0
        self.newest = -1
        self._items = deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._done = False
        self._error = None
        self._thread = None

    @property
    def reconnects(self):
        return int(getattr(self.source, "reconnects", 0) or 0)

    def start(self):
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self._thread.start()
        return self

    def depth(self):
        """Frames waiting to be taken."""
        return len(self._items)

    def _run(self):
        try:
            fps = getattr(self.source, "fps", None) if self.realtime else None
            t0 = None
            for frame in self.source:
                if self._stop.is_set() or (self.max_frames is not None and self.captured >= self.max_frames):
                    break
                if fps:
                    if t0 is None:
                        t0 = time.perf_counter()
                    # release frame i at t0 + i / fps (sleeps are cut short by stop)
                    wait = t0 + frame.index / fps - time.perf_counter()
                    if wait > 0 and self._stop.wait(wait):
                        break
                item = Captured(frame.index, frame.time, frame.image, frame.name, time.time(), time.perf_counter())
                if not self._put(item):
                    break
        except BaseException as exc:  # handed to the consumer, raised in get()
            self._error = exc
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def _put(self, item):
        with self._cond:
            if self.policy == "latest":
                if self._items:
                    self._items.popleft()
                    self.dropped += 1
            else:
                while len(self._items) >= self.capacity and not self._stop.is_set():
                    self._cond.wait(0.1)
                if self._stop.is_set():
                    return False
            self._items.append(item)
            self.captured += 1
            self.newest = item.index
            self._cond.notify_all()
        return True

    def get(self, timeout=None):
        """The next frame (the newest one under "latest"); None after `timeout` seconds without one; END
        when the source is done and nothing is left. Raises the source's error, if it failed."""
        with self._cond:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self._items and not self._done:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            if self._items:
                item = self._items.popleft()
                self._cond.notify_all()
                return item
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            return END

    def stop(self, join=1.0):
        """Stop reading (frames already captured can still be taken with get) and close the source."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        close = getattr(self.source, "close", None)
        if getattr(self.source, "live", False) and close is not None:
            close()  # ends a live source's blocking loop; files are closed by their owner
        if self._thread is not None:
            self._thread.join(join)

    def discard(self):
        """Drop every frame not taken yet (counted in `dropped`); returns how many."""
        with self._cond:
            n = len(self._items)
            self._items.clear()
            self.dropped += n
            self._cond.notify_all()
        return n
