from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_pose import detectors
from edge_pose.detectors import HogDetector, YoloDetector, decode_yolo, letterbox, make_detector
from edge_pose.persons import box_iou

# a frame 500 wide, 200 high into a 320 x 256 (w x h) model: ratio 0.64, letterboxed 320 x 128, 64 px bands
FRAME_W, FRAME_H, IN_W, IN_H = 500, 200, 320, 256
RATIO, TOP = 0.64, 64


def to_input(box):
    """Frame box [x, y, w, h] -> YOLO (cx, cy, w, h) in the letterboxed input."""
    x, y, w, h = box
    return [RATIO * (x + w / 2), RATIO * (y + h / 2) + TOP, RATIO * w, RATIO * h]


# candidates: frame box, person score, other-class score
CANDIDATES = [
    ([100, 50, 50, 100], 0.9, 0.1),  # A: kept
    ([101, 51, 50, 100], 0.8, 0.1),  # A again, lower score: removed by NMS
    ([200, 60, 40, 80], 0.6, 0.7),  # another class scores higher: not a person
    ([350, 60, 40, 80], 0.2, 0.0),  # below conf
    ([300, 20, 60, 150], 0.5, 0.2),  # B: kept
    ([450, 100, 100, 150], 0.4, 0.0),  # C: kept, clipped to the frame
] + [([0, 0, 10, 10], 0.0, 0.0)] * 4  # empty anchors: YOLO outputs many more candidates than channels
EXPECTED_BOXES = [[100, 50, 50, 100], [300, 20, 60, 150], [450, 100, 50, 100]]
EXPECTED_SCORES = [0.9, 0.5, 0.4]


def yolo_output():
    """[1, 4 + 2 classes, N] as a YOLO export writes it."""
    cols = [to_input(box) + [person, other] for box, person, other in CANDIDATES]
    return np.asarray(cols, dtype=np.float32).T[None]


def yolo_onnx(path, out):
    """An ONNX 'detector' [1, 3, 256, 320] -> out + 0 * mean(input): fixed detections, a real input."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["images"], ["mean"], axes=[1, 2, 3], keepdims=0),
         helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
         helper.make_node("Add", ["dets", "nothing"], ["output0"])],
        "yolo_stub",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, IN_H, IN_W])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(out.shape))],
        initializer=[numpy_helper.from_array(out, "dets"), numpy_helper.from_array(np.zeros(1, np.float32), "zero")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_letterbox():
    frame = np.zeros((FRAME_H, FRAME_W, 3), np.uint8)
    frame[:, :250] = 255
    image, ratio, pad = letterbox(frame, (IN_W, IN_H))
    assert image.shape == (IN_H, IN_W, 3) and ratio == pytest.approx(RATIO) and pad == (0, TOP)
    assert (image[:TOP] == detectors.PAD_VALUE).all() and (image[TOP + 128:] == detectors.PAD_VALUE).all()
    assert (image[TOP:TOP + 128, :158] == 255).all() and (image[TOP:TOP + 128, 162:] == 0).all()


def test_yolo_detector_on_an_onnx_graph(tmp_path):
    pytest.importorskip("onnxruntime")
    path = yolo_onnx(tmp_path / "det.onnx", yolo_output())
    det = make_detector(str(path), threads=1)
    assert isinstance(det, YoloDetector) and det.input_size == (IN_W, IN_H)
    x, ratio, pad = det.preprocess(np.zeros((FRAME_H, FRAME_W, 3), np.uint8))
    assert x.shape == (1, 3, IN_H, IN_W) and x.dtype == np.float32 and x.max() <= 1.0
    boxes, scores = det(np.full((FRAME_H, FRAME_W, 3), 90, np.uint8))
    np.testing.assert_allclose(boxes, EXPECTED_BOXES, atol=1e-3)
    np.testing.assert_allclose(scores, EXPECTED_SCORES, atol=1e-6)
    assert det.ms > 0
    strict = YoloDetector(str(path), threads=1, conf=0.55)
    np.testing.assert_allclose(strict(np.zeros((FRAME_H, FRAME_W, 3), np.uint8))[1], [0.9])
    # a looser NMS keeps the near-duplicate of A
    loose = YoloDetector(str(path), threads=1, iou=0.99)
    assert len(loose(np.zeros((FRAME_H, FRAME_W, 3), np.uint8))[0]) == 4


def test_yolo_decoder_layouts_and_empty():
    out = yolo_output()
    a = decode_yolo(out, RATIO, (0, TOP), (FRAME_H, FRAME_W))
    b = decode_yolo(out.transpose(0, 2, 1), RATIO, (0, TOP), (FRAME_H, FRAME_W))  # [1, N, 4 + classes]
    c = decode_yolo(out[:, :, :6], RATIO, (0, TOP), (FRAME_H, FRAME_W), channels_first=True)  # 6 x 6: told
    np.testing.assert_allclose(a[0], EXPECTED_BOXES, atol=1e-3)
    np.testing.assert_allclose(b[0], a[0])
    np.testing.assert_allclose(c[0], a[0])
    # a YOLO-pose layout: one person score, then keypoint channels (large values that are not classes)
    pose = np.concatenate([out[:, :5], np.full((1, 51, out.shape[2]), 50.0, np.float32)], axis=1)
    d = decode_yolo(pose, RATIO, (0, TOP), (FRAME_H, FRAME_W), num_classes=1, channels_first=True)
    np.testing.assert_allclose(d[1], [0.9, 0.6, 0.5, 0.4])  # class 1 is gone: the 0.6 candidate is a person
    none = decode_yolo(out, RATIO, (0, TOP), (FRAME_H, FRAME_W), conf=0.95)
    assert none[0].shape == (0, 4) and none[1].shape == (0,)
    with pytest.raises(ValueError, match="YOLO output"):
        decode_yolo(np.zeros((1, 3, 10)))


def test_make_detector():
    assert make_detector("none") is None and make_detector(None) is None
    with pytest.raises(ValueError, match="unknown detector"):
        make_detector("ssd")
    with pytest.raises(ValueError, match="onnxruntime"):
        YoloDetector("x.onnx", backend="torch")


def test_hog_missing_says_how_to_get_it(monkeypatch):
    monkeypatch.delattr(cv2, "HOGDescriptor", raising=False)
    with pytest.raises(RuntimeError, match="opencv-contrib-python-headless"):
        make_detector("hog")


needs_hog = pytest.mark.skipif(not hasattr(cv2, "HOGDescriptor"), reason="OpenCV %s has no HOG (OpenCV 5: "
                               "opencv-contrib-python-headless)" % cv2.__version__)


@needs_hog
def test_hog_finds_coco_people(shared_data):
    """On the complete coco_val_dev images HOG finds some standing people, and its confident boxes are people."""
    from edge_pose.train.evaluate import load_coco

    data = shared_data / "coco_val_dev"
    dataset = load_coco(data / "person_keypoints.json")
    by_image = {}
    for a in dataset["annotations"]:
        if not a.get("iscrowd"):
            by_image.setdefault(a["image_id"], []).append(a["bbox"])
    det = make_detector("hog")
    assert isinstance(det, HogDetector)
    found, confident, on_people = 0, 0, 0  # GT people found (IoU >= 0.5); detections scoring >= 1, on a person
    for image in dataset["images"]:
        if not image.get("annotations_complete"):
            continue
        boxes, scores = det(cv2.imread(str(data / "images" / image["file_name"])))
        gt = np.asarray(by_image.get(image["id"], np.zeros((0, 4))), dtype=np.float64).reshape(-1, 4)
        if len(boxes) and len(gt):
            iou = box_iou(gt, boxes)
            found += int((iou.max(axis=1) >= 0.5).sum())
            strong = scores >= 1.0
            confident += int(strong.sum())
            on_people += int((iou[:, strong].max(axis=0) >= 0.2).sum())
        else:
            confident += int((scores >= 1.0).sum())
    assert found >= 5  # of the 54 people (most are not upright pedestrians, which is what HOG knows)
    assert confident >= 5 and on_people >= 0.6 * confident  # measured: 7 of 10 (OpenCV 5.0 contrib)


@needs_hog
def test_hog_on_a_video_frame(shared_data):
    """sports2d frame 0: the man standing on the box (centre about (645, 265), 400 px tall) is found."""
    cap = cv2.VideoCapture(str(shared_data / "videos" / "sports2d_two_people.mp4"))
    ok, frame = cap.read()
    cap.release()
    assert ok
    boxes, scores = HogDetector()(frame)
    assert len(boxes) >= 1 and np.all(np.diff(scores) <= 0)
    centre = boxes[0, :2] + 0.5 * boxes[0, 2:]
    assert abs(centre[0] - 645) < 60 and abs(centre[1] - 265) < 80 and 250 < boxes[0, 3] < 550
