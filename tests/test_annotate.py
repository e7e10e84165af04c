"""`edge-pose annotate`: output contract, bad inputs, interrupted runs, reruns; with a tiny ONNX model."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from _pose_helpers import REPO, SAMPLE, count_frames_pyav, short_clip, tiny_pose_model

from edge_pose.cli import main as cli

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
av = pytest.importorskip("av")

FINAL_SUFFIXES = (".mp4", ".jsonl", ".coco.json")


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("annotate_assets")
    return {"model": tiny_pose_model(root / "tiny.onnx"),
            "square": tiny_pose_model(root / "square.onnx", ("batch", 3, 224, 224)),
            "clip": short_clip(root / "clip.mp4", frames=12, width=320),
            "root": root}


def run(args, capsys):
    rc = cli(["annotate", "--quiet"] + [str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def error_lines(err):
    return [line for line in err.splitlines() if "error:" in line]


def outputs(out_dir, stem):
    return [out_dir / (stem + s) for s in FINAL_SUFFIXES]


def test_output_contract(assets, tmp_path, capsys):
    out = tmp_path / "out"
    rc, stdout, err = run([assets["clip"], "--out", out, "--model", assets["model"]], capsys)
    assert rc == 0, err
    n_in, fps_in, _ = count_frames_pyav(assets["clip"])
    video, jsonl, coco = outputs(out, "clip")
    n_out, fps_out, codec = count_frames_pyav(video)
    assert (n_out, codec) == (n_in, "h264") and fps_out == pytest.approx(fps_in)
    with av.open(str(video)) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv420p"
    lines = jsonl.read_text().splitlines()
    assert len(lines) == n_in
    records = [json.loads(line) for line in lines]
    assert [r["frame"] for r in records] == list(range(n_in))
    assert records[3]["time"] == pytest.approx(3 / fps_in, abs=1e-5)
    people = [p for r in records for p in r["persons"]]
    assert people, "the tiny model's confident peaks should give people"
    for p in people:
        assert set(p) == {"track_id", "box", "score", "keypoints", "smoothed"}
        assert len(p["box"]) == 4 and (p["track_id"] is None or isinstance(p["track_id"], int))
        assert np.asarray(p["keypoints"]).shape == (17, 3)
        assert p["smoothed"] is None or np.asarray(p["smoothed"]).shape == (17, 3)
    assert {"preprocess", "infer", "decode", "latency"} <= set(records[0]["timings"])
    assert records[-1]["stats"]["dropped"] == 0  # lossless: every frame of a file
    # COCO results: load with pycocotools against ground truth naming the frames
    from pycocotools.coco import COCO

    results = json.loads(coco.read_text())
    assert len(results) == len(people)
    assert all(r["category_id"] == 1 and len(r["keypoints"]) == 51 for r in results)
    gt = COCO()
    gt.dataset = {"images": [{"id": i, "width": 320, "height": 180} for i in range(n_in)], "annotations": [],
                  "categories": [{"id": 1, "name": "person"}]}
    gt.createIndex()
    dt = gt.loadRes(str(coco))
    assert len(dt.getAnnIds()) == len(results)
    # summary table and no temporary files left
    assert "clip.mp4" in stdout and "done" in stdout
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_rerun_skips_and_overwrite_redoes(assets, tmp_path, capsys):
    out = tmp_path / "out"
    assert run([assets["clip"], "--out", out, "--model", assets["model"], "--no-video"], capsys)[0] == 0
    assert not (out / "clip.mp4").exists() and (out / "clip.jsonl").exists()
    mtime = (out / "clip.jsonl").stat().st_mtime_ns
    rc, stdout, _ = run([assets["clip"], "--out", out, "--model", assets["model"], "--no-video"], capsys)
    assert rc == 0 and "skipped" in stdout and (out / "clip.jsonl").stat().st_mtime_ns == mtime
    rc, stdout, _ = run([assets["clip"], "--out", out, "--model", assets["model"], "--no-video", "--overwrite"],
                        capsys)
    assert rc == 0 and "done" in stdout and (out / "clip.jsonl").stat().st_mtime_ns != mtime


def test_bad_inputs_are_reported_and_the_rest_is_processed(assets, tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "notavideo.mp4").write_text("this is not a video")
    empty = bad / "empty.mp4"
    with av.open(str(empty), "w", format="mp4") as c:  # a valid container with no frames
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        c.start_encoding()
        for packet in s.encode(None):
            c.mux(packet)
    assert empty.stat().st_size > 0
    (bad / "zero.avi").write_bytes(b"")
    missing = tmp_path / "missing.mp4"
    out = tmp_path / "out"
    rc, stdout, err = run([missing, bad / "notavideo.mp4", assets["clip"], empty, bad / "zero.avi",
                           str(tmp_path / "nothing*.mkv"), "--out", out, "--model", assets["model"]], capsys)
    assert rc != 0
    lines = error_lines(err)
    assert len(lines) == 5, err
    expect = {"missing.mp4": "no such file", "notavideo.mp4": "cannot open as a video",
              "empty.mp4": "no video frames", "zero.avi": "empty file", "nothing*.mkv": "no video, image or folder"}
    for name, problem in expect.items():
        assert [line for line in lines if name in line and problem in line], (name, err)
    # the good input was still processed
    assert all(p.exists() for p in outputs(out, "clip"))
    for stem in ("notavideo", "empty", "zero", "missing"):
        assert not any(p.exists() for p in outputs(out, stem))
    assert "failed" in stdout and "done" in stdout


def test_unknown_model(assets, tmp_path, capsys):
    rc, _, err = run([assets["clip"], "--out", tmp_path / "out", "--model", "no-such-model"], capsys)
    lines = error_lines(err)
    assert rc != 0 and len(lines) == 1
    assert "unknown model 'no-such-model'" in lines[0] and "mobilenetv3" in lines[0]


def test_model_with_wrong_input_shape(assets, tmp_path, capsys):
    rc, _, err = run([assets["clip"], "--out", tmp_path / "out", "--model", assets["square"]], capsys)
    lines = error_lines(err)
    assert rc != 0 and len(lines) == 1
    assert "square.onnx" in lines[0] and "[N,3,224,224]" in lines[0] and "not compatible" in lines[0]


def test_output_folder_that_cannot_be_written(assets, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    for out in (blocker, blocker / "sub"):
        rc, _, err = run([assets["clip"], "--out", out, "--model", assets["model"]], capsys)
        lines = error_lines(err)
        assert rc != 0 and len(lines) == 1 and "output folder" in lines[0] and str(out) in lines[0]
    if os.geteuid() != 0:  # root writes anywhere: only a non-root run can test permissions
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            rc, _, err = run([assets["clip"], "--out", locked, "--model", assets["model"]], capsys)
            assert rc != 0 and "cannot be written" in err
        finally:
            locked.chmod(0o700)


def test_image_folder_and_python_api(assets, tmp_path, capsys):
    import edge_pose

    folder = tmp_path / "stills"
    folder.mkdir()
    cap = cv2.VideoCapture(str(assets["clip"]))
    for i in range(3):
        ok, img = cap.read()
        cv2.imwrite(str(folder / ("img%d.jpg" % i)), img)
    cap.release()
    out = tmp_path / "out"
    rc, _, err = run([folder, "--out", out, "--model", assets["model"]], capsys)
    assert rc == 0, err
    assert sorted(p.name for p in (out / "stills").iterdir()) == ["img0.jpg", "img1.jpg", "img2.jpg"]
    records = [json.loads(line) for line in (out / "stills.jsonl").read_text().splitlines()]
    assert [r["file"] for r in records] == ["img0.jpg", "img1.jpg", "img2.jpg"]
    assert all(r["time"] is None for r in records)

    with edge_pose.PoseEstimator(str(assets["model"])) as est:
        people = est(img)
        assert len(people) == 1 and people[0]["keypoints"].shape == (17, 3)
        assert people[0]["box"] == [0.0, 0.0, float(img.shape[1]), float(img.shape[0])]
        people = est(img, boxes=[[10, 10, 50, 100], [100, 20, 60, 120], [0, 0, 5, 5]])
        assert [p["box"][0] for p in people] == [10, 100, 0]
        assert est(img, boxes=[]) == []


def _wait_for(predicate, timeout, proc):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_interrupted_run_leaves_no_final_file_and_reruns(assets, tmp_path, capsys, sig):
    """Kill `edge-pose annotate` mid-video: no file under a final name; a rerun completes, a second skips."""
    out = tmp_path / "out"
    out.mkdir()
    cmd = [sys.executable, "-m", "edge_pose.cli", "annotate", str(SAMPLE), "--out", str(out),
           "--model", str(assets["model"]), "--quiet"]
    proc = subprocess.Popen(cmd, cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        def mid_video():  # the partial JSONL has flushed a few frames, the video is being written
            partial = [p for p in out.iterdir() if p.name.startswith(".two_people.jsonl.partial-")]
            return bool(partial) and partial[0].stat().st_size > 2000
        started = _wait_for(mid_video, 120, proc)
        assert started and proc.poll() is None, "annotate finished before it could be interrupted"
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    assert not any(p.exists() for p in outputs(out, "two_people")), sorted(os.listdir(out))
    leftovers = [p.name for p in out.iterdir()]
    if sig == signal.SIGTERM:  # a clean interrupt also removes its temporary files
        assert leftovers == []
    else:
        assert leftovers and all(name.startswith(".two_people.") and ".partial-" in name for name in leftovers)

    rc, stdout, err = run([SAMPLE, "--out", out, "--model", assets["model"]], capsys)
    assert rc == 0, err
    assert "done" in stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in outputs(out, "two_people"))
    n_in, _, _ = count_frames_pyav(SAMPLE)
    assert count_frames_pyav(out / "two_people.mp4")[0] == n_in
    assert len((out / "two_people.jsonl").read_text().splitlines()) == n_in

    rc, stdout, _ = run([SAMPLE, "--out", out, "--model", assets["model"]], capsys)
    assert rc == 0 and "skipped" in stdout


def test_interrupt_between_commits_takes_back_committed_outputs(assets, tmp_path, capsys, monkeypatch):
    """Outputs are all or nothing: an interrupt after the video is renamed but before the JSONL is removes it."""
    from edge_pose import sinks

    def interrupted_close(self):
        raise KeyboardInterrupt("between commits")

    monkeypatch.setattr(sinks.JsonlWriter, "close", interrupted_close)
    out = tmp_path / "out"
    rc, _, _ = run([assets["clip"], "--out", out, "--model", assets["model"]], capsys)
    assert rc == 130  # the CLI reports the interrupt
    assert not any(p.exists() for p in outputs(out, "clip")), sorted(os.listdir(out))
