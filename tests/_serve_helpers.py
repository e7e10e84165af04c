"""Helpers for the HTTP service tests: real frame records from a real model, a publisher thread, raw HTTP,
and a headless Chromium driven over the DevTools protocol (pipe transport, standard library only)."""
from __future__ import annotations

import base64
import http.client
import json
import os
import select
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED_VIDEO = REPO.parent / "shared" / "data" / "videos" / "sports2d_two_people.mp4"
SAMPLE = REPO / "samples" / "two_people.mp4"


def video_path():
    return SHARED_VIDEO if SHARED_VIDEO.exists() else SAMPLE


def read_frames(n, width=960, path=None):
    """The first n frames of the test video, resized to `width`."""
    cap = cv2.VideoCapture(str(path or video_path()))
    frames = []
    while len(frames) < n:
        ok, img = cap.read()
        if not ok:
            break
        h = int(round(img.shape[0] * width / float(img.shape[1])))
        frames.append(cv2.resize(img, (width, h), interpolation=cv2.INTER_AREA))
    cap.release()
    return frames


def frame_record(index, people, timings, fps, latency_ms):
    """A frame record as the pipeline's contract (COMMON.md) describes it."""
    return {
        "frame": int(index), "time": index / 30.0, "captured": time.time(),
        "persons": [{"track_id": p.get("id"), "box": [round(float(v), 2) for v in p["box"]],
                     "score": round(float(p["score"]), 4), "keypoints": np.round(p["keypoints"], 3).tolist(),
                     "smoothed": None} for p in people],
        "timings": dict({k: round(v, 3) for k, v in timings.items()}, capture_wait=0.0, track=0.0, smooth=0.0,
                        latency=round(latency_ms, 3)),
        "stats": {"fps": fps, "dropped": 0, "queues": {"capture": 0, "infer": 1}, "reconnects": 0},
    }


def estimate_clip(n=5):
    """[(record, annotated BGR, raw BGR)] of the first n frames: mobilenetv3 + keypoint-tracked person boxes,
    skeletons drawn by edge_pose.draw.draw_people."""
    from edge_pose import PoseEstimator
    from edge_pose.draw import draw_people
    from edge_pose.persons import make_person_source

    items = []
    with PoseEstimator("mobilenetv3", threads=1) as est:
        source = make_person_source("keypoints")
        for i, frame in enumerate(read_frames(n)):
            t0 = time.perf_counter()
            people = source(frame, est)
            ms = 1e3 * (time.perf_counter() - t0)
            record = frame_record(i, people, est.timings, round(1e3 / max(ms, 1e-3), 2), ms)
            items.append((record, draw_people(frame, people, fps=record["stats"]["fps"], copy=True), frame))
    return items


class Publisher(threading.Thread):
    """Publishes the clip's (record, annotated frame) pairs to a hub in a loop, every `interval` s, with
    increasing frame indices; `published` maps frame index -> record; stats() is a pipeline-like stats dict."""

    def __init__(self, hub, items, interval=0.04):
        super().__init__(daemon=True)
        self.hub, self.items, self.interval = hub, items, interval
        self.published = {}
        self.halt = threading.Event()
        self.count = 0

    def run(self):
        while not self.halt.is_set():
            record, image, _ = self.items[self.count % len(self.items)]
            record = dict(record, frame=self.count, captured=time.time())
            self.published[self.count] = record
            self.hub.publish(record, image)
            self.count += 1
            self.halt.wait(self.interval)

    def stop(self):
        self.halt.set()
        self.join(5)


# ------------------------------------------------------------------------------------------------ raw HTTP

def request(server, method, path, body=None, headers=None, timeout=20):
    """(status, headers, body) of one request on a new connection."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def raw_exchange(server, data, shutdown_write=False, timeout=20):
    """Send raw bytes, read until the server closes: the response bytes."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as s:
        s.sendall(data)
        if shutdown_write:
            s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def status_of(response_bytes):
    """The status code of a raw HTTP response (an HTTP/0.9-style answer, body only: its JSON "status")."""
    if not response_bytes.startswith(b"HTTP/"):
        return int(json.loads(response_bytes)["status"])
    return int(response_bytes.split(b"\r\n", 1)[0].split()[1])


def open_stream(server, path, timeout=20):
    """(connection, response) of a streaming GET, headers read."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    conn.request("GET", path)
    return conn, conn.getresponse()


def read_sse_events(resp, n):
    """The next n server-sent events as (id, data dict)."""
    events, fields = [], {}
    while len(events) < n:
        line = resp.readline()
        if not line:
            raise EOFError("stream ended")
        line = line.rstrip(b"\r\n")
        if not line:
            if "data" in fields:
                events.append((int(fields.get("id", -1)), json.loads(fields["data"])))
            fields = {}
        elif not line.startswith(b":"):
            key, _, value = line.partition(b":")
            fields[key.decode()] = value[1:].decode() if value.startswith(b" ") else value.decode()
    return events


def read_mjpeg_parts(resp, boundary, n):
    """The next n parts of a multipart/x-mixed-replace stream as (headers dict, body bytes)."""
    parts = []
    while len(parts) < n:
        line = resp.readline()
        if not line:
            raise EOFError("stream ended")
        if line.strip() != b"--" + boundary.encode():
            continue
        headers = {}
        while True:
            line = resp.readline().strip()
            if not line:
                break
            key, _, value = line.partition(b":")
            headers[key.decode().lower()] = value.strip().decode()
        parts.append((headers, resp.read(int(headers["content-length"]))))
    return parts


# ------------------------------------------------------------------------------------------- headless browser

def chromium_binary():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _high_fd(fd, least=10):
    """A close-on-exec copy of fd numbered >= least (the original closed)."""
    import fcntl

    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, least)
    os.close(fd)
    return high


class Browser:
    """A headless Chromium driven over the DevTools protocol on a pipe (fds 3 and 4, NUL-separated JSON).

    (`chromium --screenshot --virtual-time-budget` never returns on this page: virtual time waits for the
    endless MJPEG and SSE requests to finish.)
    """

    def __init__(self, binary, width=1100, height=760):
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # the child's ends above fd 4, so that moving them onto 3 and 4 cannot overwrite one with the other
        to_chrome_r, from_chrome_w = [_high_fd(fd) for fd in (to_chrome_r, from_chrome_w)]

        def fds():  # in the child: the pipe ends where Chromium expects them (a syscall each, nothing else)
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self.proc = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--remote-debugging-pipe", "--window-size=%d,%d" % (width, height), "about:blank"],
            pass_fds=(3, 4), preexec_fn=fds, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf, self._id, self.session = b"", 0, None

    def call(self, method, params=None, session=True, timeout=30.0):
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        while True:
            while b"\0" not in self._buf:
                if not select.select([self._from_chrome], [], [], timeout)[0]:
                    raise TimeoutError("no answer from chromium to %s" % method)
                chunk = os.read(self._from_chrome, 1 << 16)
                if not chunk:
                    raise EOFError("chromium closed the pipe")
                self._buf += chunk
            line, self._buf = self._buf.split(b"\0", 1)
            reply = json.loads(line)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError("%s: %s" % (method, reply["error"]))
                return reply["result"]

    def open(self, url):
        target = self.call("Target.createTarget", {"url": url}, session=False)["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]

    def evaluate(self, expression):
        return self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})["result"].get("value")

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)

    def close(self):
        try:
            self.call("Browser.close", session=False)
        except (OSError, EOFError, RuntimeError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        os.close(self._to_chrome)
        os.close(self._from_chrome)
