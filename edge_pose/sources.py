"""Where frames come from, behind one URI-style entry point: `open_source(uri)`.

    with open_source("clip.mp4") as src:             # a video file (or "file://clip.mp4")
        for frame in src:                            # Frame(index, time, image BGR uint8, name)
            ...

Recognised now: video files (read in order with OpenCV; fps and frame count from the container), image
folders (sorted by name) and single images. Cameras, /dev/videoN, csi:// and rtsp:// come with the live
pipeline; they plug in here, so the rest of the code never branches on the kind of source.
"""
from __future__ import annotations

import os
import threading
from collections import namedtuple
from pathlib import Path

import cv2

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts",
                  ".mts", ".3gp")

Frame = namedtuple("Frame", "index time image name")
Frame.__doc__ = """One frame: index (0-based), time in seconds (None for still images), BGR uint8 image, and
the file name for images (None for videos)."""


class SourceError(IOError):
    """A source that cannot be opened or read: the message names the source and the problem."""


class Source:
    """Base of frame sources: iterate for Frames; `fps`, `frame_count` (None when unknown), `width`, `height`
    (of the first frame; None for image folders of mixed sizes), `name` (a stem for output files), `kind`."""

    kind = "base"
    fps = None
    frame_count = None
    width = None
    height = None

    def __init__(self, uri):
        self.uri = str(uri)
        self.name = Path(self.uri).stem or "source"

    def __iter__(self):
        raise NotImplementedError

    def close(self):
        """Release the source; the default does nothing."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

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
    try:
        import av.logging

        av.logging.set_level(None)
    except (ImportError, AttributeError, TypeError):
        pass


def open_source(uri):
    """A URI -> an opened Source. `file://` prefixes are accepted; a folder is an image folder; a file is a
    still image by its suffix, otherwise a video. Raises SourceError with a one-line reason."""
    text = str(uri)
    if text.startswith("file://"):
        text = text[len("file://"):]
    scheme = text.split("://", 1)[0] if "://" in text else ""
    if scheme:
        raise SourceError("%s: %s:// sources come with the live pipeline; give a video file or image folder"
                          % (uri, scheme))
    path = Path(text).expanduser()
    if path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(path)
    return VideoFileSource(path)


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
