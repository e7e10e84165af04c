"""`edge-pose run` / `edge-pose --camera N` / `edge-pose config`: clean shutdown, errors, config."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from edge_pose.cli import main
from edge_pose.run_config import load_run_config, to_yaml
from edge_pose.sinks import window_problem

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "samples" / "two_people.mp4"
SUMMARY = re.compile(r"(\d+) frames finished, (\d+) dropped")


def cli(*args):
    return [sys.executable, "-m", "edge_pose.cli"] + [str(a) for a in args]


def test_sigterm_mid_stream_loses_nothing(tmp_path):
    out = tmp_path / "frames.jsonl"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(cli("run", "--source", CLIP, "--realtime", "--headless", "--jsonl", out, "--threads", 1),
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if out.exists() and len(out.read_text().splitlines()) >= 15:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()[1]
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    finished, dropped = (int(v) for v in SUMMARY.search(err).groups())
    records = [json.loads(line) for line in out.read_text().splitlines()]  # every line whole
    assert len(records) == finished >= 15
    frames = [r["frame"] for r in records]
    assert frames == sorted(frames) and len(set(frames)) == len(frames)
    # every frame taken in (0 .. last) is in the file or counted as dropped; it stopped before the end
    assert frames[-1] + 1 == finished + dropped < 150
    assert all(r["stats"]["behind"] <= 1 for r in records)


def test_no_window_here_says_use_headless(tmp_path, capsys):
    if window_problem() is None:
        pytest.skip("this machine can open a window")
    rc = main(["run", "--source", str(CLIP), "--max-frames", "2"])
    assert rc == 2
    assert "--headless" in capsys.readouterr().err


def test_camera_that_is_not_there(capsys):
    rc = main(["--camera", "97", "--headless"])
    assert rc == 2
    assert "cannot open" in capsys.readouterr().err


def test_bad_config_value_names_key_and_choices(capsys):
    rc = main(["run", "--source", str(CLIP), "--headless", "--set", "smoothing.method=magic"])
    err = capsys.readouterr().err
    assert rc == 2 and "smoothing.method" in err and "kalman" in err


def test_bad_config_type_and_unknown_key(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  max_batch: lots\n")
    assert main(["config", "print", "--config", str(bad)]) == 2
    assert "model.max_batch" in capsys.readouterr().err
    bad.write_text("sauce:\n  uri: 0\n")
    assert main(["config", "check", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "sauce" in err and "source" in err


def test_config_print_round_trips(tmp_path, capsys):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("source:\n  uri: rtsp://cam/stream\nsmoothing:\n  method: one_euro\n")
    assert main(["config", "print", "--config", str(cfg_file), "--set", "model.name=resnet18"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["source"]["uri"] == "rtsp://cam/stream" and printed["model"]["name"] == "resnet18"
    assert printed["smoothing"]["method"] == "one_euro" and "kalman" in printed["smoothing"]  # defaults merged
    again = tmp_path / "again.yaml"
    again.write_text(yaml.safe_dump(printed))
    assert to_yaml(load_run_config(str(again))) == yaml.safe_dump(printed, sort_keys=False, default_flow_style=False)


def test_q_in_the_window_stops_the_pipeline_cleanly(monkeypatch, tmp_path):
    """The window sink on the real pipeline, with OpenCV's GUI calls recorded instead of drawn (no display
    here): frames are shown annotated, and q after the 5th frame ends the run with every output closed."""
    import cv2
    import numpy as np

    from edge_pose import sinks
    from edge_pose.estimator import PoseEstimator
    from edge_pose.persons import make_person_source
    from edge_pose.pipeline import Pipeline
    from edge_pose.rotating import RotatingJsonlWriter
    from edge_pose.sources import open_source

    shown = []
    monkeypatch.setattr(sinks, "window_problem", lambda: None)
    monkeypatch.setattr(cv2, "namedWindow", lambda *a: None)
    monkeypatch.setattr(cv2, "imshow", lambda title, img: shown.append(img.copy()))
    monkeypatch.setattr(cv2, "waitKey", lambda ms: ord("q") if len(shown) == 5 else -1)
    monkeypatch.setattr(cv2, "getWindowProperty", lambda *a: 1.0)
    monkeypatch.setattr(cv2, "destroyWindow", lambda *a: None)
    jsonl = tmp_path / "f.jsonl"
    with open_source(CLIP) as src, PoseEstimator("mobilenetv3", threads=1) as est:
        window = sinks.WindowSink("test")
        writer = RotatingJsonlWriter(str(jsonl))
        summary = Pipeline(src, est, make_person_source("full-frame"), sinks=[window, writer]).run()
    assert 5 <= summary.finished < 150 and summary.finished == len(jsonl.read_text().splitlines())
    first = cv2.VideoCapture(str(CLIP)).read()[1]
    assert shown[0].shape == first.shape and np.abs(shown[0].astype(int) - first).mean() > 0.5  # drawn on


def test_the_service_default_config_is_valid():
    cfg = load_run_config(str(REPO / "edge_pose" / "data" / "service-config.yaml"))
    assert cfg.source.wait and cfg.http.port == 8080 and cfg.http.host == "127.0.0.1"
    assert cfg.outputs.jsonl.startswith("/var/lib/edge-pose/")  # the one place the unit lets it write
