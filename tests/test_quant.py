"""INT8 calibration: calibration set, QDQ structure, numerical closeness on real crops, the accuracy gate."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxruntime.quantization")
from _quant_helpers import small_model  # noqa: E402
from onnx import numpy_helper  # noqa: E402

from edge_pose import cli  # noqa: E402
from edge_pose.preprocess import make_batch  # noqa: E402
from edge_pose.quant import calibrate, calibset, qdq  # noqa: E402


@pytest.fixture(scope="module")
def val_coco(shared_data):
    return shared_data / "coco_val_dev" / "person_keypoints.json"


@pytest.fixture(scope="module")
def crops(val_coco):
    """Real person crops (48) from coco_val_dev GT boxes, made by the calibration-set code."""
    sources = calibset.collect_candidates(coco=[val_coco])
    chosen = calibset.select(sources, 48, seed=1)
    return calibset.make_crops(chosen)


def run(path, x, kernels=True):
    """The model's output on x. kernels=False runs a QDQ model as written (Q -> DQ -> float Conv, no fusion into
    ONNX Runtime's int8 kernels): exactly the QDQ arithmetic, the same on every CPU, which is what TensorRT
    computes (int8 products, int32 sums). ONNX Runtime's own int8 kernels differ by CPU (qdq.cpu_int8_saturates)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    if not kernels:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": x})[0]


# ---- calibration set ------------------------------------------------------------------------------------------

def test_select_is_stratified_over_sources_and_images():
    def source(name, n_images, per_image):
        return (name, {"%s/%d" % (name, i): [calibset.Crop("image", "%s/%d.jpg" % (name, i), -1, [0, 0, 10, 10],
                                                           "p%d" % j) for j in range(per_image)]
                       for i in range(n_images)})

    big, small = source("big", 400, 1), source("crowd", 5, 20)  # 400 single persons; 5 images of 20 people
    chosen = calibset.select([big, small], 60, seed=0)
    assert len(chosen) == 60
    by_source = {"big": 0, "crowd": 0}
    for c in chosen:
        by_source[c.path.split("/")[0]] += 1
    assert by_source == {"big": 30, "crowd": 30}
    per_image = {}
    for c in chosen:
        per_image[c.path] = per_image.get(c.path, 0) + 1
    assert max(v for k, v in per_image.items() if k.startswith("crowd")) == 6  # round robin: 30 over 5 images
    assert calibset._quotas([3, 100], 50) == [3, 47]  # what one source lacks goes to the other


def test_coco_argument():
    assert calibset._coco_arg("a/b.json:imgs") == ("a/b.json", "imgs")
    assert calibset._coco_arg("a/b.json") == ("a/b.json", None)
    assert calibset._coco_arg("C:\\data\\b.json") == ("C:\\data\\b.json", None)


def test_select_warns_when_short(caplog):
    groups = {"a": [calibset.Crop("image", "a.jpg", -1, [0, 0, 5, 5], "")]}
    assert len(calibset.select([("s", groups)], 500)) == 1
    assert "only 1 crops" in caplog.text


def test_list_file_round_trip_makes_the_inference_crops(tmp_path, val_coco):
    sources = calibset.collect_candidates(coco=[val_coco])
    chosen = calibset.select(sources, 6, seed=3)
    path = calibset.write_list(chosen, tmp_path / "calibration" / "m.calib.tsv", comment="test")
    back = calibset.load_list(path)
    assert [(c.kind, c.frame, c.note) for c in back] == [(c.kind, c.frame, c.note) for c in chosen]
    assert all(not line.split("\t")[1].startswith("/") for line in path.read_text().splitlines()
               if not line.startswith("#"))  # relative to the list file
    x = calibset.make_crops(back)
    assert x.shape == (6, 3, 256, 192) and x.dtype == np.float32
    import cv2

    first = back[0]
    ref, _ = make_batch(cv2.imread(first.path), [first.box])
    np.testing.assert_allclose(x[0], ref[0], atol=0.02)  # boxes are recorded with 2 decimals


def test_video_and_folder_sources(tmp_path, shared_data):
    video = shared_data / "videos" / "sports2d_two_people.mp4"
    if not video.exists():
        pytest.skip("no video in the shared data")
    sources = calibset.collect_candidates(image_dirs=[shared_data / "images"], videos=[video], max_video_frames=4)
    chosen = calibset.select(sources, 8, seed=0)
    assert sorted(set(c.kind for c in chosen)) == ["image", "video"]
    back = calibset.load_list(calibset.write_list(chosen, tmp_path / "l.tsv"))
    assert calibset.make_crops(back).shape == (8, 3, 256, 192)


# ---- QDQ quantization -----------------------------------------------------------------------------------------

def _zero_points(model):
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return [inits[n.input[2]] for n in model.graph.node
            if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 2 and n.input[2] in inits]


@pytest.mark.parametrize("method", qdq.METHODS)
def test_quantize_writes_a_tensorrt_qdq_model_close_to_fp32(tmp_path, crops, method):
    src = small_model(tmp_path / "m.onnx")
    out = tmp_path / ("m.%s.onnx" % method)
    info = qdq.quantize(src, out, crops[:32], method=method, target="tensorrt", threads=1)
    model = onnx.load(str(out))
    s = info["summary"]
    assert s["QuantizeLinear"] > 0 and s["DequantizeLinear"] > 0
    assert s["int32_dequantize"] == 0  # bias stays float: TensorRT refuses int32 bias DequantizeLinear
    assert s["quantized_weights"] == 2 and s["per_channel_weights"] == 2
    zps = _zero_points(model)
    assert zps and all(z.dtype == np.int8 and not z.any() for z in zps)  # symmetric int8 everywhere
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["edge_pose.input_size"] == "[192, 256]"
    assert json.loads(meta["edge_pose.quantization"])["method"] == method
    assert info["reduce_range"] is False  # TensorRT has no saturating int8 kernels: full 8-bit weights
    # held-out real crops: the QDQ arithmetic (what TensorRT runs) close to FP32
    x = crops[32:40]
    ref, got = run(src, x), run(out, x, kernels=False)
    assert got.shape == ref.shape == (8, 17, 64, 48)
    rel_rms, corr = closeness(got, ref)
    print(method, "relative RMS error %.4f, correlation %.5f" % (rel_rms, corr))
    assert rel_rms < 0.05 and corr > 0.998, (rel_rms, corr)


def closeness(got, ref):
    """(relative RMS error, correlation) of an INT8 output against the FP32 one."""
    rel_rms = float(np.sqrt(np.mean((got - ref) ** 2)) / np.sqrt(np.mean(ref ** 2)))
    return rel_rms, float(np.corrcoef(got.ravel(), ref.ravel())[0, 1])


def test_entropy_uses_a_real_histogram(tmp_path, crops):
    """With quantize_static's 128/128 bins entropy would equal minmax; with 2048 bins it clips outliers."""
    src = small_model(tmp_path / "m.onnx")
    mm = qdq.compute_ranges(src, crops[:16], "minmax", threads=1, workdir=tmp_path)
    ent = qdq.compute_ranges(src, crops[:16], "entropy", threads=1, workdir=tmp_path)

    def hi(r, name):
        v = r[name]
        return float(np.max(np.abs(np.asarray(getattr(v, "range_value", v)[:2], dtype=np.float64))))

    assert any(hi(ent, k) < 0.99 * hi(mm, k) for k in ("c1", "r1", "heatmaps"))


def test_cpu_target_and_exclusions(tmp_path, crops):
    src = small_model(tmp_path / "dw.onnx", depthwise=True)
    out = tmp_path / "dw.cpu.onnx"
    assert qdq.DEFAULT_EXCLUDE["cpu"] == ("ConvTranspose",)
    info = qdq.quantize(src, out, crops[:16], method="minmax", target="cpu", threads=1,
                        exclude_op_types=["ConvTranspose", "DepthwiseConv"])
    assert info["excluded_nodes"] == 1
    # 7-bit weights exactly where ONNX Runtime's uint8 x int8 kernels saturate (x86 without VNNI)
    assert info["reduce_range"] is qdq.cpu_int8_saturates()
    model = onnx.load(str(out))
    assert any(z.dtype == np.uint8 for z in _zero_points(model))  # asymmetric uint8 activations
    dw = next(n for n in model.graph.node if n.name == "dwconv")
    assert dw.input[1] == "wd"  # the depthwise weight is not behind a DequantizeLinear
    x = crops[16:20]
    ref = run(src, x)
    np.testing.assert_allclose(run(out, x, kernels=False), ref, atol=0.1 * np.abs(ref).max())
    rel_rms, corr = closeness(run(out, x), ref)  # through this CPU's int8 kernels
    print("cpu target, int8 kernels: relative RMS error %.4f, correlation %.5f" % (rel_rms, corr))
    assert rel_rms < 0.05 and corr > 0.998, (rel_rms, corr)
    with pytest.raises(qdq.QuantizationError, match="no node named"):
        qdq.quantize(src, out, crops[:4], method="minmax", exclude_nodes=["nope"])


def test_reduce_range_choice(tmp_path, monkeypatch, crops):
    import platform

    flags = tmp_path / "cpuinfo"
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    flags.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma avx512f avx512bw\n")
    avx512 = {"AVX2": True, "AVX512F": True, "AVX512VNNI": False}
    assert qdq.cpu_int8_saturates(avx512, flags)  # AVX2 / AVX-512 without VNNI
    assert not qdq.cpu_int8_saturates(dict(avx512, AVX512VNNI=True), flags)
    flags.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx_vnni\n")
    assert not qdq.cpu_int8_saturates(avx512, flags)  # AVX-VNNI: in /proc/cpuinfo only
    flags.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n")
    assert not qdq.cpu_int8_saturates({}, flags)  # no CPUID table: the flags decide
    assert qdq.cpu_int8_saturates({}, tmp_path / "missing")  # an unknown x86: the safe choice
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    assert not qdq.cpu_int8_saturates({}, tmp_path / "missing")  # Jetson
    monkeypatch.setattr(qdq, "cpu_int8_saturates", lambda: True)
    assert qdq.resolve_reduce_range("auto", "cpu") and not qdq.resolve_reduce_range("auto", "tensorrt")
    assert qdq.resolve_reduce_range("on", "tensorrt") and not qdq.resolve_reduce_range("off", "cpu")
    with pytest.raises(qdq.QuantizationError, match="reduce_range"):
        qdq.resolve_reduce_range("yes", "cpu")
    # auto on this machine: ONNX Runtime's int8 kernels compute the QDQ arithmetic (with 8-bit weights an AVX2 CPU
    # is 0.04-0.09 relative RMS away from it on these models, more than the quantization error of 0.02)
    monkeypatch.undo()
    out = tmp_path / "auto.onnx"
    info = qdq.quantize(small_model(tmp_path / "m.onnx"), out, crops[:16], method="minmax", target="cpu", threads=1)
    assert info["reduce_range"] is qdq.cpu_int8_saturates()
    x = crops[16:20]
    rel_rms, _ = closeness(run(out, x), run(out, x, kernels=False))
    print("cpu target (reduce_range %s): int8 kernels vs QDQ arithmetic: relative RMS %.5f" % (info["reduce_range"],
                                                                                             rel_rms))
    assert rel_rms < 0.005, rel_rms
    # "on": every quantized weight within 7 bits
    out = tmp_path / "m7.onnx"
    info = qdq.quantize(small_model(tmp_path / "m.onnx"), out, crops[:8], method="minmax", target="cpu",
                        threads=1, reduce_range="on")
    assert info["reduce_range"] is True and info["weights"].startswith("int7")
    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(out)).graph.initializer}
    weights = [inits[n.input[0]] for n in onnx.load(str(out)).graph.node
               if n.op_type == "DequantizeLinear" and n.input[0] in inits and inits[n.input[0]].ndim == 4]
    assert len(weights) == 2 and all(np.abs(w.astype(int)).max() <= 64 for w in weights)
    assert max(np.abs(w.astype(int)).max() for w in weights) > 32  # the 7-bit range is used


# ---- accuracy gate --------------------------------------------------------------------------------------------

def test_decide():
    assert calibrate.decide(0.50, {"minmax": 0.495}, 0.01) == ("minmax", pytest.approx(0.005), True, True)
    chosen, drop, passed, write = calibrate.decide(0.50, {"minmax": 0.45, "entropy": 0.47, "percentile": 0.46}, 0.01)
    assert (chosen, passed, write) == ("entropy", False, False) and drop == pytest.approx(0.03)
    assert calibrate.decide(0.50, {"entropy": 0.47}, 0.01, force=True)[2:] == (False, True)
    assert calibrate.decide(0.5, {"minmax": 0.49, "entropy": 0.49}, 0.01)[0] == "minmax"  # ties: METHODS order


def _calibrate_argv(src, out, val_coco, tmp_path, *extra):
    return ["calibrate", "--model", str(src), "--out", str(out), "--calib-coco", str(val_coco), "--calib-crops", "16",
            "--calib-list-out", str(tmp_path / "calibration" / "m.calib.tsv"), "--eval-coco", str(val_coco),
            "--threads", "1", "--report", str(tmp_path / "report.json")] + list(extra)


def test_gate_refuses_a_damaged_model_and_force_writes_it(tmp_path, val_coco, monkeypatch, capsys):
    """The gate's wiring with a stand-in scorer: FP32 scores 0.62, any INT8 file 0.55 (a damaged model)."""
    src = small_model(tmp_path / "m.onnx")
    out = tmp_path / "m.int8.onnx"
    calls = []

    def fake_eval(path, coco, images, flip=False, threads=None):
        calls.append(str(path))
        return {"AP": 0.62 if str(path) == str(src) else 0.55, "AP50": 0.8, "n_persons": 107}

    monkeypatch.setattr(calibrate, "evaluate_model", fake_eval)
    rc = cli.main(_calibrate_argv(src, out, val_coco, tmp_path, "--method", "minmax"))
    err = capsys.readouterr().err
    assert rc == calibrate.EXIT_REFUSED and not out.exists()
    assert "0.5500" in err and "0.6200" in err and "refused" in err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["passed"] is False and report["written"] is None and report["int8"]["minmax"]["AP"] == 0.55
    assert (tmp_path / "calibration" / "m.calib.tsv").is_file()
    assert calls[0] == str(src) and len(calls) == 2

    rc = cli.main(_calibrate_argv(src, out, val_coco, tmp_path, "--method", "minmax", "--force"))
    assert rc == 0 and out.is_file() and "--force" in capsys.readouterr().err
    assert qdq.is_qdq(out)

    # a candidate within the limit passes; auto keeps the best method
    scores = {"minmax": 0.60, "percentile": 0.615, "entropy": 0.612}

    def fake_eval2(path, coco, images, flip=False, threads=None):
        if str(path) == str(src):
            return {"AP": 0.62}
        return {"AP": next(v for k, v in scores.items() if str(path).endswith(".%s.onnx" % k))}

    monkeypatch.setattr(calibrate, "evaluate_model", fake_eval2)
    out.unlink()
    rc = cli.main(_calibrate_argv(src, out, val_coco, tmp_path, "--method", "auto", "--calib-list",
                                  str(tmp_path / "calibration" / "m.calib.tsv")))
    assert rc == 0 and out.is_file()
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["chosen"] == "percentile" and report["passed"] is True
    assert json.loads({p.key: p.value for p in onnx.load(str(out)).metadata_props}["edge_pose.quantization"]
                      )["method"] == "percentile"

    # no --method with an eval set: auto (entropy alone failed the gate on both shipped models)
    out.unlink()
    rc = cli.main(_calibrate_argv(src, out, val_coco, tmp_path, "--calib-list",
                                  str(tmp_path / "calibration" / "m.calib.tsv")))
    report = json.loads((tmp_path / "report.json").read_text())
    assert rc == 0 and report["methods"] == list(qdq.METHODS) and report["chosen"] == "percentile"


def test_default_method_without_an_eval_set_is_minmax(tmp_path, crops):
    src = small_model(tmp_path / "m.onnx")
    report = calibrate.run(src, out=tmp_path / "m.int8.onnx", inputs=crops[:8], force=True, threads=1,
                           report_path=tmp_path / "report.json")
    assert report["methods"] == ["minmax"] and report["written"] == str(tmp_path / "m.int8.onnx")


def test_gate_needs_an_eval_set(tmp_path, val_coco):
    src = small_model(tmp_path / "m.onnx")
    with pytest.raises(SystemExit, match="--eval-coco"):
        calibrate.run(src, inputs=np.zeros((1, 3, 256, 192), np.float32))


def test_real_gate_refuses_a_damaged_shipped_model(tmp_path, val_coco):
    """End to end with the real scorer: a shipped model calibrated with a crippling percentile (50: half of
    every activation range clipped) loses AP and is refused; --force writes it. Needs a trained model."""
    from edge_pose.runtime import ModelNotFound, zoo

    try:
        src = zoo.resolve("mobilenetv3")
    except ModelNotFound:
        pytest.skip("shipped model mobilenetv3 not installed")
    fp32 = calibrate.evaluate_model(src, val_coco, calibset.coco_images_dir(val_coco), threads=1)
    if fp32["AP"] < 0.2:
        pytest.skip("the installed mobilenetv3 is not trained enough (AP %.3f) for an AP-drop test" % fp32["AP"])
    out = tmp_path / "damaged.int8.onnx"
    argv = _calibrate_argv(src, out, val_coco, tmp_path, "--method", "percentile", "--percentile", "50")
    assert cli.main(argv) == calibrate.EXIT_REFUSED and not out.exists()
    assert cli.main(argv + ["--force"]) == 0 and out.is_file()


def test_shuffle_free_selection_is_deterministic():
    groups = {str(i): [calibset.Crop("image", "%d.jpg" % i, -1, [0, 0, 1, 1], "")] for i in range(50)}
    a = calibset.select([("s", groups)], 10, seed=4)
    b = calibset.select([("s", groups)], 10, seed=4)
    assert a == b and a != calibset.select([("s", groups)], 10, seed=5)
    random.seed(0)  # select never touches the global RNG
    assert calibset.select([("s", groups)], 10, seed=4) == a
