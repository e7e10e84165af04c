"""Capture policies (latest-frame, lossless, realtime pacing) and live sources (URIs, reconnection) on real video."""
import shutil
import threading
import time
from pathlib import Path

import cv2
import pytest

from edge_pose.capture import END, Capture
from edge_pose.sources import SourceError, StreamSource, have_gstreamer, open_source

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "samples" / "two_people.mp4"


def drain(cap, delay=0.0, timeout=10.0):
    """Take every frame until END; per taken frame (index, newest captured index just after taking)."""
    taken = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        item = cap.get(timeout=0.5)
        if item is END:
            return taken
        if item is None:
            continue
        taken.append((item.index, cap.newest))
        if delay:
            time.sleep(delay)
    raise AssertionError("capture did not end")


def test_lossless_file_gives_every_frame_in_order():
    with open_source(CLIP) as src:
        cap = Capture(src, queue_size=2).start()
        assert cap.policy == "queue"
        taken = drain(cap, delay=0.001)
    assert [i for i, _ in taken] == list(range(src.frame_count))
    assert cap.dropped == 0 and cap.captured == src.frame_count


def test_latest_frame_policy_never_hands_out_a_stale_frame():
    with open_source(CLIP) as src:
        src.fps = 250.0  # pace the real clip fast, consume slowly: most frames must be dropped
        cap = Capture(src, realtime=True).start()
        assert cap.policy == "latest"
        taken = drain(cap, delay=0.02)
    indices = [i for i, _ in taken]
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    # what is taken is the newest captured frame (one newer may land between the take and the check)
    assert max(newest - i for i, newest in taken) <= 1
    assert cap.dropped > 0
    assert cap.captured == len(taken) + cap.dropped == src.frame_count
    assert indices[-1] == src.frame_count - 1  # the last frame is never dropped


def test_realtime_paces_a_file_at_its_fps():
    with open_source(CLIP) as src:
        src.fps = 100.0
        cap = Capture(src, policy="queue", realtime=True, max_frames=30).start()
        stamps = []
        while True:
            item = cap.get(timeout=1.0)
            if item is END:
                break
            stamps.append(item.mono)
    assert len(stamps) == 30
    # 30 frames at 100 fps span ~0.29 s: pacing, not a burst (a generous bound, this box is noisy)
    assert stamps[-1] - stamps[0] >= 0.25


def test_stop_ends_capture_and_keeps_taken_accounting():
    with open_source(CLIP) as src:
        src.fps = 60.0
        cap = Capture(src, realtime=True).start()
        time.sleep(0.3)
        cap.stop()
        taken = drain(cap)
    assert cap.captured < src.frame_count
    assert cap.captured == len(taken) + cap.dropped


def test_reconnects_when_the_source_fails_and_comes_back(tmp_path):
    path = tmp_path / "cam.mp4"

    def opener():  # a "camera" that is a real video file: missing = unplugged, end of file = stream lost
        return cv2.VideoCapture(str(path)) if path.exists() else None

    src = StreamSource("test://cam", opener, backoff=(0.01, 0.05), wait=True)
    assert src.cap is None and src.live
    frames, done = [], threading.Event()

    def read():
        for frame in src:
            frames.append(frame.index)
        done.set()

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    time.sleep(0.15)
    assert not frames and src.failures > 0  # waiting for the camera, with backoff
    shutil.copy(CLIP, tmp_path / "part.mp4")
    (tmp_path / "part.mp4").rename(path)  # plugged in
    deadline = time.monotonic() + 20
    while len(frames) < 200 and time.monotonic() < deadline:  # more than one pass: lost at the end, reopened
        time.sleep(0.01)
    assert len(frames) >= 200 and src.reconnects >= 2
    src.close()
    assert done.wait(5.0)
    assert frames == list(range(len(frames)))  # indices continue across reconnections


def test_first_open_fails_fast_without_wait(tmp_path):
    with pytest.raises(SourceError, match="cannot open"):
        StreamSource("test://none", lambda: None)


@pytest.mark.parametrize("uri, message", [
    ("ftp://host/x", "unknown source scheme"),
    ("/dev/video99", "no such device"),
    ("v4l2:///dev/video98", "no such device"),
])
def test_bad_uris_say_why(uri, message):
    with pytest.raises(SourceError, match=message):
        open_source(uri)


@pytest.mark.skipif(have_gstreamer(), reason="this OpenCV has GStreamer: csi:// would try the camera")
def test_csi_without_gstreamer_says_so():
    with pytest.raises(SourceError, match="GStreamer"):
        open_source("csi://0")


def test_file_uri_and_folder():
    with open_source("file://" + str(CLIP)) as src:
        assert src.kind == "video" and not src.live and src.frame_count == 150


def test_http_stream_reconnects_when_the_server_comes_back():
    """A real network source: edge-pose's own MJPEG stream over HTTP, read by OpenCV's FFmpeg; the server goes
    away (the stream is lost, reconnection attempts are refused) and comes back on the same port."""
    import numpy as np

    from edge_pose.serve import LiveHub, PoseServer, ServeParams

    def serve(port):
        hub = LiveHub()
        server = PoseServer(hub, ServeParams(port=port)).start()
        stop = threading.Event()

        def publish():
            i = 0
            while not stop.is_set():
                img = np.full((120, 160, 3), 40, np.uint8)
                cv2.putText(img, str(i), (10, 80), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
                hub.publish({"frame": i, "persons": []}, img)
                i += 1
                time.sleep(1 / 30)

        threading.Thread(target=publish, daemon=True).start()
        return server, stop

    server, stop = serve(0)
    port = server.port
    src = open_source("http://127.0.0.1:%d/stream.mjpg" % port, backoff=(0.05, 0.2))
    frames = []
    reader = threading.Thread(target=lambda: frames.extend(f.index for f in src), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 20
        while len(frames) < 10 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(frames) >= 10
        stop.set()
        server.stop()  # the stream is lost
        deadline = time.monotonic() + 20
        while src.failures == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert src.failures > 0  # reconnection refused while the server is away
        before = len(frames)
        server, stop = serve(port)  # back
        deadline = time.monotonic() + 30
        while (src.reconnects < 1 or len(frames) < before + 10) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert src.reconnects >= 1 and len(frames) >= before + 10
    finally:
        src.close()
        stop.set()
        server.stop()
        reader.join(10)
    assert frames == list(range(len(frames)))
