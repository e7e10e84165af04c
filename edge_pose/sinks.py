"""Where results go: annotated video (H.264), per-frame JSONL, COCO keypoint results, annotated images.

Every file sink writes to a hidden temporary name next to the final one (`.NAME.partial-PID.EXT`) and
renames it on `close()`; `abort()` deletes it. An interrupted run therefore never leaves a truncated file
under the final name. Use them as context managers: a clean exit commits, an exception aborts.

JSONL: one line per frame, {"frame", "time", "persons": [{"id", "box": [x, y, w, h], "score",
"keypoints": [[x, y, score] x 17]}]} (plus "file" for still images).
COCO results: [{"image_id": frame index, "category_id": 1, "keypoints": [x, y, score] x 17 flat, "score"}].
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import threading
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

PARTIAL_TAG = ".partial-"


def partial_path(final, pid=None):
    """The temporary name a sink writes `final` under: hidden, same folder, same extension."""
    final = Path(final)
    return final.with_name(".%s%s%d%s" % (final.name, PARTIAL_TAG, os.getpid() if pid is None else pid,
                                          final.suffix))


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def remove_stale_partials(final):
    """Delete temporary files of `final` left by runs that were killed (their process is gone)."""
    final = Path(final)
    prefix = ".%s%s" % (final.name, PARTIAL_TAG)
    removed = []
    if not final.parent.is_dir():
        return removed
    for p in final.parent.iterdir():
        if not p.name.startswith(prefix):
            continue
        digits = p.name[len(prefix):].split(".", 1)[0]
        if digits.isdigit() and int(digits) != os.getpid() and _pid_alive(int(digits)):
            continue
        _remove(p)
        removed.append(p)
    return removed


def remove_output(path):
    """Delete a committed output (file or image folder), if present."""
    _remove(path)


def _remove(path):
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def _commit(tmp, final):
    final = Path(final)
    if final.is_dir() and not final.is_symlink():
        shutil.rmtree(final)
    os.replace(str(tmp), str(final))


class CommitOrAbort:
    """Context manager: close() (commit) when the block ends normally, abort() (discard) on an exception."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False


class Sink(CommitOrAbort):
    """Base of file sinks: `path` (final), `tmp` (being written); close() commits, abort() discards."""

    def __init__(self, path):
        self.path = Path(path)
        self.tmp = partial_path(self.path)
        self.closed = False

    def _finish(self):
        """Flush and close the temporary file (subclasses)."""

    def close(self):
        if self.closed:
            return
        self._finish()
        _commit(self.tmp, self.path)
        self.closed = True

    def abort(self):
        if self.closed:
            return
        try:
            self._finish()
        except Exception:  # the file is discarded anyway
            log.debug("ignored error while aborting %s", self.tmp, exc_info=True)
        _remove(self.tmp)
        self.closed = True


# ---------------------------------------------------------------------------------------------------- records

def person_record(person, ndigits=2):
    """A person dict -> JSON-ready dict (keypoints as [[x, y, score] x 17], coordinates rounded)."""
    kp = np.asarray(person["keypoints"], dtype=np.float64).reshape(-1, 3)
    kp = np.concatenate([np.round(kp[:, :2], ndigits), np.round(kp[:, 2:], 4)], axis=1)
    return {"id": None if person.get("id") is None else int(person["id"]),
            "box": [round(float(v), ndigits) for v in person["box"]],
            "score": round(float(person["score"]), 4),
            "keypoints": kp.tolist()}


def frame_record(index, time, people, file=None):
    """The JSONL line of one frame (as a dict)."""
    rec = {"frame": int(index), "time": None if time is None else round(float(time), 6),
           "persons": [person_record(p) for p in people]}
    if file is not None:
        rec["file"] = str(file)
    return rec


def coco_results(image_id, people, category_id=1):
    """COCO keypoint result dicts of one frame's people."""
    out = []
    for p in people:
        kp = np.asarray(p["keypoints"], dtype=np.float64).reshape(-1, 3)
        kp = np.concatenate([np.round(kp[:, :2], 2), np.round(kp[:, 2:], 4)], axis=1)
        out.append({"image_id": int(image_id), "category_id": int(category_id),
                    "keypoints": kp.reshape(-1).tolist(), "score": round(float(p["score"]), 5)})
    return out


# ---------------------------------------------------------------------------------------------------- writers

class JsonlWriter(Sink):
    """One JSON object per line (frame records)."""

    def __init__(self, path):
        super().__init__(path)
        self.file = open(self.tmp, "w", encoding="utf-8")
        self.count = 0

    def write(self, record):
        self.file.write(json.dumps(record, separators=(",", ":")))
        self.file.write("\n")
        self.count += 1

    def write_frame(self, index, time, people, file=None):
        self.write(frame_record(index, time, people, file))

    def _finish(self):
        if not self.file.closed:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()


class CocoResultsWriter(Sink):
    """COCO keypoint results (a JSON list), image_id = frame index; written in one go on close()."""

    def __init__(self, path):
        super().__init__(path)
        self.results = []
        with open(self.tmp, "w", encoding="utf-8"):
            pass  # fail early when the folder is not writable

    def write_frame(self, index, people):
        self.results.extend(coco_results(index, people))

    def _finish(self):
        with open(self.tmp, "w", encoding="utf-8") as f:
            json.dump(self.results, f, separators=(",", ":"))
            f.flush()
            os.fsync(f.fileno())


def _even(img):
    """yuv420p needs even sizes: pad one black row / column where needed (coordinates are unchanged)."""
    h, w = img.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return img
    return cv2.copyMakeBorder(img, 0, h % 2, 0, w % 2, cv2.BORDER_CONSTANT, value=(0, 0, 0))


def have_pyav():
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


class VideoWriter(Sink):
    """Annotated video: H.264 (libx264, yuv420p, `crf`, `preset`) in MP4 through PyAV, at `fps`.

    Without PyAV it falls back to OpenCV's mp4v (MPEG-4 Part 2) with a warning. Odd frame sizes are padded
    to even by one black row / column. `backend` says which writer is used; `count` the frames written.
    """

    def __init__(self, path, fps, crf=23, preset="veryfast", threads=0):
        super().__init__(path)
        self.fps = float(fps) if fps else 30.0
        self.crf, self.preset, self.threads = crf, preset, threads
        self.count = 0
        self.backend = "pyav" if have_pyav() else "opencv"
        if self.backend == "opencv":
            log.warning("PyAV (pip install av) is not installed: writing %s as MPEG-4 (mp4v) with OpenCV, "
                        "not H.264", self.path.name)
        self._container = self._stream = self._cv = None
        self.tmp.touch()  # fail early when the folder is not writable

    def _open(self, shape):
        h, w = shape[0] + shape[0] % 2, shape[1] + shape[1] % 2
        if self.backend == "pyav":
            import av

            rate = Fraction(self.fps).limit_denominator(1001)
            self._container = av.open(str(self.tmp), mode="w", format="mp4", options={"movflags": "+faststart"})
            stream = self._container.add_stream("libx264", rate=rate)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.options = {"crf": str(self.crf), "preset": self.preset}
            if self.threads:
                stream.codec_context.thread_count = int(self.threads)
            stream.codec_context.time_base = 1 / rate
            self._stream = stream
        else:
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")
            self._cv = cv2.VideoWriter(str(self.tmp), fourcc, self.fps, (w, h))
            if not self._cv.isOpened():
                raise IOError("%s: OpenCV cannot open a video writer" % self.tmp)

    def write(self, frame_bgr):
        img = _even(np.ascontiguousarray(frame_bgr))
        if self._container is None and self._cv is None:
            self._open(img.shape)
        if self._stream is not None:
            import av

            vf = av.VideoFrame.from_ndarray(img, format="bgr24")
            vf.pts = self.count
            for packet in self._stream.encode(vf):
                self._container.mux(packet)
        else:
            self._cv.write(img)
        self.count += 1

    def _finish(self):
        if self._stream is not None:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._stream = None
        if self._container is not None:
            self._container.close()
            self._container = None
        if self._cv is not None:
            self._cv.release()
            self._cv = None


class ImageFolderWriter(Sink):
    """Annotated still images, one file per input image (same name), in the folder `path`."""

    def __init__(self, path):
        super().__init__(path)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def write(self, frame_bgr, name):
        target = self.tmp / Path(name).name
        ok, data = cv2.imencode(target.suffix or ".png", frame_bgr)
        if not ok:
            target = target.with_suffix(".png")
            ok, data = cv2.imencode(".png", frame_bgr)
        target.write_bytes(data.tobytes())
        self.count += 1


class ThreadedWriter(CommitOrAbort):
    """Runs a writer's `write` calls in a background thread (video encoding overlaps inference).

    Errors from the thread are raised by the next write() or by close(). close()/abort() pass on to the
    wrapped sink after the queue drains (abort: without draining).
    """

    def __init__(self, writer, size=8):
        import queue

        self.writer = writer
        self._q = queue.Queue(maxsize=max(1, int(size)))
        self._error = None
        self._thread = threading.Thread(target=self._work, name="writer", daemon=True)
        self._thread.start()

    def __getattr__(self, name):
        return getattr(self.writer, name)

    def _work(self):
        while True:
            item = self._q.get()
            if item is None:
                return
            if self._error is None:
                try:
                    self.writer.write(*item)
                except BaseException as exc:  # reported in the caller's thread
                    self._error = exc

    def _raise(self):
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    def write(self, *args):
        self._raise()
        self._q.put(args)

    def _stop(self):
        if self._thread.is_alive():
            self._q.put(None)
            self._thread.join()

    def close(self):
        self._stop()
        self._raise()
        self.writer.close()

    def abort(self):
        self._error = self._error or RuntimeError("aborted")  # makes the thread skip what is queued
        self._stop()
        self.writer.abort()



class FrameVideoWriter(VideoWriter):
    """VideoWriter fed by the pipeline: `write(record, image)` writes the annotated image."""

    def write(self, record, image=None):
        if image is not None:
            super().write(image)


# ---------------------------------------------------------------------------------------------------- window

def window_problem():
    """Why no window can open here (a phrase), or None: a headless OpenCV build or no display."""
    gui = [line for line in cv2.getBuildInformation().splitlines() if line.strip().startswith("GUI:")]
    if gui and gui[0].split(":", 1)[1].strip().upper() == "NONE":
        return ("this OpenCV has no GUI (opencv-python-headless); pip install opencv-python for a window, or run "
                "with --headless (and --serve PORT for a browser view)")
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display ($DISPLAY is not set): run with --headless (and --serve PORT for a browser view)"
    return None


class WindowSink:
    """An OpenCV window showing the annotated frames; `write` returns False (stop) on q, Esc or when the
    window is closed."""

    wants_image = True

    def __init__(self, title="edge-pose"):
        problem = window_problem()
        if problem:
            raise RuntimeError("cannot open a window: " + problem)
        self.title = title
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error as exc:
            raise RuntimeError("cannot open a window: %s" % " ".join(str(exc).split())) from None

    def write(self, record, image):
        if image is None:
            return True
        cv2.imshow(self.title, image)
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), ord("Q"), 27):
            return False
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1
        except cv2.error:
            return False

    def close(self):
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
        except cv2.error:
            pass
