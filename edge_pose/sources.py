"""Where frames come from, behind one URI-style entry point: `open_source(uri)`.

    with open_source("clip.mp4") as src:             # a video file (or "file://clip.mp4")
        for frame in src:                            # Frame(index, time, image BGR uint8, name)
            ...

URIs, as jetson-utils' videoSource takes them:

    0, "camera://0"                 camera index (OpenCV's default backend: V4L2 on Linux)
    /dev/video1, v4l2:///dev/video1 a V4L2 device
    csi://0                         a Jetson CSI camera through GStreamer (nvarguscamerasrc); needs an OpenCV
                                    built with GStreamer (JetPack's)
    rtsp://..., http(s)://...       network streams (OpenCV's FFmpeg backend)
    clip.mp4, file://clip.mp4       a video file (lossless: every frame, in order)
    folder/, photo.jpg              an image folder (sorted by name) or one image

Live sources (`live` True: cameras and streams) reconnect with exponential backoff when they fail; the
capture thread (`capture.py`) keeps only the newest frame of a live source. Only this module branches on
the kind of source.
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections import namedtuple
from pathlib import Path

import cv2

from edge_pose.closing import Closing

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts",
                  ".mts", ".3gp")

Frame = namedtuple("Frame", "index time image name")
Frame.__doc__ = """One frame: index (0-based), time in seconds (None for still images), BGR uint8 image, and
the file name for images (None for videos)."""


class SourceError(IOError):
    """A source that cannot be opened or read: the message names the source and the problem."""


class Source(Closing):
    """Base of frame sources: iterate for Frames; `fps`, `frame_count` (None when unknown), `width`, `height`
    (of the first frame; None for image folders of mixed sizes), `name` (a stem for output files), `kind`."""

    kind = "base"
    live = False
    reconnects = 0
    fps = None
    frame_count = None
    width = None
    height = None

    def __init__(self, uri):
        self.uri = str(uri)
        self.name = Path(self.uri).stem or "source"

    def __iter__(self):
        raise NotImplementedError

    def __repr__(self):
        return "%s(%r, fps=%s, frames=%s)" % (type(self).__name__, self.uri, self.fps, self.frame_count)


class VideoFileSource(Source):
    """A video file read in order with OpenCV. Opening reads the first frame, so an unreadable or empty
    video fails here (SourceError) rather than half-way through. `time` is index / fps."""

    kind = "video"

    def __init__(self, path):
        super().__init__(path)
        path = Path(path)
        if not path.exists():
            raise SourceError("%s: no such file" % path)
        if not path.is_file():
            raise SourceError("%s: not a file" % path)
        self.cap = cv2.VideoCapture(str(path))
        if not self.cap.isOpened():
            raise SourceError("%s: %s" % (path, _diagnose(path)))
        ok, first = self.cap.read()
        if not ok or first is None:
            self.cap.release()
            raise SourceError("%s: the video has no readable frames" % path)
        self._first = first
        self.height, self.width = first.shape[:2]
        fps = float(self.cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0.0 < fps < 1000.0 else None
        count = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count = count if count > 0 else None
        self._started = False

    def __iter__(self):
        if self._started:
            raise SourceError("%s: a video source can be iterated once" % self.uri)
        self._started = True
        fps = self.fps or 0.0
        image, index = self._first, 0
        self._first = None
        while image is not None:
            yield Frame(index, index / fps if fps else None, image, None)
            index += 1
            ok, image = self.cap.read()
            if not ok:
                image = None

    def close(self):
        if self.cap is not None:
            self.cap.release()
            self.cap = None


class ImageSource(Source):
    """Still images (an image folder sorted by file name, or one image file), one Frame per image.
    An image that cannot be decoded raises SourceError naming it."""

    kind = "images"

    def __init__(self, path):
        super().__init__(path)
        path = Path(path)
        if path.is_dir():
            self.files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            self.name = path.resolve().name or "images"
            if not self.files:
                raise SourceError("%s: folder has no images (%s)" % (path, " ".join(IMAGE_SUFFIXES)))
        elif path.is_file():
            self.files = [path]
        else:
            raise SourceError("%s: no such file or folder" % path)
        self.is_folder = path.is_dir()
        self.frame_count = len(self.files)

    def __iter__(self):
        for index, file in enumerate(self.files):
            image = cv2.imread(str(file), cv2.IMREAD_COLOR)
            if image is None:
                raise SourceError("%s: cannot read image" % file)
            yield Frame(index, None, image, file.name)


def _diagnose(path):
    """Why OpenCV cannot open a video file, as far as PyAV can tell (one short phrase)."""
    if Path(path).stat().st_size == 0:
        return "empty file (0 bytes)"
    try:
        import av
    except ImportError:
        return "cannot open as a video (unknown format or damaged file)"
    try:
        with av.open(str(path)) as container:
            streams = container.streams.video
            if not streams:
                return "no video frames in the file (no video stream)"
            if not any(True for _ in container.decode(streams[0])):
                return "no video frames in the file"
    except Exception as exc:  # av.FFmpegError and friends: report FFmpeg's reason
        reason = getattr(exc, "strerror", None) or str(exc)
        return "cannot open as a video (%s)" % reason
    return "OpenCV cannot open this video (its FFmpeg may lack the codec)"


def quiet_ffmpeg():
    """Silence FFmpeg's own log lines inside OpenCV (our errors say what went wrong); the CLI calls it."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    try:  # OpenCV's own warnings (a camera index that is not there...): our error line says it once
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    except AttributeError:
        pass
    try:
        import av.logging

        av.logging.set_level(None)
    except (ImportError, AttributeError, TypeError):
        pass


class StreamSource(Source):
    """A live camera or network stream read with OpenCV, reconnected with exponential backoff when it fails.

    opener: a callable returning an opened cv2.VideoCapture-like object (read(), release(), get()) or None
    when the source is not there; `backoff` (first, longest) seconds between attempts, doubling. The first
    open fails at once with SourceError unless `wait` (a service started before its camera). A read that
    fails (unplugged camera, dropped stream, end of a network stream) closes the capture and reopens it;
    `reconnects` counts the successful reopenings. `close()` ends the iteration from any thread.
    `time` of a Frame is seconds since the source was opened (monotonic).
    """

    kind = "stream"
    live = True

    def __init__(self, uri, opener, backoff=(0.5, 10.0), wait=False, name=None):
        super().__init__(uri)
        self.name = name or _stream_name(self.uri)
        self.opener = opener
        self.backoff = (float(backoff[0]), float(backoff[1]))
        self.reconnects = 0
        self.failures = 0
        self._closed = threading.Event()
        self._t0 = time.monotonic()
        self.cap = self._try_open()
        if self.cap is None and not wait:
            raise SourceError("%s: cannot open (no such camera or stream, or it is busy)" % self.uri)

    def _try_open(self):
        try:
            cap = self.opener()
        except Exception as exc:  # an opener may raise (cv2.error, OSError): treated as "not there yet"
            log.debug("%s: open failed: %s", self.uri, exc)
            return None
        if cap is None or (hasattr(cap, "isOpened") and not cap.isOpened()):
            if cap is not None:
                cap.release()
            return None
        if hasattr(cap, "get"):
            fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
            self.fps = fps if 0.0 < fps < 1000.0 else self.fps
        return cap

    def _reopen(self):
        """Open again, waiting first/2/4... up to `backoff[1]` seconds between attempts; False once closed."""
        delay = self.backoff[0]
        while not self._closed.is_set():
            cap = self._try_open()
            if cap is not None:
                self.cap = cap
                self.reconnects += 1
                log.warning("%s: reconnected (%d)", self.uri, self.reconnects)
                return True
            self.failures += 1
            log.warning("%s: not available, retrying in %.1f s", self.uri, delay)
            if self._closed.wait(delay):
                break
            delay = min(delay * 2.0, self.backoff[1])
        return False

    def __iter__(self):
        index = 0
        while not self._closed.is_set():
            if self.cap is None and not self._reopen():
                break
            ok, image = self.cap.read()
            if self._closed.is_set():
                break
            if not ok or image is None:
                log.warning("%s: read failed; reconnecting", self.uri)
                self._release()
                continue
            if self.width is None:
                self.height, self.width = image.shape[:2]
            yield Frame(index, time.monotonic() - self._t0, image, None)
            index += 1
        self._release()

    def _release(self):
        cap, self.cap = self.cap, None
        if cap is not None:
            cap.release()

    def close(self):
        """End the iteration (from any thread); the reading thread releases the capture."""
        self._closed.set()


class LoopingSource(Source):
    """A video file played again and again (a demo, a kiosk, a test of a live setup): frame indices and
    times go on across the passes."""

    kind = "video"

    def __init__(self, path):
        super().__init__(path)
        self.path = path
        first = VideoFileSource(path)  # fails here on a bad file
        self.fps, self.width, self.height, self.name = first.fps, first.width, first.height, first.name
        first.close()
        self.frame_count = None  # endless
        self._closed = threading.Event()

    def __iter__(self):
        index, offset = 0, 0.0
        while not self._closed.is_set():
            with VideoFileSource(self.path) as src:
                n = 0
                for frame in src:
                    if self._closed.is_set():
                        return
                    yield Frame(index, None if frame.time is None else offset + frame.time, frame.image, None)
                    index += 1
                    n += 1
            if n == 0:
                return
            offset += n / (self.fps or 30.0)

    def close(self):
        self._closed.set()


def _stream_name(uri):
    text = re.sub(r"^[a-z0-9]+://", "", str(uri))
    text = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.")
    return text[:60] or "stream"


def have_gstreamer():
    """Whether this OpenCV was built with GStreamer (JetPack's is; pip wheels are not)."""
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line.split(":", 1)[1]
    return False


def csi_pipeline(sensor=0, width=1280, height=720, fps=30, flip=0):
    """The GStreamer pipeline of a Jetson CSI camera (nvarguscamerasrc), BGR frames into OpenCV's appsink.
    drop/max-buffers=1: the appsink keeps only the newest frame, as the capture thread does."""
    return ("nvarguscamerasrc sensor-id=%d ! video/x-raw(memory:NVMM), width=(int)%d, height=(int)%d, "
            "framerate=(fraction)%d/1, format=(string)NV12 ! nvvidconv flip-method=%d ! "
            "video/x-raw, format=(string)BGRx ! videoconvert ! video/x-raw, format=(string)BGR ! "
            "appsink drop=true max-buffers=1 sync=false" % (int(sensor), int(width), int(height), int(fps), int(flip)))


def _capture_opener(target, api=cv2.CAP_ANY, width=None, height=None, fps=None, timeout_ms=5000):
    def opener():
        params = []
        if api == cv2.CAP_FFMPEG and hasattr(cv2, "CAP_PROP_OPEN_TIMEOUT_MSEC"):
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(timeout_ms), cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(timeout_ms)]
        cap = cv2.VideoCapture(target, api, params) if params else cv2.VideoCapture(target, api)
        if cap.isOpened() and (not isinstance(target, str) or target.startswith("/dev/")):
            for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, width), (cv2.CAP_PROP_FRAME_HEIGHT, height),
                                (cv2.CAP_PROP_FPS, fps)):
                if value:
                    cap.set(prop, float(value))
        return cap
    return opener


LIVE_SCHEMES = ("camera", "v4l2", "csi", "rtsp", "rtsps", "http", "https", "rtmp", "udp")


def open_source(uri, width=None, height=None, fps=None, flip=0, wait=False, backoff=(0.5, 10.0), loop=False):
    """A URI (see the module docstring) -> an opened Source; SourceError with a one-line reason otherwise.

    width / height / fps: requested camera mode (cameras, V4L2, csi://); flip: nvvidconv flip-method for
    csi://; wait: a live source that is not there yet is waited for (backoff) instead of failing.
    """
    text = str(uri).strip()
    if text.startswith("file://"):
        text = text[len("file://"):]
    live = dict(backoff=backoff, wait=wait)
    if re.fullmatch(r"(camera://)?\d+", text):
        index = int(text.rsplit("/", 1)[-1])
        return StreamSource(text, _capture_opener(index, cv2.CAP_ANY, width, height, fps), name="camera%d" % index,
                            **live)
    if text.startswith("v4l2://") or re.fullmatch(r"/dev/video\d+", text):
        device = text[len("v4l2://"):] if text.startswith("v4l2://") else text
        if not Path(device).exists() and not wait:
            raise SourceError("%s: no such device" % device)
        return StreamSource(text, _capture_opener(device, cv2.CAP_V4L2, width, height, fps),
                            name=Path(device).name, **live)
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme == "csi":
        if not have_gstreamer():
            raise SourceError("%s: this OpenCV has no GStreamer support, which csi:// needs (use JetPack's OpenCV: "
                              "pip uninstall opencv-python opencv-python-headless)" % text)
        sensor = int(text.split("://", 1)[1] or 0)
        pipe = csi_pipeline(sensor, width or 1280, height or 720, fps or 30, flip)
        return StreamSource(text, _capture_opener(pipe, cv2.CAP_GSTREAMER), name="csi%d" % sensor, **live)
    if scheme in LIVE_SCHEMES:
        return StreamSource(text, _capture_opener(text, cv2.CAP_FFMPEG), **live)
    if scheme:
        raise SourceError("%s: unknown source scheme %s:// (known: %s, file://)" % (uri, scheme,
                                                                                   ", ".join(LIVE_SCHEMES)))
    path = Path(text).expanduser()
    if path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(path)
    return LoopingSource(path) if loop else VideoFileSource(path)


def prefetch(iterable, size=4):
    """Iterate `iterable` in a background thread, keeping up to `size` items ready (OpenCV decoding releases
    the GIL, so reading overlaps inference). Exceptions are re-raised in the consumer."""
    import queue

    q = queue.Queue(maxsize=max(1, int(size)))
    done = object()
    stop = threading.Event()

    def put(item):
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work():
        try:
            for item in iterable:
                if not put(item):
                    return
            put(done)
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)

    thread = threading.Thread(target=work, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=1.0)
