"""The INT8 calibration set: person crops made exactly as at inference, and the list file that records them.

Sources (any mix, see `collect_candidates`):
- a COCO keypoints json: one crop per person with keypoints, from its ground-truth box;
- an image folder: one crop per image, the whole image as the person box (as `persons.FullFrame` does);
- a video: frames sampled evenly over its length, the whole frame as the box.

`select` picks `n` crops stratified first over sources (an equal share each, what one source lacks goes to
the others), then over images within a source (one person per image per round, images in random order), so
that neither a big source nor a crowded image dominates. The chosen crops are written to a list file
(`calibration/<model>.calib.tsv` by default) that `load_list` reads back, so that the QDQ calibration and
TensorRT's implicit calibrator see the same crops.

List file: tab-separated `kind  path  frame  x  y  w  h  note` (kind `image` or `video`; frame -1 for
images; box in pixels, COCO [x, y, w, h]); `#` lines are comments; relative paths are relative to the list
file's folder.
"""
from __future__ import annotations

import json
import logging
import os
import random
import time
from collections import OrderedDict, namedtuple
from pathlib import Path

import cv2
import numpy as np

from edge_pose.preprocess import INPUT_SIZE, make_batch

log = logging.getLogger(__name__)

DEFAULT_CROPS = 500
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
LIST_HEADER = "# edge-pose calibration list v1: kind\tpath\tframe\tx\ty\tw\th\tnote"

Crop = namedtuple("Crop", "kind path frame box note")
Crop.__doc__ = """One calibration crop: kind ("image" / "video"), path, frame index (-1 for images),
box [x, y, w, h] in pixels, note (where it came from)."""


class CalibrationError(ValueError):
    """A calibration source or list that cannot be used; the message says why."""


def coco_images_dir(coco_json):
    """Images folder of a COCO json: `images/` next to it when present, else the json's own folder."""
    folder = Path(coco_json).parent
    return folder / "images" if (folder / "images").is_dir() else folder


def coco_candidates(coco_json, images_dir=None):
    """{image key: [Crop]} for every non-crowd person with keypoints and a positive-size box."""
    images_dir = Path(images_dir) if images_dir else coco_images_dir(coco_json)
    with open(coco_json, encoding="utf-8") as f:
        data = json.load(f)
    images = {im["id"]: im for im in data.get("images", [])}
    groups = OrderedDict()
    for ann in data.get("annotations", []):
        box = ann.get("bbox") or []
        if ann.get("iscrowd", 0) or ann.get("num_keypoints", 0) <= 0 or len(box) < 4 or box[2] <= 1 or box[3] <= 1:
            continue
        image = images.get(ann["image_id"])
        if image is None:
            continue
        path = images_dir / image["file_name"]
        groups.setdefault(str(path), []).append(
            Crop("image", str(path), -1, [float(v) for v in box[:4]], "coco ann %s" % ann.get("id")))
    if not groups:
        raise CalibrationError("%s: no person with keypoints and a box" % coco_json)
    return groups


def folder_candidates(folder):
    """{image path: [Crop of the whole image]} for the images of a folder (sizes read lazily: box None)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CalibrationError("%s: not a folder of images" % folder)
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise CalibrationError("%s: no images (%s)" % (folder, ", ".join(IMAGE_SUFFIXES)))
    return OrderedDict((str(p), [Crop("image", str(p), -1, None, "whole image")]) for p in paths)


def video_candidates(path, max_frames=DEFAULT_CROPS):
    """{frame key: [Crop of the whole frame]} for up to max_frames frames spread evenly over a video."""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise CalibrationError("%s: cannot open the video" % path)
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        width, height = cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)
    finally:
        cap.release()
    if count <= 0 or width <= 0 or height <= 0:
        raise CalibrationError("%s: no frames" % path)
    frames = sorted(set(np.linspace(0, count - 1, min(count, max(1, int(max_frames)))).round().astype(int).tolist()))
    box = [0.0, 0.0, float(width), float(height)]
    return OrderedDict(("%s#%d" % (path, i), [Crop("video", str(path), int(i), list(box), "whole frame")])
                       for i in frames)


def collect_candidates(coco=(), image_dirs=(), videos=(), max_video_frames=DEFAULT_CROPS):
    """[(source name, {image key: [Crop]})] for the given sources. coco: json paths or (json, images_dir)."""
    sources = []
    for item in coco or ():
        json_path, images_dir = (item if isinstance(item, (tuple, list)) else (item, None))
        sources.append((str(json_path), coco_candidates(json_path, images_dir)))
    for folder in image_dirs or ():
        sources.append((str(folder), folder_candidates(folder)))
    for video in videos or ():
        sources.append((str(video), video_candidates(video, max_video_frames)))
    if not sources:
        raise CalibrationError("no calibration source: give a COCO json (--calib-coco), an image folder "
                               "(--calib-images) or a video (--calib-video), or a list file (--calib-list)")
    return sources


def _quotas(sizes, n):
    """Split n over sources of the given sizes: equal shares, what a source lacks goes to the others."""
    quotas = [0] * len(sizes)
    left = min(n, sum(sizes))
    open_ = [i for i, s in enumerate(sizes) if s > 0]
    while left > 0 and open_:
        share = max(1, left // len(open_))
        for i in list(open_):
            take = min(share, sizes[i] - quotas[i], left)
            quotas[i] += take
            left -= take
            if quotas[i] >= sizes[i]:
                open_.remove(i)
            if left == 0:
                break
    return quotas


def _round_robin(groups, k, rng):
    """k crops from {image: [Crop]}: images shuffled, one person per image per round."""
    keys = list(groups)
    rng.shuffle(keys)
    pools = {key: rng.sample(groups[key], len(groups[key])) for key in keys}
    out = []
    while len(out) < k:
        progressed = False
        for key in keys:
            if pools[key] and len(out) < k:
                out.append(pools[key].pop())
                progressed = True
        if not progressed:
            break
    return out


def select(sources, n=DEFAULT_CROPS, seed=0):
    """n crops stratified over sources, then over images (see the module doc). Fewer, with a warning, when
    the sources hold fewer than n."""
    rng = random.Random(seed)
    sizes = [sum(len(v) for v in groups.values()) for _, groups in sources]
    total = sum(sizes)
    if total < n:
        log.warning("calibration: only %d crops available (%d asked for): INT8 ranges from few crops are "
                    "less reliable; add sources", total, n)
    chosen = []
    for (_, groups), k in zip(sources, _quotas(sizes, n)):
        chosen.extend(_round_robin(groups, k, rng))
    return chosen


def default_list_path(model_path, folder="calibration"):
    return Path(folder) / ("%s.calib.tsv" % Path(str(model_path)).name.split(".")[0])


def write_list(crops, path, comment=None):
    """Write the list file; paths relative to its folder where possible. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    base = path.parent.resolve()
    lines = [LIST_HEADER, "# written %s by edge-pose; %d crops" % (time.strftime("%Y-%m-%d %H:%M:%S"), len(crops))]
    if comment:
        lines.append("# " + " ".join(str(comment).split()))
    for c in crops:
        try:
            rel = os.path.relpath(str(Path(c.path).resolve()), str(base))
        except ValueError:  # another drive (Windows)
            rel = str(Path(c.path).resolve())
        box = c.box if c.box is not None else [-1, -1, -1, -1]
        lines.append("\t".join([c.kind, rel, str(int(c.frame))] + ["%.2f" % float(v) for v in box]
                               + [str(c.note or "").replace("\t", " ")]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def load_list(path):
    """[Crop] from a list file (relative paths resolved against the list file's folder)."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationError("calibration list %s not found" % path)
    crops = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) < 7 or parts[0] not in ("image", "video"):
            raise CalibrationError("%s:%d: expected kind, path, frame, x, y, w, h" % (path, lineno))
        file = Path(parts[1])
        file = file if file.is_absolute() else (path.parent / file)
        box = [float(v) for v in parts[3:7]]
        crops.append(Crop(parts[0], str(os.path.normpath(str(file))), int(parts[2]),
                          None if box[2] <= 0 else box, parts[7] if len(parts) > 7 else ""))
    if not crops:
        raise CalibrationError("calibration list %s has no crops" % path)
    return crops


def _read_video_frames(path, wanted):
    """{frame index: BGR image} for the wanted frame indices of one video (read in order)."""
    wanted = sorted(set(wanted))
    frames = {}
    cap = cv2.VideoCapture(str(path))
    try:
        index = 0
        for target in wanted:
            if target < index:
                continue
            if target - index > 30:  # a seek is cheaper than decoding a long gap
                cap.set(cv2.CAP_PROP_POS_FRAMES, target)
                index = target
            while index <= target:
                ok, frame = cap.read()
                if not ok:
                    break
                if index == target:
                    frames[target] = frame
                index += 1
    finally:
        cap.release()
    return frames


def make_crops(crops, input_size=INPUT_SIZE):
    """float32 (N, 3, 256, 192) model inputs for the crops, through preprocess.make_batch (as at inference).

    Crops whose image or frame cannot be read are left out with a warning.
    """
    out = [None] * len(crops)
    by_image = OrderedDict()
    by_video = OrderedDict()
    for i, c in enumerate(crops):
        if c.kind == "video":
            by_video.setdefault(c.path, []).append(i)
        else:
            by_image.setdefault(c.path, []).append(i)
    missing = []
    for path, idx in by_image.items():
        frame = cv2.imread(path, cv2.IMREAD_COLOR)
        if frame is None:
            missing.append(path)
            continue
        boxes = [crops[i].box if crops[i].box is not None else [0, 0, frame.shape[1], frame.shape[0]] for i in idx]
        x, _ = make_batch(frame, boxes, input_size)
        for j, i in enumerate(idx):
            out[i] = x[j]
    for path, idx in by_video.items():
        frames = _read_video_frames(path, [crops[i].frame for i in idx])
        for i in idx:
            frame = frames.get(crops[i].frame)
            if frame is None:
                missing.append("%s#%d" % (path, crops[i].frame))
                continue
            box = crops[i].box if crops[i].box is not None else [0, 0, frame.shape[1], frame.shape[0]]
            out[i] = make_batch(frame, [box], input_size)[0][0]
    if missing:
        log.warning("calibration: %d crops left out (unreadable): %s%s", len(missing), ", ".join(missing[:3]),
                    " ..." if len(missing) > 3 else "")
    kept = [x for x in out if x is not None]
    if not kept:
        raise CalibrationError("no calibration crop could be read")
    return np.ascontiguousarray(np.stack(kept).astype(np.float32, copy=False))


def add_arguments(parser):
    """The calibration-set options shared by `edge-pose calibrate` and `edge-pose build-engine`."""
    g = parser.add_argument_group("calibration set (person crops made as at inference)")
    g.add_argument("--calib-coco", action="append", default=[], metavar="JSON[:IMAGES]",
                   help="COCO keypoints json: one crop per GT person box (images in IMAGES, default: "
                        "images/ next to the json); repeatable")
    g.add_argument("--calib-images", action="append", default=[], metavar="DIR",
                   help="image folder: the whole image is the person box; repeatable")
    g.add_argument("--calib-video", action="append", default=[], metavar="FILE",
                   help="video: frames sampled evenly, the whole frame is the box; repeatable")
    g.add_argument("--calib-list", default=None, metavar="TSV",
                   help="reuse the crops of a list file written by an earlier run (instead of the sources)")
    g.add_argument("--calib-crops", type=int, default=DEFAULT_CROPS,
                   help="number of crops (default %(default)s; fewer with a warning when the sources lack them)")
    g.add_argument("--calib-seed", type=int, default=0, help="seed of the stratified selection")
    g.add_argument("--calib-list-out", default=None, metavar="TSV",
                   help="where to record the crops used (default calibration/<model>.calib.tsv)")


def _coco_arg(text):
    # JSON[:IMAGES]; a Windows drive letter ("C:\\...") is not a separator
    head, sep, tail = text.rpartition(":")
    if sep and head and len(head) > 1 and not head.endswith(("\\", "/")) and head.lower().endswith(".json"):
        return head, tail
    return text, None


def from_args(args, model_path):
    """(crops [Crop], inputs float32 (N,3,256,192), list file path) from the parsed calibration options."""
    if args.calib_list:
        crops = load_list(args.calib_list)
        list_path = Path(args.calib_list)
        log.info("calibration: %d crops from %s", len(crops), list_path)
    else:
        sources = collect_candidates(coco=[_coco_arg(c) for c in args.calib_coco], image_dirs=args.calib_images,
                                     videos=args.calib_video, max_video_frames=max(1, args.calib_crops))
        crops = select(sources, args.calib_crops, args.calib_seed)
        list_path = Path(args.calib_list_out) if args.calib_list_out else default_list_path(model_path)
        write_list(crops, list_path, comment="sources: " + ", ".join(name for name, _ in sources))
        log.info("calibration: %d crops from %d sources, recorded in %s", len(crops), len(sources), list_path)
    inputs = make_crops(crops)
    return crops, inputs, list_path
