"""A keypoint teacher (MoveNet's signature) as distillation heatmaps: letterboxed into its square input, its
keypoints land back on the student's crop and decode to themselves, with its scores as the peaks."""
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

from edge_pose.decode import decode_heatmaps, heatmap_to_input  # noqa: E402
from edge_pose.preprocess import normalize  # noqa: E402
from edge_pose.train.keypoint_teacher import KeypointTeacher, denormalize, is_keypoint_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MOVENET = REPO / "teachers" / "movenet_thunder.onnx"


def fixed_keypoint_model(path, yxs, side=64):
    """An ONNX model with MoveNet's signature, (1, side, side, 3) int32 -> (1, 1, 17, 3), that answers every
    image with `yxs` (it reads the image only to multiply it by zero)."""
    const = helper.make_tensor("kp", TensorProto.FLOAT, [1, 1, 17, 3], np.asarray(yxs, np.float32).ravel())
    nodes = [helper.make_node("Cast", ["image"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("ReduceMean", ["f"], ["m"], keepdims=0),
             helper.make_node("Constant", [], ["zero"], value=helper.make_tensor("z", TensorProto.FLOAT, [], [0.0])),
             helper.make_node("Mul", ["m", "zero"], ["m0"]),
             helper.make_node("Constant", [], ["kp_c"], value=const),
             helper.make_node("Add", ["kp_c", "m0"], ["keypoints"])]
    image = helper.make_tensor_value_info("image", TensorProto.INT32, [1, side, side, 3])
    graph = helper.make_graph(nodes, "fixed", [image],
                              [helper.make_tensor_value_info("keypoints", TensorProto.FLOAT, [1, 1, 17, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return str(path)


def test_denormalize_inverts_normalize():
    crops = np.random.default_rng(0).integers(0, 256, (2, 16, 12, 3), dtype=np.uint8)
    assert np.array_equal(denormalize(normalize(crops)), crops)


@pytest.mark.parametrize("crop_size", [(192, 256), (96, 128)])
def test_keypoints_map_back_through_the_letterbox(tmp_path, crop_size):
    """A 3:4 crop is scaled to the teacher's side and padded left and right: a keypoint the teacher puts at
    (x, y) of its square input is at ((x * (S-1) - pad) / scale, y * (S-1) / scale) of the crop, and the
    heatmaps decode to it (DARK, under 0.1 heatmap px) with the teacher's score as the peak (read at the
    nearest pixel)."""
    rng = np.random.default_rng(1)
    side, (w, h) = 64, crop_size
    scale, pad = side / h, (side - round(w * side / h)) // 2
    want_xy = np.stack([rng.uniform(10, w - 10, 17), rng.uniform(10, h - 10, 17)], 1)
    scores = rng.uniform(0.2, 0.95, 17)
    yxs = np.stack([want_xy[:, 1] * scale / (side - 1), (want_xy[:, 0] * scale + pad) / (side - 1), scores], 1)
    teacher = KeypointTeacher(fixed_keypoint_model(tmp_path / "kp.onnx", yxs, side), sigma=2.0)
    crops = rng.integers(0, 256, (2, h, w, 3), dtype=np.uint8)
    got = teacher.keypoints(crops)
    assert np.allclose(got[:, :, :2], want_xy[None], atol=1e-3)
    assert np.allclose(got[:, :, 2], scores[None], atol=1e-6)
    heat = teacher.infer(normalize(crops))
    assert heat.shape == (2, 17, h // 4, w // 4)
    coords_hm, peaks = decode_heatmaps(heat, "dark")
    assert np.abs(heatmap_to_input(coords_hm, (w, h), (w // 4, h // 4)) - want_xy[None]).max() < 0.1 * 4
    # the peak is read at the nearest heatmap pixel: at most half a pixel from the centre on each axis
    assert np.all(peaks <= scores[None] + 1e-6) and np.all(peaks >= np.exp(-0.5 / (2 * 2.0 ** 2)) * scores[None])


def test_heatmap_models_are_not_keypoint_models(tmp_path):
    assert not is_keypoint_model(REPO / "engines" / "mobilenetv3.onnx")
    assert is_keypoint_model(fixed_keypoint_model(tmp_path / "kp.onnx", np.full((17, 3), 0.5)))
    with pytest.raises(ValueError, match="not a keypoint model"):
        KeypointTeacher(REPO / "engines" / "mobilenetv3.onnx")


def test_load_teacher_renders_a_keypoint_model(tmp_path):
    torch = pytest.importorskip("torch")
    from edge_pose.train.loop import load_teacher

    yxs = np.tile([0.5, 0.5, 0.8], (17, 1))
    teacher = load_teacher(fixed_keypoint_model(tmp_path / "kp.onnx", yxs), torch.device("cpu"), sizes=[(192, 256)])
    heat = teacher(torch.zeros(3, 3, 256, 192)).numpy()
    assert heat.shape == (3, 17, 64, 48)
    assert np.allclose(heat.max(axis=(2, 3)), 0.8, rtol=0.07)


def test_hard_pseudo_labels_have_unit_peaks_and_drop_unsure_joints(tmp_path):
    """distill.min_score: a joint the teacher scores at least min_score is a target with peak 1 at the teacher's
    keypoint; below it the joint is out of the loss whatever the student predicts there. Soft targets (the
    default) keep the teacher's scores as peaks."""
    torch = pytest.importorskip("torch")
    from edge_pose.train.losses import distill_loss

    rng = np.random.default_rng(2)
    scores = np.where(np.arange(17) % 2 == 0, 0.6, 0.1)
    yxs = np.stack([rng.uniform(0.2, 0.8, 17), rng.uniform(0.3, 0.7, 17), scores], 1)
    teacher = KeypointTeacher(fixed_keypoint_model(tmp_path / "kp.onnx", yxs), sigma=2.0)
    heat = torch.from_numpy(teacher.infer(normalize(rng.integers(0, 256, (2, 256, 192, 3), dtype=np.uint8))))
    keep = torch.from_numpy(scores >= 0.3)
    unit = heat / heat.amax(dim=(2, 3), keepdim=True)
    student = torch.where(keep[None, :, None, None], unit, torch.rand_like(heat))
    assert float(distill_loss(student, heat, 0.3)) == 0.0
    assert float(distill_loss(heat, heat, 0.3)) > 1e-5  # the teacher's own 0.6 peaks fall short of 1
    assert float(distill_loss(heat, heat)) == 0.0 and float(distill_loss(student, heat)) > 1e-3
    _, peaks = decode_heatmaps(unit[:, keep].numpy(), "dark")
    assert np.allclose(peaks, 1.0, atol=1e-6)


@pytest.mark.skipif(not MOVENET.exists(), reason="MoveNet teacher not converted (python scripts/movenet_onnx.py)")
def test_movenet_teacher_scores_on_coco_val_dev(shared_data):
    """Through the student's GT-box crops MoveNet Thunder is a teacher worth having: AP 0.52 measured."""
    from edge_pose.train.evaluate import evaluate_predict_fn

    teacher = KeypointTeacher(MOVENET)
    metrics = evaluate_predict_fn(teacher.infer, shared_data / "coco_val_dev" / "person_keypoints.json",
                                  shared_data / "coco_val_dev" / "images", progress=False)
    assert metrics["AP"] >= 0.45


def test_a_missing_teacher_is_a_config_error(tmp_path):
    torch = pytest.importorskip("torch")
    from edge_pose.config import ConfigError
    from edge_pose.train.loop import load_teacher

    with pytest.raises(ConfigError, match="scripts/movenet_onnx.py"):
        load_teacher(str(tmp_path / "movenet_thunder.onnx"), torch.device("cpu"))
