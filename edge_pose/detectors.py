"""Person detectors: a frame in, person boxes out, all with one call signature.

    det = make_detector("hog")                   # or "path/to/yolo.onnx"
    boxes, scores = det(frame_bgr)               # float (N, 4) [x, y, w, h] frame pixels, (N,) best first

- `HogDetector`: OpenCV's HOG + linear SVM people detector (Dalal & Triggs); no download. OpenCV 5 moved it
  to the contrib build (`pip install opencv-contrib-python-headless`); OpenCV 4 has it built in.
- `YoloDetector`: any ONNX detector with the common YOLO output layout [1, 4 + classes, N] (cx, cy, w, h in
  input pixels, then one score per class; person = class 0), letterboxed input, through ONNX Runtime.

A person source (`persons.DetectorSource`) uses a detector to find people; between detections each person
is followed by its own keypoints.
"""
from __future__ import annotations

import time

import cv2
import numpy as np

from edge_pose.closing import Closing

PAD_VALUE = 114  # grey letterbox border, as YOLO models are trained with


def _empty():
    return np.zeros((0, 4)), np.zeros(0)


def nms(boxes, scores, min_score, iou):
    """Indices of the boxes ([x, y, w, h]) kept by non-maximum suppression, best score first."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if not len(boxes):
        return np.zeros(0, dtype=int)
    keep = cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), float(min_score), float(iou))
    keep = np.asarray(keep, dtype=int).reshape(-1)
    return keep[np.argsort(-scores[keep], kind="stable")]


class Detector(Closing):
    """Base of person detectors: `det(frame_bgr) -> (boxes (N, 4) [x, y, w, h], scores (N,))`, best first.

    `ms` holds the milliseconds of the last call.
    """

    name = "detector"
    ms = 0.0

    def detect(self, frame_bgr):
        raise NotImplementedError

    def __call__(self, frame_bgr):
        t0 = time.perf_counter()
        boxes, scores = self.detect(frame_bgr)
        self.ms = 1e3 * (time.perf_counter() - t0)
        return boxes, scores


def hog_descriptor():
    """cv2.HOGDescriptor with the default people SVM; RuntimeError naming the fix when this OpenCV lacks it."""
    if not hasattr(cv2, "HOGDescriptor"):
        raise RuntimeError(
            "OpenCV %s has no HOG people detector: OpenCV 5 moved it to the contrib build "
            "(pip install opencv-contrib-python-headless, in place of opencv-python-headless; OpenCV 4 has it "
            "built in), or pass an ONNX person detector (--detector yolo.onnx)" % cv2.__version__)
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    return hog


class HogDetector(Detector):
    """OpenCV's HOG people detector (64x128 window) over an image pyramid.

    The frame is resized to `width` pixels wide first (down for speed, up so that people smaller than the
    window's 128 px can be found), then scanned with `win_stride`, `padding`, pyramid step `scale`.
    Detections with an SVM margin below `min_score` are dropped and the rest go through NMS at `iou`.
    The HOG window holds a margin around the person: boxes are returned shrunk about their centre by
    `box_scale` (width, height factors) to roughly the person's own extent, as a pose model's boxes expect.
    Scores are SVM margins (about 0..3), not probabilities.
    """

    name = "hog"

    def __init__(self, width=640, win_stride=(8, 8), padding=(8, 8), scale=1.05, min_score=0.3, iou=0.4,
                 box_scale=(0.7, 0.85), group_threshold=0):
        self.hog = hog_descriptor()
        self.width = int(width)
        self.win_stride = tuple(int(v) for v in win_stride)
        self.padding = tuple(int(v) for v in padding)
        self.scale = float(scale)
        self.min_score = float(min_score)
        self.iou = float(iou)
        self.box_scale = tuple(float(v) for v in box_scale)
        self.group_threshold = int(group_threshold)

    def detect(self, frame_bgr):
        h, w = frame_bgr.shape[:2]
        f = self.width / float(w) if self.width > 0 else 1.0
        image = frame_bgr
        if abs(f - 1.0) > 1e-3:
            image = cv2.resize(frame_bgr, (self.width, max(1, int(round(h * f)))),
                               interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
        rects, weights = self.hog.detectMultiScale(image, 0.0, self.win_stride, self.padding, self.scale,
                                                   float(self.group_threshold), False)
        if len(rects) == 0:
            return _empty()
        boxes = np.asarray(rects, dtype=np.float64).reshape(-1, 4) / f
        scores = np.asarray(weights, dtype=np.float64).reshape(-1)
        keep = nms(boxes, scores, self.min_score, self.iou)
        boxes, scores = boxes[keep], scores[keep]
        centre = boxes[:, :2] + 0.5 * boxes[:, 2:]
        size = boxes[:, 2:] * np.asarray(self.box_scale)
        return np.concatenate([centre - 0.5 * size, size], axis=1), scores


def letterbox(image_bgr, size):
    """Resize keeping the aspect ratio and pad (grey) to `size` (width, height).

    Returns (image (H, W, 3), ratio, (left, top)): frame point p maps to p * ratio + (left, top).
    """
    out_w, out_h = int(size[0]), int(size[1])
    h, w = image_bgr.shape[:2]
    ratio = min(out_w / float(w), out_h / float(h))
    new_w, new_h = max(1, int(round(w * ratio))), max(1, int(round(h * ratio)))
    left, top = (out_w - new_w) // 2, (out_h - new_h) // 2
    canvas = np.full((out_h, out_w, 3), PAD_VALUE, dtype=np.uint8)
    resized = image_bgr if (new_w, new_h) == (w, h) else cv2.resize(image_bgr, (new_w, new_h),
                                                                    interpolation=cv2.INTER_LINEAR)
    canvas[top:top + new_h, left:left + new_w] = resized
    return canvas, ratio, (left, top)


def decode_yolo(output, ratio=1.0, pad=(0, 0), frame_shape=None, conf=0.25, iou=0.45, person_class=0,
                max_detections=300, channels_first=None, num_classes=None):
    """YOLO output [1, 4 + classes, N] (or [1, N, 4 + classes]) -> person (boxes [x, y, w, h], scores).

    channels_first: True for [1, 4 + classes, N], False for [1, N, 4 + classes], None: the longer axis holds
    the N candidates (exports have thousands). num_classes: class channels after the 4 box channels (None:
    all of the rest; 1 for a YOLO-pose export, whose keypoint channels follow its one person score).
    A candidate is a person when its best class is `person_class` with a score >= conf; boxes (cx, cy, w, h
    in letterboxed input pixels) are mapped back to the frame through `ratio` and `pad` (see `letterbox`),
    clipped to frame_shape (h, w), and go through NMS at `iou`.
    """
    out = np.asarray(output, dtype=np.float64)
    out = out.reshape(out.shape[-2:]) if out.ndim == 3 else out
    if out.ndim != 2 or min(out.shape) < 5:
        raise ValueError("expected a YOLO output [1, 4 + classes, N], got shape %s" % (np.shape(output),))
    if (out.shape[0] > out.shape[1]) if channels_first is None else not channels_first:
        out = out.T  # [N, 4 + classes] -> [4 + classes, N]
    cls = out[4:] if num_classes is None else out[4:4 + int(num_classes)]
    if person_class >= len(cls):
        raise ValueError("person class %d, but the model outputs %d classes" % (person_class, len(cls)))
    scores = cls[person_class]
    keep = (scores >= conf) & (cls.argmax(axis=0) == person_class)
    if not keep.any():
        return _empty()
    cx, cy, bw, bh = out[:4, keep]
    scores = scores[keep]
    x0 = (cx - 0.5 * bw - pad[0]) / ratio
    y0 = (cy - 0.5 * bh - pad[1]) / ratio
    x1 = (cx + 0.5 * bw - pad[0]) / ratio
    y1 = (cy + 0.5 * bh - pad[1]) / ratio
    if frame_shape is not None:
        fh, fw = frame_shape[:2]
        x0, x1 = np.clip(x0, 0, fw), np.clip(x1, 0, fw)
        y0, y1 = np.clip(y0, 0, fh), np.clip(y1, 0, fh)
    boxes = np.stack([x0, y0, x1 - x0, y1 - y0], axis=1)
    ok = (boxes[:, 2] > 1) & (boxes[:, 3] > 1)
    boxes, scores = boxes[ok], scores[ok]
    keep = nms(boxes, scores, conf, iou)[:max_detections]
    return boxes[keep], scores[keep]


class YoloDetector(Detector):
    """An ONNX detector with YOLO's output layout (YOLOv5u/v8/11 exports), persons only.

    path: the .onnx; backend: "auto" or "onnxruntime"; device: "cpu" or "cuda[:N]"; threads: CPU threads;
    conf: least person score; iou: NMS overlap; num_classes: see decode_yolo (1 for a YOLO-pose export).
    The input size is read from the model (640 when dynamic).
    """

    name = "yolo"

    def __init__(self, path, backend="auto", device="cpu", threads=None, conf=0.25, iou=0.45, person_class=0,
                 num_classes=None, default_size=640):
        if backend not in ("auto", "onnxruntime"):
            raise ValueError("a YOLO detector runs through onnxruntime, not %r" % (backend,))
        from edge_pose.runtime.ort_backend import open_session

        self.path = str(path)
        self.session = open_session(self.path, device=device, threads=threads)
        inp = self.session.get_inputs()[0]
        if len(inp.shape) != 4:
            raise ValueError("%s takes input of shape %s; a YOLO detector takes [1, 3, H, W]" % (path, inp.shape))
        dims = [d if isinstance(d, int) and d > 0 else int(default_size) for d in inp.shape[2:]]
        self.input_name = inp.name
        self.input_size = (dims[1], dims[0])  # (width, height)
        self.conf, self.iou, self.person_class = float(conf), float(iou), int(person_class)
        self.num_classes = num_classes

    def preprocess(self, frame_bgr):
        """Letterboxed RGB float32 [1, 3, H, W] in 0..1, ratio, pad."""
        image, ratio, pad = letterbox(frame_bgr, self.input_size)
        x = image[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255.0
        return np.ascontiguousarray(x), ratio, pad

    def detect(self, frame_bgr):
        x, ratio, pad = self.preprocess(frame_bgr)
        out = self.session.run(None, {self.input_name: x})[0]
        return decode_yolo(out, ratio, pad, frame_bgr.shape, self.conf, self.iou, self.person_class,
                           num_classes=self.num_classes)

    def close(self):
        self.session = None


def make_detector(spec="hog", **options):
    """A detector by spec: "hog", "none" (None: no detector) or a path to an .onnx YOLO-layout detector.

    options go to the detector's constructor (e.g. threads=1, conf=0.3 for YOLO; width=800 for HOG).
    """
    if spec is None or isinstance(spec, Detector):
        return spec
    text = str(spec)
    if text.lower() == "none":
        return None
    if text.lower() == "hog":
        return HogDetector(**options)
    if text.lower().endswith(".onnx"):
        return YoloDetector(text, **options)
    raise ValueError("unknown detector %r (choose hog, none, or a path to a YOLO-layout .onnx)" % (text,))
