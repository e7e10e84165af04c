"""The HTTP service against a real server on an ephemeral port, fed real frame records (mobilenetv3 poses on
the two-people clip, skeletons drawn by draw_people) by a publisher thread."""
from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import struct
import threading
import time
import zlib

import cv2
import numpy as np
import pytest
from _serve_helpers import (
    Browser,
    Publisher,
    chromium_binary,
    estimate_clip,
    open_stream,
    raw_exchange,
    read_frames,
    read_mjpeg_parts,
    read_sse_events,
    request,
    status_of,
)

from edge_pose.serve import LiveHub, PoseServer, ServeParams, image_pose_fn
from edge_pose.serve.hub import to_json
from edge_pose.serve.server import BOUNDARY
from edge_pose.serve.upload import PNG_SIGNATURE, image_size

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def clip():
    items = estimate_clip(5)
    assert any(rec["persons"] for rec, _, _ in items), "the model found nobody in the clip"
    return items


@pytest.fixture
def serve():
    """serve(params=None, **kw) -> (hub, server) started; all stopped at teardown."""
    started = []

    def make(params=None, **kwargs):
        hub = LiveHub()
        server = PoseServer(hub, params or ServeParams(port=0), **kwargs).start()
        started.append(server)
        return hub, server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def publishing(serve, clip):
    """(hub, server, publisher) with frames flowing."""
    pubs = []

    def make(params=None, **kwargs):
        hub, server = serve(params, **kwargs)
        pub = Publisher(hub, clip)
        pub.start()
        pubs.append(pub)
        return hub, server, pub

    yield make
    for pub in pubs:
        pub.stop()


def wait_until(fn, seconds=10.0, step=0.05):
    """Poll fn() until true (a deadline for a condition, not a speed check)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(step)
    return fn()


# ----------------------------------------------------------------------------------------------------- hub

def test_hub_encodes_lazily_once_per_frame(clip, monkeypatch):
    calls = []
    real = cv2.imencode
    monkeypatch.setattr(cv2, "imencode", lambda *a, **k: calls.append(1) or real(*a, **k))
    hub = LiveHub(jpeg_quality=80)
    for record, image, _ in clip:
        hub.publish(record, image)
    assert calls == []  # publishing never encodes
    results = []
    threads = [threading.Thread(target=lambda: results.append(hub.latest_jpeg())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len({r[0] for r in results}) == 1 and len({r[1] for r in results}) == 1
    seq, record, jpeg = hub.latest()
    assert seq == len(clip) and record is clip[-1][0] and jpeg == results[0][1] and len(calls) == 1
    decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == clip[-1][1].shape
    assert np.abs(decoded.astype(int) - clip[-1][1]).mean() < 4  # JPEG quality 80
    hub.publish(clip[0][0], None)
    assert hub.latest_jpeg() == (seq + 1, None) and len(calls) == 1


def test_hub_wait_wakes_on_publish_and_close(clip):
    hub = LiveHub()
    assert hub.wait(0, timeout=0.05) == (0, None)
    got = []
    waiter = threading.Thread(target=lambda: got.append(hub.wait(0, timeout=30)))
    waiter.start()
    hub.publish(clip[0][0], clip[0][1])
    waiter.join(10)
    assert got == [(1, clip[0][0])]
    waiter = threading.Thread(target=lambda: got.append(hub.wait(1, timeout=30)))
    waiter.start()
    hub.close()
    waiter.join(10)
    assert not waiter.is_alive() and got[-1] == (1, clip[0][0]) and hub.closed


def test_to_json_numpy_and_non_finite():
    rec = {"frame": np.int64(3), "persons": [{"keypoints": np.array([[1.5, np.nan, 0.2]], np.float32)}],
           "timings": {"latency": float("inf")}}
    out = json.loads(to_json(rec))
    assert out == {"frame": 3, "persons": [{"keypoints": [[1.5, None, pytest.approx(0.2)]]}],
                   "timings": {"latency": None}}


def test_hub_stats_fallback_and_fn(clip):
    hub = LiveHub()
    hub.publish(clip[0][0], None)
    assert hub.stats() == {"frames": 1, "fps": clip[0][0]["stats"]["fps"], "dropped": 0, "reconnects": 0,
                           "queues": {"capture": 0, "infer": 1}}
    hub.set_stats_fn(lambda: {"frames": 7})
    assert hub.stats() == {"frames": 7}
    hub.set_stats_fn(lambda: 1 / 0)  # a failing stats fn falls back to the record's
    assert hub.stats()["frames"] == 1


# ---------------------------------------------------------------------------------------------- JSON / SSE

def test_api_frame_latest_record(serve, clip):
    hub, server = serve()
    status, headers, body = request(server, "GET", "/api/frame")
    assert status == 503 and json.loads(body)["error"]
    for record, image, _ in clip[:3]:
        hub.publish(record, image)
    status, headers, body = request(server, "GET", "/api/frame")
    assert status == 200 and headers["Content-Type"] == "application/json"
    out = json.loads(body)
    assert out == json.loads(json.dumps(clip[2][0]))
    assert headers["X-Frame-Seq"] == "3"
    for person in out["persons"]:
        assert len(person["keypoints"]) == 17 and all(len(k) == 3 for k in person["keypoints"])


def test_sse_delivers_successive_records(publishing):
    hub, server, pub = publishing()
    conn, resp = open_stream(server, "/api/events")
    try:
        assert resp.status == 200 and resp.headers["Content-Type"] == "text/event-stream"
        events = read_sse_events(resp, 4)
    finally:
        resp.close()
        conn.close()
    ids = [i for i, _ in events]
    frames = [rec["frame"] for _, rec in events]
    assert ids == sorted(set(ids)) and frames == sorted(set(frames))
    for _, rec in events:
        assert rec == json.loads(json.dumps(pub.published[rec["frame"]]))
    assert wait_until(lambda: hub.clients["sse"] == 0)  # the server noticed the client left


def test_mjpeg_delivers_decodable_annotated_jpegs(publishing, clip):
    hub, server, pub = publishing()
    conn, resp = open_stream(server, "/stream.mjpg")
    try:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "multipart/x-mixed-replace; boundary=" + BOUNDARY
        parts = read_mjpeg_parts(resp, BOUNDARY, 3)
    finally:
        resp.close()
        conn.close()
    seqs = [int(h["x-frame-seq"]) for h, _ in parts]
    assert seqs == sorted(set(seqs))
    for headers, data in parts:
        assert headers["content-type"] == "image/jpeg"
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        assert img is not None and img.shape == clip[0][1].shape
        # one of the annotated frames, closer to it than to the raw frame (the skeleton is in the stream)
        diffs = [(np.abs(img.astype(int) - ann).mean(), np.abs(img.astype(int) - raw).mean()) for _, ann, raw in clip]
        best = min(range(len(clip)), key=lambda i: diffs[i][0])
        assert diffs[best][0] < 4
        if clip[best][0]["persons"]:
            assert diffs[best][0] < diffs[best][1]


def test_stop_ends_streams_and_closes_port(publishing):
    hub, server, pub = publishing()
    conn, resp = open_stream(server, "/api/events")
    read_sse_events(resp, 1)
    port = server.port
    server.stop()
    with pytest.raises(EOFError):  # the stream ends instead of hanging
        read_sse_events(resp, 1000)
    resp.close()
    conn.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


# ------------------------------------------------------------------------------------------------- metrics

STATS = {"frames": 1234, "fps": 27.5, "dropped": 17, "reconnects": 2, "queues": {"capture": 1, "infer": 3},
         "latency_ms": {"infer": {"p50": 4.25, "p95": 6.5, "last": 4.0}, "latency": {"p50": 30.0, "p95": 41.0,
                                                                                      "last": 33.3}},
         "source": "samples/two_people.mp4", "model": "mobilenetv3", "running": True}


def _fake_sysfs(root):
    """Jetson Orin-style sysfs: two thermal zones, an INA3221 (hwmon) with a connected and an NC channel."""
    for i, (kind, milli) in enumerate((("cpu-thermal", "45500"), ("gpu-thermal", "43000"))):
        zone = root / ("sys/class/thermal/thermal_zone%d" % i)
        zone.mkdir(parents=True)
        (zone / "type").write_text(kind + "\n")
        (zone / "temp").write_text(milli + "\n")
    hw = root / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon1"
    hw.mkdir(parents=True)
    for name, text in (("name", "ina3221"), ("in1_label", "VDD_IN"), ("in1_input", "5080"),
                       ("curr1_input", "1234"), ("in2_label", "NC"), ("in2_input", "0"), ("curr2_input", "0")):
        (hw / name).write_text(text + "\n")
    iio = root / "sys/bus/i2c/drivers/ina3221x/0-0041/iio:device1"  # JetPack 4 layout
    iio.mkdir(parents=True)
    for name, text in (("rail_name_0", "VDD_SYS_GPU"), ("in_voltage0_input", "19000"), ("in_current0_input", "150"),
                       ("in_power0_input", "2850")):
        (iio / name).write_text(text + "\n")


def test_metrics_match_stats_fn(serve, clip, tmp_path):
    from prometheus_client.parser import text_string_to_metric_families

    _fake_sysfs(tmp_path)
    hub, server = serve(sysfs_root=str(tmp_path))
    hub.set_stats_fn(lambda: STATS)
    record = next(rec for rec, _, _ in clip if rec["persons"])
    hub.publish(record, None)
    status, headers, body = request(server, "GET", "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    assert samples[("edge_pose_frames_total", ())] == 1234
    assert samples[("edge_pose_dropped_frames_total", ())] == 17
    assert samples[("edge_pose_reconnects_total", ())] == 2
    assert samples[("edge_pose_fps", ())] == 27.5
    assert samples[("edge_pose_running", ())] == 1
    assert samples[("edge_pose_persons", ())] == len(record["persons"])
    for stage, values in STATS["latency_ms"].items():
        assert samples[("edge_pose_stage_latency_ms", (("quantile", "0.5"), ("stage", stage)))] == values["p50"]
        assert samples[("edge_pose_stage_latency_ms", (("quantile", "0.95"), ("stage", stage)))] == values["p95"]
        assert samples[("edge_pose_stage_latency_last_ms", (("stage", stage),))] == values["last"]
    for queue, depth in STATS["queues"].items():
        assert samples[("edge_pose_queue_depth", (("queue", queue),))] == depth
    assert samples[("edge_pose_info", (("model", "mobilenetv3"), ("source", STATS["source"])))] == 1
    assert samples[("edge_pose_temperature_celsius", (("type", "cpu-thermal"), ("zone", "thermal_zone0")))] == 45.5
    assert samples[("edge_pose_temperature_celsius", (("type", "gpu-thermal"), ("zone", "thermal_zone1")))] == 43.0
    vdd_in = (("device", "1-0040"), ("rail", "VDD_IN"))
    assert samples[("edge_pose_power_watts", vdd_in)] == pytest.approx(5.080 * 1.234)
    assert samples[("edge_pose_voltage_volts", vdd_in)] == pytest.approx(5.08)
    assert samples[("edge_pose_current_amperes", vdd_in)] == pytest.approx(1.234)
    gpu = (("device", "0-0041"), ("rail", "VDD_SYS_GPU"))
    assert samples[("edge_pose_power_watts", gpu)] == pytest.approx(2.85)
    assert not any(k[0].startswith("edge_pose_power") and ("rail", "NC") in k[1] for k in samples)
    assert any(name.startswith("process_") for name, _ in samples)
    # values follow the stats fn from one scrape to the next
    hub.set_stats_fn(lambda: dict(STATS, frames=1300, fps=12.0))
    body = request(server, "GET", "/metrics")[2].decode()
    values = {s.name: s.value for f in text_string_to_metric_families(body) for s in f.samples if not s.labels}
    assert values["edge_pose_frames_total"] == 1300 and values["edge_pose_fps"] == 12.0


def test_metrics_without_sensors(serve, tmp_path):
    hub, server = serve(sysfs_root=str(tmp_path))  # an empty tree: no thermal zones, no INA3221
    body = request(server, "GET", "/metrics")[2].decode()
    assert "edge_pose_temperature_celsius" not in body and "edge_pose_power_watts" not in body
    assert "edge_pose_frames_total 0.0" in body  # the hub's own count before any frame


# ---------------------------------------------------------------------------------------------------- pose

def test_post_pose_returns_keypoints(serve):
    from edge_pose import PoseEstimator

    frame = read_frames(1)[0]
    jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    with PoseEstimator("mobilenetv3", threads=1) as est:
        hub, server = serve(pose_fn=image_pose_fn(est, "full-frame"))
        status, headers, body = request(server, "POST", "/api/pose", jpeg, {"Content-Type": "image/jpeg"})
        assert status == 200, body
        out = json.loads(body)
        expected = est(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR))
        boundary = "----edgeposeTest42"
        form = (b"--%s\r\nContent-Disposition: form-data; name=\"image\"; filename=\"person.jpg\"\r\n"
                b"Content-Type: image/jpeg\r\n\r\n%s\r\n--%s--\r\n") % (boundary.encode(), jpeg, boundary.encode())
        status, _, body2 = request(server, "POST", "/api/pose", form,
                                   {"Content-Type": "multipart/form-data; boundary=" + boundary})
        assert status == 200, body2
        png = cv2.imencode(".png", cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR))[1].tobytes()
        status, _, body3 = request(server, "POST", "/api/pose", png)  # no content type: raw bytes
    assert status == 200, body3
    assert (out["width"], out["height"]) == (frame.shape[1], frame.shape[0])
    assert len(out["persons"]) == len(expected) == 1
    for person, ref in zip(out["persons"], expected):
        kp = np.array(person["keypoints"])
        assert kp.shape == (17, 3)
        np.testing.assert_allclose(kp[:, :2], ref["keypoints"][:, :2], atol=0.01)
        np.testing.assert_allclose(kp[:, 2], ref["keypoints"][:, 2], atol=1e-4)
    assert json.loads(body2)["persons"] == out["persons"]
    assert json.loads(body3)["persons"] == out["persons"]


def test_post_pose_without_model_is_503(serve):
    hub, server = serve()
    status, _, body = request(server, "POST", "/api/pose", b"\xff\xd8", {"Content-Type": "image/jpeg"})
    assert status == 503 and b"pose" in body


# ------------------------------------------------------------------------------------------ access control

def test_token_required(publishing):
    hub, server, pub = publishing(ServeParams(port=0, token=TOKEN))
    wait_until(lambda: hub.seq > 0)
    for path in ("/api/frame", "/metrics", "/api/events", "/stream.mjpg", "/nope"):
        status, headers, _ = request(server, "GET", path)
        assert status == (404 if path == "/nope" else 401), path
    status, headers, _ = request(server, "GET", "/api/frame", headers={"Authorization": "Bearer wrong"})
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    assert request(server, "GET", "/api/frame?token=wrong")[0] == 401
    assert request(server, "GET", "/api/frame", headers={"Authorization": "Bearer " + TOKEN})[0] == 200
    assert request(server, "GET", "/api/frame?token=" + TOKEN)[0] == 200
    assert request(server, "GET", "/metrics", headers={"Authorization": "bearer " + TOKEN})[0] == 200
    assert request(server, "POST", "/api/pose", b"x" * 100, {"Content-Type": "image/jpeg"})[0] == 401
    # open: the health probe and the (data-free) page and its script
    assert request(server, "GET", "/healthz")[0] == 200
    assert request(server, "GET", "/")[0] == 200
    assert request(server, "GET", "/static/app.js")[0] == 200


def test_default_bind_is_loopback(serve):
    assert ServeParams().host == "127.0.0.1"
    hub, server = serve(ServeParams(port=0))
    assert server.address[0] == "127.0.0.1" and server.url.startswith("http://127.0.0.1:")


def test_params_validation():
    for bad in (dict(port=70000), dict(token=""), dict(max_body_bytes=0), dict(jpeg_quality=0),
                dict(stall_seconds=0), dict(max_streams=0)):
        with pytest.raises(ValueError, match="http\\."):
            ServeParams(**bad).validate()


# ------------------------------------------------------------------------------------------- bad requests

def test_bad_requests_answered_and_server_survives(publishing, clip):
    hub, server, pub = publishing(ServeParams(port=0, max_body_bytes=4096),
                                  pose_fn=lambda img: [])
    wait_until(lambda: hub.seq > 0)

    def still_ok():
        status, _, body = request(server, "GET", "/api/frame")
        return status == 200 and json.loads(body)["persons"] is not None

    cases = [
        (request(server, "POST", "/api/pose", b"\0" * 5000, {"Content-Type": "image/jpeg"})[0], 413),
        (request(server, "POST", "/api/pose", b"this is not an image", {"Content-Type": "image/jpeg"})[0], 400),
        (request(server, "POST", "/api/pose", b"{}", {"Content-Type": "application/json"})[0], 415),
        (request(server, "POST", "/api/pose", png_bomb(), {"Content-Type": "image/png"})[0], 413),
        (request(server, "POST", "/api/pose", cv2.imencode(".bmp", clip[0][2][:20, :20])[1].tobytes(),
                 {"Content-Type": "image/bmp"})[0], 400),
        (request(server, "POST", "/api/pose", b"\xff\xd8\xff\xe0\x00\x10JFIF" + b"\0" * 100,
                 {"Content-Type": "image/jpeg"})[0], 400),  # a JPEG start, no image
        (request(server, "POST", "/api/pose", b"--x--\r\n", {"Content-Type": "multipart/form-data"})[0], 400),
        (status_of(raw_exchange(server, b"POST /api/pose HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")), 400),
        (status_of(raw_exchange(server, b"POST /api/pose HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n")), 400),
        (status_of(raw_exchange(server, b"POST /api/pose HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")), 411),
        (status_of(raw_exchange(server, b"POST /api/pose HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nshort",
                                shutdown_write=True)), 400),
        (status_of(raw_exchange(server, b"GARBAGE\r\n\r\n")), 400),  # (answered HTTP/0.9 style: body only)
        (status_of(raw_exchange(server, b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(range(256)),
                                shutdown_write=True)), 400),  # a TLS hello on the plain port
        (status_of(raw_exchange(server, b"GET /api/frame HTTP/1.1 extra words\r\n\r\n")), 400),
        (status_of(raw_exchange(server, b"GET /api/frame HTTP/9.9\r\n\r\n")), 505),
        (request(server, "PUT", "/api/frame", b"x")[0], 405),
        (request(server, "DELETE", "/metrics")[0], 405),
        (request(server, "GET", "/api/pose")[0], 405),
        (request(server, "POST", "/api/frame", b"x")[0], 405),
        (request(server, "GET", "/no/such/route")[0], 404),
    ]
    for got, expected in cases:
        assert got == expected
        assert still_ok()
    status, headers, _ = request(server, "PUT", "/api/frame", b"x")
    assert headers["Allow"] == "GET, HEAD"
    # a second request on the same keep-alive connection after an answered error
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    conn.request("GET", "/no/such/route")
    first = conn.getresponse()
    assert first.status == 404 and json.loads(first.read())["status"] == 404 and not first.will_close
    conn.request("GET", "/api/frame")
    assert conn.getresponse().status == 200
    conn.close()


def png_bomb(width=100000, height=100000):
    """A small valid-looking PNG that declares a huge image (30 GB decoded)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 200000, 9)
    chunks = [(b"IHDR", ihdr), (b"IDAT", idat), (b"IEND", b"")]
    return PNG_SIGNATURE + b"".join(struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
                                    for t, d in chunks)


def test_image_size_from_headers(clip):
    frame = clip[0][2]
    for ext, params in ((".jpg", []), (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]), (".png", [])):
        data = cv2.imencode(ext, frame, params)[1].tobytes()
        assert image_size(data)[1:] == (frame.shape[1], frame.shape[0])
    assert image_size(png_bomb(123, 45678)) == ("png", 123, 45678)
    assert image_size(b"GIF89a" + b"\0" * 100) is None


def test_path_traversal_is_404(serve):
    hub, server = serve()
    for path in ("/../", "/static/../server.py", "/static/../../setup.py", "/static/%2e%2e/server.py",
                 "/static/%2e%2e%2fserver.py", "/static/..%2f..%2fsetup.py", "/static/%252e%252e%252fhub.py",
                 "/static/..\\server.py", "/static//etc/passwd", "/static/./app.js/..", "/%2e%2e/%2e%2e/etc/passwd",
                 "/..%2fedge_pose/serve/server.py", "/static/", "/static", "/static/.", "/static/%00app.js"):
        status, _, body = request(server, "GET", path)
        assert status == 404, path
        assert b"import" not in body and b"root:" not in body
    status, headers, body = request(server, "GET", "/static/app.js")
    assert status == 200 and b"EventSource" in body
    assert request(server, "HEAD", "/static/app.js")[2] == b""


# ------------------------------------------------------------------------------------------------ health

def test_healthz_ok_then_stalled_then_stopped(serve, clip):
    hub, server = serve(ServeParams(port=0, stall_seconds=0.5))
    status, _, body = request(server, "GET", "/healthz")
    assert status == 503 and json.loads(body)["status"] == "starting"
    pub = Publisher(hub, clip)
    pub.start()
    try:
        assert wait_until(lambda: request(server, "GET", "/healthz")[0] == 200)
        body = json.loads(request(server, "GET", "/healthz")[2])
        assert body["status"] == "ok" and body["frames"] > 0
    finally:
        pub.stop()
    assert wait_until(lambda: request(server, "GET", "/healthz")[0] == 503)
    body = json.loads(request(server, "GET", "/healthz")[2])
    assert body["status"] == "stalled" and body["age_s"] > 0.5
    hub.close()
    body = json.loads(request(server, "GET", "/healthz")[2])
    assert body["status"] == "stopped"
    assert request(server, "GET", "/api/events")[0] == 503  # no new streams once the pipeline ended
    assert request(server, "GET", "/api/frame")[0] == 200  # the last frame stays readable


def test_stream_limit(publishing):
    hub, server, pub = publishing(ServeParams(port=0, max_streams=1))
    conn, resp = open_stream(server, "/stream.mjpg")
    try:
        read_mjpeg_parts(resp, BOUNDARY, 1)
        assert request(server, "GET", "/api/events")[0] == 503
    finally:
        resp.close()
        conn.close()
    assert wait_until(lambda: hub.clients["mjpeg"] == 0)  # noticed at its next frame
    conn, resp = open_stream(server, "/api/events")
    assert resp.status == 200
    resp.close()
    conn.close()


# ----------------------------------------------------------------------------------------- headless browser

@pytest.mark.skipif(chromium_binary() is None, reason="chromium not installed")
def test_page_in_headless_chromium(publishing, clip, tmp_path):
    hub, server, pub = publishing(ServeParams(port=0, token=TOKEN))
    browser = Browser(chromium_binary())
    try:
        browser.open(server.url + "/?token=" + TOKEN)
        fields = ("people", "fps", "latency", "frame", "state")
        expr = ("document.getElementById('state') && JSON.stringify([%s].map(function (i) "
                "{ return document.getElementById(i).textContent; }))" % ", ".join("'%s'" % f for f in fields))

        def live_fields():  # the page's numbers once its script has shown a frame record
            text = browser.evaluate(expr)
            values = json.loads(text) if text else None
            return values if values and values[-1] == "live" else None

        values = wait_until(live_fields, seconds=30, step=0.3)
        assert values, "the page never showed live data"
        people, fps, latency, frame, _ = values
        sent = {len(r["persons"]) for r, _, _ in clip}
        assert int(people) in sent and int(frame) in pub.published
        assert any(abs(float(fps) - r["stats"]["fps"]) <= 0.05 for r, _, _ in clip)  # shown with 1 decimal
        assert any(abs(float(latency) - r["timings"]["latency"]) <= 0.5 for r, _, _ in clip)  # and 0
        width = wait_until(lambda: browser.evaluate("document.getElementById('view').naturalWidth"), seconds=30)
        assert width == clip[0][1].shape[1]  # the browser decoded the MJPEG stream
        rect = browser.evaluate("(function (r) { return [r.left, r.top, r.width, r.height]; })"
                                "(document.getElementById('view').getBoundingClientRect())")
        shot = browser.screenshot(tmp_path / "page.png")
    finally:
        browser.close()
    img = cv2.imread(str(shot))
    assert img is not None and img.std() > 10  # not blank
    x, y, w, h = [int(round(v)) for v in rect]
    view = img[y:y + h, x:x + w]
    assert view.size and view.std() > 20  # the video area holds a picture
    # the picture is an annotated frame: compare with the frames sent, resized to the view
    diffs = [np.abs(cv2.resize(ann, (view.shape[1], view.shape[0]), interpolation=cv2.INTER_AREA).astype(int)
                    - view).mean() for _, ann, _ in clip]
    assert min(diffs) < 12
    out = os.environ.get("EDGE_POSE_SCREENSHOT")
    if out:
        shutil.copyfile(str(shot), out)
