from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from _pose_helpers import person_at

from edge_pose import sinks
from edge_pose.sources import SourceError, open_source, prefetch


def test_atomic_commit_and_abort(tmp_path):
    final = tmp_path / "a.jsonl"
    w = sinks.JsonlWriter(final)
    assert w.tmp.parent == tmp_path and w.tmp.name.startswith(".a.jsonl.partial-") and w.tmp.suffix == ".jsonl"
    w.write_frame(0, 0.0, [])
    assert not final.exists() and w.tmp.exists()
    w.close()
    assert final.read_text() == '{"frame":0,"time":0.0,"persons":[]}\n' and not w.tmp.exists()

    with pytest.raises(RuntimeError):
        with sinks.CocoResultsWriter(tmp_path / "b.coco.json") as c:
            c.write_frame(0, [{"score": 0.5, "keypoints": person_at(10, 10, 5), "box": [0, 0, 1, 1]}])
            raise RuntimeError("interrupted")
    assert os.listdir(tmp_path) == ["a.jsonl"]


def test_records_round_and_keep_the_contract():
    kp = person_at(100.123456, 50.98765, 80)
    person = {"id": 3, "box": [1.23456, 2, 3, 4], "score": np.float32(0.87654321), "keypoints": kp}
    rec = sinks.frame_record(5, 0.1666666666, [person])
    assert json.loads(json.dumps(rec)) == rec
    p = rec["persons"][0]
    assert p["id"] == 3 and p["box"][0] == 1.23 and p["score"] == 0.8765
    assert len(p["keypoints"]) == 17 and all(len(k) == 3 for k in p["keypoints"])
    (res,) = sinks.coco_results(5, [person])
    assert res["image_id"] == 5 and res["category_id"] == 1 and len(res["keypoints"]) == 51


def test_stale_partials_are_removed_live_ones_kept(tmp_path):
    final = tmp_path / "v.mp4"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = sinks.partial_path(final, pid=dead.pid)
    live = sinks.partial_path(final, pid=os.getppid())
    other = tmp_path / ".w.mp4.partial-1.mp4"
    for p in (stale, live, other):
        p.write_bytes(b"x")
    assert sinks.remove_stale_partials(final) == [stale]
    assert live.exists() and other.exists()


def test_video_writer_pads_odd_sizes(tmp_path):
    av = pytest.importorskip("av")
    w = sinks.VideoWriter(tmp_path / "odd.mp4", 25)
    for i in range(7):
        w.write(np.full((75, 101, 3), 30 * i, np.uint8))
    w.close()
    with av.open(str(tmp_path / "odd.mp4")) as c:
        s = c.streams.video[0]
        assert (s.width, s.height, float(s.average_rate)) == (102, 76, 25.0)
        assert sum(1 for _ in c.decode(s)) == 7


def test_video_writer_falls_back_to_opencv(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(sinks, "have_pyav", lambda: False)
    with caplog.at_level(logging.WARNING, logger="edge_pose.sinks"):
        w = sinks.VideoWriter(tmp_path / "cv.mp4", 30)
    assert w.backend == "opencv" and "PyAV" in caplog.text and "mp4v" in caplog.text
    with sinks.ThreadedWriter(w) as tw:
        for _ in range(5):
            tw.write(np.zeros((48, 64, 3), np.uint8))
    cap = cv2.VideoCapture(str(tmp_path / "cv.mp4"))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 5


def test_sources(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name in ("b.png", "a.jpg", "notes.txt"):
        if name.endswith("txt"):
            (folder / name).write_text("x")
        else:
            cv2.imwrite(str(folder / name), np.zeros((8, 8, 3), np.uint8))
    with open_source("file://" + str(folder)) as src:
        frames = list(src)
    assert [f.name for f in frames] == ["a.jpg", "b.png"] and src.frame_count == 2 and frames[0].time is None
    with pytest.raises(SourceError, match="cannot open"):  # nothing listens on port 9: refused at once
        open_source("rtsp://127.0.0.1:9/stream")
    with pytest.raises(SourceError, match="no such file"):
        open_source(tmp_path / "none.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no images"):
        open_source(tmp_path / "empty")


def test_prefetch_keeps_order_and_raises():
    assert list(prefetch(iter(range(50)), 3)) == list(range(50))

    def broken():
        yield 1
        raise SourceError("bad frame")

    it = prefetch(broken(), 2)
    assert next(it) == 1
    with pytest.raises(SourceError, match="bad frame"):
        next(it)
