"""End to end: `edge-pose run --serve` on a file source, read over HTTP while the pipeline runs, then stopped
with SIGTERM as systemd does; and the live page of the real pipeline in headless Chromium."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import pytest
import yaml
from _serve_helpers import Browser, chromium_binary

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "samples" / "two_people.mp4"
TOKEN = "e2e-secret"


def get(url, token=TOKEN, timeout=10):
    """(status, body), 4xx / 5xx included."""
    req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def start_run(tmp_path, extra=()):
    """`edge-pose run` looping the clip as a live source (realtime), headless, HTTP on a free port."""
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "source": {"uri": str(CLIP), "realtime": True, "loop": True},
        "model": {"name": "mobilenetv3", "threads": 1},
        "outputs": {"window": False, "jsonl": str(tmp_path / "frames.jsonl")},
        "http": {"host": "127.0.0.1", "port": 0, "token": TOKEN}}))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "edge_pose.cli", "run", "--config", str(config)] + list(extra),
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and url is None:
        line = proc.stderr.readline()
        if not line:
            break
        m = re.search(r"serving (http://\S+)", line)
        url = m.group(1).rstrip("/") if m else None
    if url is None:
        proc.kill()
        pytest.fail("edge-pose run did not start serving: %s" % proc.communicate()[1])
    return proc, url


def stop_run(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return err


def wait_for(fn, seconds=60.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.1)
    return None


def test_api_frame_and_metrics_while_the_pipeline_runs(tmp_path):
    from prometheus_client.parser import text_string_to_metric_families

    proc, url = start_run(tmp_path)
    try:
        assert get(url + "/healthz", token=None)[0] in (200, 503)
        assert get(url + "/api/frame", token=None)[0] == 401

        def frame_after(n):
            status, body = get(url + "/api/frame")
            if status != 200:
                return None
            rec = json.loads(body)
            return rec if rec["frame"] >= n else None

        first = wait_for(lambda: frame_after(5))
        assert first is not None, "no frame record over HTTP"
        later = wait_for(lambda: frame_after(first["frame"] + 10))
        assert later is not None and later["captured"] > first["captured"]  # live: records keep coming
        assert {"frame", "captured", "persons", "timings", "stats"} <= set(later)
        assert get(url + "/healthz", token=None)[0] == 200
        status, text = get(url + "/metrics")
        metrics = {s.name: s.value for fam in text_string_to_metric_families(text.decode())
                   for s in fam.samples if not s.labels}
        assert metrics["edge_pose_frames_total"] >= later["frame"] - metrics.get("edge_pose_dropped_frames_total", 0)
        assert metrics["edge_pose_fps"] > 0
    finally:
        err = stop_run(proc)
    assert proc.returncode == 0, err
    finished = int(re.search(r"(\d+) frames finished", err).group(1))
    assert len((tmp_path / "frames.jsonl").read_text().splitlines()) == finished


def test_live_page_of_the_real_pipeline_in_chromium(tmp_path):
    browser_bin = chromium_binary()
    if browser_bin is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    proc, url = start_run(tmp_path)
    browser = Browser(browser_bin)
    try:
        browser.open(url + "/?token=" + TOKEN)
        state = wait_for(lambda: browser.evaluate("document.getElementById('state').textContent") == "live")
        assert state, "the page never went live"
        assert wait_for(lambda: browser.evaluate("document.getElementById('view').naturalWidth")) == 960
        time.sleep(1.0)
        rect = browser.evaluate("(function (r) { return [r.left, r.top, r.width, r.height]; })"
                                "(document.getElementById('view').getBoundingClientRect())")
        shot = browser.screenshot(tmp_path / "live.png")
    finally:
        browser.close()
        err = stop_run(proc)
    assert proc.returncode == 0, err
    img = cv2.imread(str(shot))
    x, y, w, h = [int(round(v)) for v in rect]
    view = img[y:y + h, x:x + w]
    assert view.size and view.std() > 20  # a picture, not an empty box
    out = os.environ.get("EDGE_POSE_SCREENSHOT")
    if out:
        shutil.copyfile(str(shot), out)
