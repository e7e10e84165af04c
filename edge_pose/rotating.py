"""Live JSONL of frame records for other programs to read: size- (or time-) rotated, flushed line by line.

Unlike sinks.JsonlWriter (one file committed at the end of a recording), this writes the final file as it
goes, so a crash loses at most the line being written, and it never fills the disk: like
`logging.handlers.RotatingFileHandler` (which does the work here) it renames PATH to PATH.1, PATH.1 to PATH.2,
... when PATH would grow past `max_bytes`, keeping `backups` old files; or with `when` ("S", "M", "H", "D",
"midnight", "W0".."W6", see TimedRotatingFileHandler) it rotates by time to PATH.<date>.
"""
from __future__ import annotations

import json
import logging
import logging.handlers
import os

import numpy as np


def _jsonable(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError("%s is not JSON serialisable" % type(obj).__name__)


def record_json(record):
    """A frame record as one compact JSON line (NumPy arrays and scalars converted); no newline."""
    return json.dumps(record, separators=(",", ":"), default=_jsonable)


class _Raising:
    """Handlers swallow their errors (logging must not crash the program); a data writer reports them."""

    def handleError(self, record):
        raise  # the exception emit() is handling


class _SizeHandler(_Raising, logging.handlers.RotatingFileHandler):
    pass


class _TimeHandler(_Raising, logging.handlers.TimedRotatingFileHandler):
    pass


class RotatingJsonlWriter:
    """JSONL frame records at `path`, rotated at `max_bytes` (or every `interval` `when`), `backups` kept.

    `write(record, image=None)` appends one line and flushes it to the OS (`fsync=True`: to the disk too, at
    a cost on SD cards); `close()`. The image is ignored (the pipeline hands every sink the frame).
    """

    def __init__(self, path, max_bytes=50 * 1024 * 1024, backups=5, when=None, interval=1, fsync=False):
        self.path = os.path.abspath(str(path))
        folder = os.path.dirname(self.path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        if when:
            self._handler = _TimeHandler(self.path, when=when, interval=interval, backupCount=int(backups),
                                         encoding="utf-8")
        else:
            if max_bytes is not None and int(max_bytes) < 0:
                raise ValueError("max_bytes must be >= 0 (0 or None: never rotate; or use `when` for time rotation)")
            self._handler = _SizeHandler(self.path, maxBytes=int(max_bytes or 0), backupCount=int(backups),
                                         encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(message)s"))
        self.fsync = fsync
        self.count = 0

    def write(self, record, image=None):
        line = record_json(record)
        rec = logging.LogRecord("edge_pose.jsonl", logging.INFO, self.path, 0, line, None, None)
        self._handler.handle(rec)  # rotates when needed, writes the line + "\n", flushes
        if self.fsync:
            os.fsync(self._handler.stream.fileno())
        self.count += 1

    def files(self):
        """The current file and its backups that exist, newest first."""
        h = self._handler
        if isinstance(h, logging.handlers.TimedRotatingFileHandler):  # PATH.<date>: newest sorts last
            folder, base = os.path.split(self.path)
            old = [os.path.join(folder, f) for f in os.listdir(folder) if f.startswith(base + ".")]
            return [self.path] + sorted(old, reverse=True)
        old = ("%s.%d" % (self.path, i) for i in range(1, h.backupCount + 1))
        return [self.path] + [p for p in old if os.path.exists(p)]

    def close(self):
        self._handler.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

