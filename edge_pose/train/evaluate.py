"""COCO OKS keypoint evaluation through pycocotools, with ground-truth person boxes or the full pipeline.

Every non-crowd annotation with keypoints (num_keypoints > 0) and a usable bbox is cropped with
`preprocess` from its GT box, crops are batched across images, run through the model (optionally with a
flip test), decoded, written as COCO keypoint results and scored with COCOeval(iouType="keypoints").
Only the annotations that were predicted for are scored: annotations with keypoints but no usable box are
left out of the ground truth (and counted in `n_skipped`), so partially annotated images are fine.

Result score of a person (`person_score`): "mean", the default, is what the product reports, PoseEstimator's
`score`: the mean of its 17 keypoint scores; "confident-mean" is Simple Baselines' rule, the mean of the
keypoint scores above KPT_SCORE_THR (0 when none is above it). A detector's box score is not used: the product
reports none in a person's score, and HOG's lowered AP (mobilenetv3, --boxes hog: 0.045 -> 0.032). COCOeval
ranks every detection of the split by this score when it accumulates precision and recall, so it matters for
AP even with GT boxes (`scripts/score_ranking.py`).

Full pipeline (`evaluate_person_source`, `--boxes` other than gt): person boxes come from a person source
(full-frame, windows, keypoints, detector) or straight from a detector (hog, a .onnx), poses are estimated
in them on the whole image, and every person of the image counts. Only images whose annotations are
complete (`images[].annotations_complete`; all images when no image carries the flag) are scored, since
an unlabelled person found would count as a false positive.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import time
from pathlib import Path

import cv2
import numpy as np

from edge_pose.decode import decode, flip_heatmaps
from edge_pose.preprocess import INPUT_SIZE, make_batch

KPT_SCORE_THR = 0.2
PERSON_SCORES = ("mean", "confident-mean")
STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


def load_coco(coco_json):
    """A COCO keypoints json path (or an already loaded dict) -> dict."""
    if isinstance(coco_json, dict):
        return coco_json
    with open(coco_json, encoding="utf-8") as f:
        return json.load(f)


def _usable(ann):
    box = ann.get("bbox")
    return box is not None and len(box) >= 4 and box[2] > 0 and box[3] > 0


def person_groups(dataset, img_ids=None):
    """[(image dict, [annotations to predict])] in evaluation order (images by id, annotations in file order).

    Annotations to predict: not crowd, num_keypoints > 0, with a positive-size bbox. Images without any
    such annotation are left out.
    """
    wanted = None if img_ids is None else set(int(i) for i in img_ids)
    by_image = {}
    for ann in dataset.get("annotations", []):
        if ann.get("iscrowd", 0) or ann.get("num_keypoints", 0) <= 0 or not _usable(ann):
            continue
        if wanted is None or ann["image_id"] in wanted:
            by_image.setdefault(ann["image_id"], []).append(ann)
    images = sorted((im for im in dataset.get("images", []) if im["id"] in by_image), key=lambda im: im["id"])
    return [(im, by_image[im["id"]]) for im in images]


def iter_batches(groups, images_dir, batch=8, input_size=INPUT_SIZE):
    """Yield (inputs (B,3,H,W) float32, mats (B,2,3), annotations) with B = batch (last one smaller).

    Images are read with cv2 (BGR) one at a time; crops of consecutive images share batches.
    """
    xs, mats, anns = [], [], []
    for image, image_anns in groups:
        path = Path(images_dir) / image["file_name"]
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if frame is None:
            raise FileNotFoundError("cannot read image %s (image id %s)" % (path, image["id"]))
        x, m = make_batch(frame, [a["bbox"] for a in image_anns], input_size)
        xs.append(x)
        mats.append(m)
        anns.extend(image_anns)
        if len(anns) >= batch:
            x, m = np.concatenate(xs), np.concatenate(mats)
            while len(anns) >= batch:
                yield x[:batch], m[:batch], anns[:batch]
                x, m, anns = x[batch:], m[batch:], anns[batch:]
            xs, mats = [x], [m]
    if anns:
        yield np.concatenate(xs), np.concatenate(mats), anns


def predict_heatmaps(predict_fn, inputs, flip=False):
    """predict_fn on a batch; with flip, averaged with the prediction on the mirrored batch."""
    heatmaps = np.asarray(predict_fn(inputs), dtype=np.float32)
    if flip:
        flipped = np.asarray(predict_fn(np.ascontiguousarray(inputs[..., ::-1])), dtype=np.float32)
        heatmaps = 0.5 * (heatmaps + flip_heatmaps(flipped))
    return heatmaps


def person_scores(scores, rule="mean", thr=KPT_SCORE_THR):
    """(N, 17) keypoint scores -> (N,) person scores by `rule` (PERSON_SCORES; see the module's docstring)."""
    scores = np.asarray(scores, np.float64)
    if rule == "mean":
        return scores.mean(axis=1)
    if rule != "confident-mean":
        raise ValueError("person score %r: choose from %s" % (rule, ", ".join(PERSON_SCORES)))
    above = scores > thr
    return np.where(above.any(axis=1), (scores * above).sum(axis=1) / np.maximum(above.sum(axis=1), 1), 0.0)


def to_results(keypoints, scores, anns, person_score="mean"):
    """Decoded persons -> COCO keypoint result dicts, each scored by the `person_score` rule."""
    person = person_scores(scores, person_score)
    flat = np.concatenate([keypoints, scores[..., None]], axis=2).reshape(len(anns), -1)
    return [{"image_id": int(a["image_id"]), "category_id": int(a.get("category_id", 1)),
             "keypoints": [round(float(v), 3) for v in row], "score": round(float(s), 5)}
            for a, row, s in zip(anns, flat, person)]


def coco_eval(dataset, images, gt_anns, results):
    """COCOeval (keypoints) of `results` against `gt_anns` on `images`, its per-image evaluate() done, quiet;
    accumulate() and summarize() are the caller's."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = COCO()
    gt.dataset = {"images": images, "annotations": gt_anns,
                  "categories": dataset.get("categories", [{"id": 1, "name": "person"}])}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(results), iouType="keypoints")
        ev.params.imgIds = [im["id"] for im in images]
        ev.evaluate()
    return ev


def score_results(dataset, results, groups):
    """COCOeval (keypoints) of `results` against the predicted-for annotations of `groups`; quiet."""
    img_ids = [im["id"] for im, _ in groups]
    if not results:
        return dict((k, 0.0) for k in STAT_NAMES)
    predicted = set(a["id"] for _, anns in groups for a in anns)
    keep_imgs = set(img_ids)
    # ground truth: crowd regions and keypoint-less persons stay (COCOeval ignores them); persons with
    # keypoints that were not predicted for (no usable box) are dropped instead of counting as misses
    gt_anns = [a for a in dataset["annotations"] if a["image_id"] in keep_imgs and (
        a["id"] in predicted or a.get("iscrowd", 0) or a.get("num_keypoints", 0) <= 0)]
    ev = coco_eval(dataset, [im for im, _ in groups], gt_anns, results)
    with contextlib.redirect_stdout(io.StringIO()):
        ev.accumulate()
        ev.summarize()
    return dict((k, float(v)) for k, v in zip(STAT_NAMES, ev.stats))


def evaluate_predict_fn(predict_fn, coco_json, images_dir, flip=False, decoder="dark", batch=8, progress=True,
                        img_ids=None, results_out=None, input_size=INPUT_SIZE, person_score="mean"):
    """OKS AP of any predictor: predict_fn(float32 (B,3,256,192)) -> heatmaps (B,17,64,48).

    Usable from the training loop with an in-memory model. With flip=True predict_fn is called a second
    time per batch on the horizontally mirrored crops. coco_json: path or loaded dict; img_ids restricts
    the images. Returns AP, AP50, AP75, APm, APl, AR (and AR50..ARl), n_persons, n_images, n_skipped,
    seconds, ms_per_person, decoder, flip. APm/APl are -1 when the set has no person of that size.
    input_size (width, height) lets the training loop score a model at the resolution it is training at.
    person_score: how a person's result is scored (PERSON_SCORES).
    """
    from tqdm import tqdm

    dataset = load_coco(coco_json)
    groups = person_groups(dataset, img_ids)
    n_persons = sum(len(anns) for _, anns in groups)
    wanted = None if img_ids is None else set(int(i) for i in img_ids)
    n_skipped = sum(1 for a in dataset.get("annotations", [])
                    if not a.get("iscrowd", 0) and a.get("num_keypoints", 0) > 0 and not _usable(a)
                    and (wanted is None or a["image_id"] in wanted))
    results = []
    start = time.perf_counter()
    with tqdm(total=n_persons, desc="eval", unit="person", disable=not progress, leave=False) as bar:
        for inputs, mats, anns in iter_batches(groups, images_dir, max(1, int(batch)), input_size):
            heatmaps = predict_heatmaps(predict_fn, inputs, flip)
            keypoints, scores = decode(heatmaps, mats, method=decoder, input_size=input_size)
            results.extend(to_results(keypoints, scores, anns, person_score))
            bar.update(len(anns))
    seconds = time.perf_counter() - start
    if results_out:
        Path(results_out).parent.mkdir(parents=True, exist_ok=True)
        with open(results_out, "w", encoding="utf-8") as f:
            json.dump(results, f)
    metrics = score_results(dataset, results, groups)
    metrics.update(n_persons=n_persons, n_images=len(groups), n_skipped=n_skipped, seconds=round(seconds, 3),
                   ms_per_person=round(1000.0 * seconds / max(n_persons, 1), 2), decoder=decoder, flip=bool(flip),
                   person_score=person_score)
    return metrics


def evaluate(backend, coco_json, images_dir, flip=False, decoder="dark", batch=8, progress=True, img_ids=None,
             results_out=None, person_score="mean"):
    """OKS AP of a runtime backend (anything with `infer(batch) -> heatmaps`); see evaluate_predict_fn."""
    return evaluate_predict_fn(backend.infer, coco_json, images_dir, flip=flip, decoder=decoder, batch=batch,
                               progress=progress, img_ids=img_ids, results_out=results_out,
                               person_score=person_score)


SOURCE_MODES = ("full-frame", "windows", "keypoints", "detector")
BOX_MODES = ("gt",) + SOURCE_MODES + ("hog",)


def check_boxes(mode):
    """`--boxes` value: gt, a person source mode, hog, or a path to a YOLO-layout .onnx detector."""
    if mode in BOX_MODES or str(mode).lower().endswith(".onnx"):
        return mode
    raise argparse.ArgumentTypeError("%r: choose from %s, or a YOLO-layout .onnx detector"
                                     % (mode, ", ".join(BOX_MODES)))


def complete_image_ids(dataset, img_ids=None):
    """Ids of the images whose annotations are complete (all images when no image has the flag)."""
    images = dataset.get("images", [])
    flagged = any("annotations_complete" in im for im in images)
    ids = [im["id"] for im in images if not flagged or im.get("annotations_complete")]
    if img_ids is not None:
        wanted = set(int(i) for i in img_ids)
        ids = [i for i in ids if i in wanted]
    return sorted(ids)


def complete_groups(dataset, img_ids=None):
    """[(image dict, all its annotations)] of the complete images in id order: what the full pipeline is scored
    on (every annotation stays: COCOeval ignores crowds and keypoint-less persons, and counts misses)."""
    by_id = dict((im["id"], im) for im in dataset.get("images", []))
    anns_of = {}
    for ann in dataset.get("annotations", []):
        anns_of.setdefault(ann["image_id"], []).append(ann)
    return [(by_id[i], anns_of.get(i, [])) for i in complete_image_ids(dataset, img_ids)]


def make_box_source(mode, detector="hog", detector_options=None):
    """What finds the people of an image for `mode`: a callable (frame, pose_fn) -> person dicts."""
    from edge_pose.detectors import make_detector
    from edge_pose.persons import make_person_source

    if mode in SOURCE_MODES:
        options = {"detector": detector, "detector_options": detector_options} if mode == "detector" else {}
        source = make_person_source(mode, **options)

        def run(frame, pose_fn):
            source.reset()
            return source(frame, pose_fn)

        run.detector_ms = lambda: getattr(getattr(source, "acquire", None), "ms", 0.0)
        return run
    det = make_detector(mode, **dict(detector_options or {}))

    def detect(frame, pose_fn):
        boxes, _ = det(frame)  # its box scores are not used (module docstring)
        return pose_fn(frame, boxes) if len(boxes) else []

    detect.detector_ms = lambda: det.ms
    return detect


def evaluate_person_source(estimator, coco_json, images_dir, boxes="windows", img_ids=None, progress=True,
                           results_out=None, detector="hog", detector_options=None, person_score="mean"):
    """Full-pipeline OKS AP: people found by `boxes` (a person source mode, hog, or a .onnx detector) and
    estimated by `estimator` (a PoseEstimator: estimator(frame, boxes) -> person dicts) on the complete
    images of the set. detector: the detector of the "detector" mode. Returns the metrics of `evaluate`
    plus n_detections, ms_per_image, detector_ms (median per image, 0 without one) and boxes."""
    from tqdm import tqdm

    dataset = load_coco(coco_json)
    groups = complete_groups(dataset, img_ids)
    images = [im for im, _ in groups]
    find = make_box_source(boxes, detector, detector_options)
    results, det_ms = [], []
    start = time.perf_counter()
    for image in tqdm(images, desc="eval", unit="image", disable=not progress, leave=False):
        path = Path(images_dir) / image["file_name"]
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if frame is None:
            raise FileNotFoundError("cannot read image %s (image id %s)" % (path, image["id"]))
        people = find(frame, estimator)
        det_ms.append(find.detector_ms())
        if not people:
            continue
        kp = np.stack([np.asarray(p["keypoints"], dtype=np.float64) for p in people])
        anns = [{"image_id": image["id"]}] * len(people)
        results.extend(to_results(kp[:, :, :2], kp[:, :, 2], anns, person_score))
    seconds = time.perf_counter() - start
    if results_out:
        Path(results_out).parent.mkdir(parents=True, exist_ok=True)
        with open(results_out, "w", encoding="utf-8") as f:
            json.dump(results, f)
    n_persons = sum(1 for _, anns in groups for a in anns if not a.get("iscrowd", 0) and a.get("num_keypoints", 0) > 0)
    metrics = score_results(dataset, results, groups)
    metrics.update(n_persons=n_persons, n_images=len(images), n_skipped=0, n_detections=len(results),
                   seconds=round(seconds, 3), ms_per_image=round(1000.0 * seconds / max(len(images), 1), 1),
                   ms_per_person=round(1000.0 * seconds / max(n_persons, 1), 2),
                   detector_ms=round(float(np.median(det_ms)) if det_ms else 0.0, 1), boxes=str(boxes),
                   decoder=getattr(estimator, "decoder", "?"), flip=False, person_score=person_score)
    return metrics


def sample_image_ids(dataset, n, seed=0, img_ids=None):
    """Ids of n images (all when there are fewer) drawn at random with `seed` from those holding a person to
    predict (of img_ids when given), in id order."""
    ids = [im["id"] for im, _ in person_groups(dataset, img_ids)]
    return sorted(random.Random(seed).sample(ids, min(int(n), len(ids))))


def add_arguments(parser):
    parser.add_argument("--coco", required=True, metavar="JSON", help="COCO person keypoints annotations")
    parser.add_argument("--images", required=True, metavar="DIR", help="folder of the annotation file's images")
    parser.add_argument("--model", required=True, metavar="M",
                        help="shipped model name (resnet18, mobilenetv3) or a .onnx / .pt path")
    parser.add_argument("--boxes", default="gt", type=check_boxes, metavar="B",
                        help="person boxes: gt = ground-truth boxes (default); the full pipeline on the complete "
                             "images: full-frame, windows, keypoints (window scan + confirmation, as a first "
                             "live frame), detector (see --detector), hog or a .onnx = every detection")
    parser.add_argument("--detector", default="hog", metavar="D",
                        help="the detector of --boxes detector: hog or a YOLO-layout .onnx (default hog)")
    parser.add_argument("--complete", action="store_true",
                        help="with --boxes gt: score only the images whose annotations are complete (the images "
                             "the other --boxes score: a ceiling for them)")
    parser.add_argument("--sample", type=int, default=None, metavar="N",
                        help="with --boxes gt: score N of the set's images drawn at random (--seed), for a quick look "
                             "at a large set such as a training set")
    parser.add_argument("--seed", type=int, default=0, help="the draw of --sample (default 0)")
    parser.add_argument("--flip", action="store_true", help="flip test: average with the mirrored crop")
    parser.add_argument("--decoder", default="dark", choices=("dark", "argmax"), help="heatmap decoder")
    parser.add_argument("--person-score", default="mean", choices=PERSON_SCORES,
                        help="a result's score, by which COCOeval ranks them: mean = the mean of the 17 keypoint "
                             "scores, as the estimator reports it (default); confident-mean = Simple Baselines' "
                             "mean of those above %.1f" % KPT_SCORE_THR)
    parser.add_argument("--backend", default="auto", choices=("auto", "onnxruntime", "torch"))
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--batch", type=int, default=8, help="crops per inference call")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for inference")
    parser.add_argument("--json-out", default=None, metavar="F", help="write metrics and options as JSON here")
    parser.add_argument("--results-out", default=None, metavar="F",
                        help="also write the COCO keypoint results (detections) JSON here")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def format_table(metrics):
    names = ("AP", "AP50", "AP75", "APm", "APl", "AR")
    head = " ".join("%7s" % n for n in names)
    row = " ".join("%7.3f" % metrics[n] for n in names)
    return "%s\n%s\n(%d persons on %d images, %.1f ms/person)" % (
        head, row, metrics["n_persons"], metrics["n_images"], metrics["ms_per_person"])


def main(args):
    from edge_pose import runtime

    if args.batch < 1:
        raise SystemExit("--batch must be at least 1")
    sample = getattr(args, "sample", None)
    if sample is not None and sample < 1:
        raise SystemExit("--sample must be at least 1")
    if args.boxes != "gt":
        if sample is not None:
            raise SystemExit("--sample works with --boxes gt only")
        return main_pipeline(args)
    with runtime.open(args.model, backend=args.backend, device=args.device, threads=args.threads) as backend:
        dataset = load_coco(args.coco)
        img_ids = complete_image_ids(dataset) if getattr(args, "complete", False) else None
        if sample is not None:
            img_ids = sample_image_ids(dataset, sample, getattr(args, "seed", 0), img_ids)
        metrics = evaluate(backend, dataset, args.images, flip=args.flip, decoder=args.decoder, batch=args.batch,
                           progress=not args.quiet, img_ids=img_ids, results_out=args.results_out,
                           person_score=args.person_score)
        backend_desc = repr(backend)
    print("model %s  (%s, decoder %s%s)" % (args.model, backend_desc, args.decoder, ", flip" if args.flip else ""))
    print(format_table(metrics))
    if args.json_out:
        out = {"metrics": metrics, "model": str(args.model), "model_path": str(runtime.resolve(args.model)),
               "backend": backend_desc,
               "options": {"coco": str(args.coco), "images": str(args.images), "boxes": args.boxes,
                           "complete": bool(getattr(args, "complete", False)), "sample": sample,
                           "seed": getattr(args, "seed", 0) if sample is not None else None,
                           "flip": bool(args.flip), "decoder": args.decoder, "person_score": args.person_score,
                           "backend": args.backend,
                           "device": args.device, "batch": args.batch, "threads": args.threads}}
        write_json(args.json_out, out)
    return 0


def write_json(path, out):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=2)
    print("wrote %s" % path)


def main_pipeline(args):
    """`--boxes` other than gt: the full pipeline on the complete images."""
    from edge_pose.estimator import PoseEstimator

    if args.flip:
        raise SystemExit("--flip works with --boxes gt only")
    if "hog" in (args.boxes, args.detector if args.boxes == "detector" else None):
        from edge_pose.detectors import hog_descriptor

        try:
            hog_descriptor()
        except RuntimeError as exc:
            raise SystemExit(str(exc)) from None
    with PoseEstimator(args.model, backend=args.backend, device=args.device, threads=args.threads,
                       decoder=args.decoder, max_batch=args.batch) as estimator:
        metrics = evaluate_person_source(estimator, args.coco, args.images, boxes=args.boxes,
                                         progress=not args.quiet, results_out=args.results_out,
                                         detector=args.detector, detector_options={"threads": args.threads}
                                         if str(args.detector).endswith(".onnx") else None,
                                         person_score=args.person_score)
        desc = estimator.describe()
    print("model %s  (%s, decoder %s), boxes %s" % (args.model, desc, args.decoder,
                                                   args.boxes + (" (%s)" % args.detector if args.boxes == "detector"
                                                                 else "")))
    print(format_table(metrics))
    print("(%d detections; %.0f ms/image, detector %.0f ms)" % (metrics["n_detections"], metrics["ms_per_image"],
                                                               metrics["detector_ms"]))
    if args.json_out:
        out = {"metrics": metrics, "model": str(args.model), "backend": desc,
               "options": {"coco": str(args.coco), "images": str(args.images), "boxes": args.boxes,
                           "detector": args.detector, "decoder": args.decoder, "person_score": args.person_score,
                           "backend": args.backend,
                           "device": args.device, "batch": args.batch, "threads": args.threads}}
        write_json(args.json_out, out)
    return 0
