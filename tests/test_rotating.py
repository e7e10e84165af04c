"""RotatingJsonlWriter: rotation at the size, valid JSONL, records conserved, backups capped, flushed lines."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edge_pose.rotating import RotatingJsonlWriter, record_json

REPO = Path(__file__).resolve().parents[1]


def frame_record(i, rng):
    """A frame record as the pipeline makes it (NumPy keypoints, a varying number of people)."""
    persons = []
    for t in range(int(rng.integers(0, 3))):
        kp = np.concatenate([rng.uniform(0, 640, (17, 2)), rng.uniform(0, 1, (17, 1))], axis=1).astype(np.float32)
        persons.append({"track_id": t, "box": [float(v) for v in rng.uniform(0, 300, 4)],
                        "score": np.float32(kp[:, 2].mean()), "keypoints": kp, "smoothed": None})
    return {"frame": i, "time": i / 30.0, "captured": 1.7e9 + i / 30.0, "persons": persons,
            "timings": {"infer": 4.2, "latency": 30.1}, "stats": {"fps": 29.9, "dropped": 0, "queues": {}}}


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]  # every line must parse


def test_rotates_at_the_size_keeps_records_and_caps_backups(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "out" / "frames.jsonl"
    max_bytes, backups = 12000, 3
    lines = [record_json(frame_record(i, rng)) for i in range(400)]
    assert max(map(len, lines)) < max_bytes // 3

    with RotatingJsonlWriter(path, max_bytes=max_bytes, backups=backups) as w:
        for line in lines:
            w.write(json.loads(line))
        files = w.files()
    assert w.count == 400
    assert files == [str(path)] + ["%s.%d" % (path, k) for k in range(1, backups + 1)]
    assert not os.path.exists("%s.%d" % (path, backups + 1))  # capped

    sizes = [os.path.getsize(f) for f in files]
    assert all(s <= max_bytes for s in sizes)
    # each rotation happened only when the next line would have passed max_bytes
    contents = [read_lines(f) for f in files]
    for older, newer in zip(contents[1:], contents[:-1]):
        older_size = sum(len(record_json(r)) + 1 for r in older)
        assert older_size + len(record_json(newer[0])) + 1 >= max_bytes
    # the kept records are the newest ones, contiguous and in order
    frames = [r["frame"] for c in reversed(contents) for r in c]
    assert frames == list(range(400 - len(frames), 400))
    assert 0 < len(frames) < 400


def test_records_conserved_when_nothing_is_dropped(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "frames.jsonl"
    records = [frame_record(i, rng) for i in range(120)]
    with RotatingJsonlWriter(path, max_bytes=8000, backups=50) as w:
        for r in records:
            w.write(r, image=np.zeros((4, 4, 3), np.uint8))
        files = w.files()
    assert len(files) > 3  # it did rotate
    got = [r for f in reversed(files) for r in read_lines(f)]
    assert len(got) == len(records)
    assert [r["frame"] for r in got] == list(range(120))
    # NumPy arrays and scalars came out as plain JSON numbers
    person = next(p for r in got for p in r["persons"])
    kp = np.asarray(person["keypoints"])
    assert kp.shape == (17, 3) and isinstance(person["score"], float)


def test_each_line_is_on_disk_without_close(tmp_path):
    """A crash (os._exit, no close) loses nothing already written: every write is flushed."""
    path = tmp_path / "frames.jsonl"
    code = ("import os, numpy as np\n"
            "from edge_pose.rotating import RotatingJsonlWriter\n"
            "w = RotatingJsonlWriter(%r, max_bytes=10**6)\n"
            "for i in range(25): w.write({'frame': i, 'kp': np.arange(3.0)})\n"
            "os._exit(3)\n" % str(path))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    rc = subprocess.run([sys.executable, "-c", code], env=env, timeout=120).returncode
    assert rc == 3
    assert [r["frame"] for r in read_lines(path)] == list(range(25))


def test_write_errors_are_raised_not_swallowed(tmp_path):
    w = RotatingJsonlWriter(tmp_path / "f.jsonl", max_bytes=1000)
    w._handler.stream.close()  # the file went away under the writer
    with pytest.raises(ValueError):
        w.write({"frame": 0})
    with pytest.raises(TypeError):
        w.write({"frame": object()})
    with pytest.raises(ValueError):
        RotatingJsonlWriter(tmp_path / "g.jsonl", max_bytes=-1)
    with RotatingJsonlWriter(tmp_path / "h.jsonl", max_bytes=0, backups=2) as never:  # 0: never rotates
        for i in range(200):
            never.write({"frame": i, "pad": "x" * 50})
    assert never.files() == [str(tmp_path / "h.jsonl")] and len((tmp_path / "h.jsonl").read_text().splitlines()) == 200


def test_time_rotation(tmp_path):
    path = tmp_path / "frames.jsonl"
    with RotatingJsonlWriter(path, when="S", interval=1, backups=2) as w:
        w.write({"frame": 0})
        time.sleep(1.2)
        w.write({"frame": 1})
        files = w.files()
    assert len(files) == 2 and files[0] == str(path)
    assert [r["frame"] for f in reversed(files) for r in read_lines(f)] == [0, 1]
