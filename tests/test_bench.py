from __future__ import annotations

import json

import pytest
from _pose_helpers import tiny_pose_model

from edge_pose.cli import main as cli

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def test_bench_table_and_json(tmp_path, capsys):
    model = tiny_pose_model(tmp_path / "tiny.onnx")
    out = tmp_path / "bench.json"
    rc = cli(["bench", "--models", "%s,no-such-model" % model, "--frames", "4", "--repeat", "2",
              "--json-out", str(out)])
    stdout, err = capsys.readouterr()
    assert rc == 1 and "no-such-model" in err  # the unknown model is reported, the other still measured
    assert "b1 med ms" in stdout and "annotate FPS" in stdout and "tiny.onnx" in stdout
    data = json.loads(out.read_text())
    row = data["results"][0]
    assert row["backend"] == "onnxruntime" and set(row["latency"]) == {"1", "8"}
    assert row["latency"]["8"]["median_ms"] > 0 and row["latency"]["1"]["p90_ms"] >= row["latency"]["1"]["median_ms"]
    assert row["annotate"]["frames"] == 4 and row["annotate"]["fps"] > 0
    assert data["results"][1]["error"].startswith("unknown model") and data["machine"]["cpu_count"]
