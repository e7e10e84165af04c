"""`edge-pose calibrate`: calibration set -> QDQ INT8 ONNX, behind an accuracy gate.

    edge-pose calibrate --model resnet18 --calib-coco ../shared/data/coco_train/person_keypoints.json \
        --eval-coco ../shared/data/coco_val_dev/person_keypoints.json --method auto

The FP32 model and each INT8 candidate are scored with `edge_pose.train.evaluate` (OKS AP, GT boxes, the
same code as `edge-pose eval`) on ONNX Runtime CPU. The best candidate is written only when its AP is within
--max-ap-drop of the FP32 AP (or with --force); otherwise the command exits 1 naming both APs and writes
nothing but the report.
"""
from __future__ import annotations

import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

from edge_pose.quant import calibset, qdq

log = logging.getLogger(__name__)

EXIT_REFUSED = 1


def add_arguments(parser):
    parser.add_argument("--model", required=True, metavar="M", help="FP32 ONNX model: shipped name or path")
    parser.add_argument("--out", default=None, metavar="F",
                        help="INT8 ONNX to write (default: next to the model, <stem>.int8.onnx; "
                             "<stem>.int8-cpu.onnx for --target cpu)")
    parser.add_argument("--method", default=None, choices=qdq.METHODS + ("auto",),
                        help="calibration method; auto tries each and keeps the best AP (default: auto with "
                             "--eval-coco, else minmax; entropy alone cost both shipped models most of their AP)")
    parser.add_argument("--target", default="tensorrt", choices=qdq.TARGETS,
                        help="tensorrt: symmetric int8 activations, accepted by TensorRT (also runs on ONNX "
                             "Runtime CPU); cpu: uint8 asymmetric activations, fast on ONNX Runtime CPU, "
                             "refused by TensorRT (default %(default)s)")
    parser.add_argument("--reduce-range", default="auto", choices=qdq.REDUCE_RANGE,
                        help="7-bit weights: ONNX Runtime's int8 kernels saturate on x86 CPUs without VNNI; auto: "
                             "on for --target cpu when this CPU lacks VNNI, else off (default %(default)s)")
    parser.add_argument("--exclude-op-types", default=None, metavar="A,B",
                        help="op types left in float (DepthwiseConv = depthwise convolutions); 'none' for none "
                             "(default: tensorrt: none; cpu: %s)" % ",".join(qdq.DEFAULT_EXCLUDE["cpu"]))
    parser.add_argument("--exclude-nodes", default="", metavar="N1,N2", help="node names left in float")
    parser.add_argument("--percentile", type=float, default=qdq.DEFAULT_PERCENTILE,
                        help="percentile method: the percentile of |activation| kept (default %(default)s)")
    parser.add_argument("--num-bins", type=int, default=qdq.ENTROPY_BINS,
                        help="histogram bins of the entropy / percentile calibrators (default %(default)s)")
    gate = parser.add_argument_group("accuracy gate")
    gate.add_argument("--eval-coco", default=None, metavar="JSON",
                      help="COCO keypoints json to score FP32 and INT8 on (GT boxes); required unless --force")
    gate.add_argument("--eval-images", default=None, metavar="DIR",
                      help="images of --eval-coco (default: images/ next to the json)")
    gate.add_argument("--max-ap-drop", type=float, default=0.01,
                      help="refuse the INT8 model if its AP is lower than FP32's by more (default %(default)s)")
    gate.add_argument("--force", action="store_true", help="write the INT8 model even if the gate refuses it")
    gate.add_argument("--flip", action="store_true", help="flip test in the evaluation")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime CPU threads (default: all cores)")
    parser.add_argument("--report", default=None, metavar="JSON",
                        help="where to write the gate report (default calibration/<out name>.report.json)")
    calibset.add_arguments(parser)


def default_out(model_path, target):
    model_path = Path(model_path)
    stem = model_path.name[:-len(".onnx")] if model_path.name.endswith(".onnx") else model_path.stem
    return model_path.with_name("%s.%s.onnx" % (stem, "int8" if target == "tensorrt" else "int8-cpu"))


def parse_op_types(text, target):
    if text is None:
        return None  # the target's defaults
    if text.strip().lower() in ("", "none"):
        return []
    return [t.strip() for t in text.split(",") if t.strip()]


def evaluate_model(path, coco_json, images_dir, flip=False, threads=None):
    """OKS AP metrics of an ONNX model on ONNX Runtime CPU (what `edge-pose eval` computes)."""
    from edge_pose.runtime.ort_backend import OnnxRuntimeBackend
    from edge_pose.train.evaluate import evaluate

    with OnnxRuntimeBackend(path, threads=threads) as backend:
        return evaluate(backend, coco_json, images_dir, flip=flip, progress=False)


def decide(fp32_ap, int8_aps, max_ap_drop, force=False):
    """The gate: (chosen method, drop, passed, write) from the FP32 AP and {method: INT8 AP}.

    The chosen method has the best INT8 AP (ties: the first in METHODS order: minmax, percentile, entropy).
    passed: drop <= max_ap_drop (with a 1e-9 tolerance); write: passed or force.
    """
    if not int8_aps:
        raise ValueError("no INT8 candidate")
    order = {m: i for i, m in enumerate(qdq.METHODS)}
    chosen = max(int8_aps, key=lambda m: (int8_aps[m], -order.get(m, 99)))
    drop = float(fp32_ap) - float(int8_aps[chosen])
    passed = drop <= float(max_ap_drop) + 1e-9
    return chosen, drop, passed, bool(passed or force)


def _metrics(m):
    keys = ("AP", "AP50", "AP75", "APm", "APl", "AR", "n_persons")
    return {k: (round(m[k], 4) if isinstance(m.get(k), float) else m.get(k)) for k in keys if k in m}


def run(model, out=None, method=None, target="tensorrt", exclude_op_types=None, exclude_nodes=(),
        percentile=qdq.DEFAULT_PERCENTILE, num_bins=qdq.ENTROPY_BINS, inputs=None, list_path=None,
        eval_coco=None, eval_images=None, max_ap_drop=0.01, force=False, flip=False, threads=None,
        report_path=None, evaluate_fn=None, reduce_range="auto"):
    """Calibrate, gate, write. Returns the report dict (report["written"] is the path, or None if refused).
    method None: "auto" when there is an eval set to choose by, else "minmax"."""
    from edge_pose import runtime

    model_path = runtime.resolve(model)
    if model_path.suffix.lower() != ".onnx":
        raise SystemExit("calibrate needs an FP32 .onnx model, not %s" % model_path)
    if qdq.is_qdq(model_path):
        raise SystemExit("%s is already quantized (it holds Q/DQ nodes): give the FP32 model" % model_path)
    out = Path(out) if out else default_out(model_path, target)
    report_path = Path(report_path) if report_path else Path("calibration") / (out.name + ".report.json")
    if method is None:
        method = "auto" if eval_coco is not None else "minmax"
    methods = list(qdq.METHODS) if method == "auto" else [method]
    evaluate_fn = evaluate_fn or evaluate_model
    if eval_coco is None and not force:
        raise SystemExit("the accuracy gate needs --eval-coco (a COCO keypoints json to compare FP32 and INT8 "
                         "on); --force writes the INT8 model without it")
    if eval_coco is not None and eval_images is None:
        eval_images = calibset.coco_images_dir(eval_coco)
    if method == "auto" and eval_coco is None:
        raise SystemExit("--method auto chooses by AP: it needs --eval-coco")

    report = {"model": str(model_path), "out": str(out), "target": target, "methods": methods,
              "max_ap_drop": max_ap_drop, "force": bool(force), "calibration_list": str(list_path) if list_path
              else None, "n_crops": int(len(inputs)), "eval_coco": str(eval_coco) if eval_coco else None,
              "flip": bool(flip), "int8": {}, "written": None, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    fp32 = None
    if eval_coco is not None:
        fp32 = evaluate_fn(model_path, eval_coco, eval_images, flip=flip, threads=threads)
        report["fp32"] = _metrics(fp32)
        log.info("FP32 AP %.4f (%s)", fp32["AP"], model_path.name)
    with tempfile.TemporaryDirectory(prefix="edge_pose_int8_") as tmp:
        candidates = {}
        for m in methods:
            cand = Path(tmp) / ("%s.%s.onnx" % (out.stem, m))
            info = qdq.quantize(model_path, cand, inputs, method=m, target=target, exclude_op_types=exclude_op_types,
                                exclude_nodes=exclude_nodes, percentile=percentile, num_bins=num_bins,
                                threads=threads, provenance={"calibration_list": report["calibration_list"]},
                                reduce_range=reduce_range)
            entry = {"quantization": info}
            if eval_coco is not None:
                metrics = evaluate_fn(cand, eval_coco, eval_images, flip=flip, threads=threads)
                entry.update(_metrics(metrics))
                entry["drop"] = round(fp32["AP"] - metrics["AP"], 4)
                log.info("INT8 %-10s AP %.4f (drop %+.4f)", m, metrics["AP"], fp32["AP"] - metrics["AP"])
            report["int8"][m] = entry
            candidates[m] = cand
        if eval_coco is not None:
            chosen, drop, passed, write = decide(fp32["AP"], {m: report["int8"][m]["AP"] for m in methods},
                                                 max_ap_drop, force)
        else:
            chosen, drop, passed, write = methods[0], None, None, True
        report.update(chosen=chosen, drop=None if drop is None else round(drop, 4), passed=passed)
        if write:
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp_out = out.with_name(out.name + ".tmp")
            shutil.copyfile(str(candidates[chosen]), str(tmp_out))
            tmp_out.replace(out)
            report["written"] = str(out)
    report_path.parent.mkdir(parents=True, exist_ok=True)
    with open(report_path, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2, default=str)
    report["report"] = str(report_path)
    return report


def format_report(report):
    lines = []
    if "fp32" in report:
        lines.append("FP32            AP %.4f" % report["fp32"]["AP"])
    for m, entry in report["int8"].items():
        if "AP" in entry:
            lines.append("INT8 %-10s AP %.4f  drop %+.4f%s" % (m, entry["AP"], entry["drop"],
                                                                "  <- best" if m == report.get("chosen") and
                                                                len(report["int8"]) > 1 else ""))
    return "\n".join(lines)


def main(args):
    if not logging.getLogger().handlers:  # progress of the long steps on stderr
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.max_ap_drop < 0:
        raise SystemExit("--max-ap-drop must be >= 0")
    from edge_pose import runtime

    model_path = runtime.resolve(args.model)
    crops, inputs, list_path = calibset.from_args(args, model_path)
    if len(crops) < calibset.DEFAULT_CROPS:
        print("warning: %d calibration crops (at least %d recommended)" % (len(inputs), calibset.DEFAULT_CROPS),
              file=sys.stderr)
    report = run(args.model, out=args.out, method=args.method, target=args.target, reduce_range=args.reduce_range,
                 exclude_op_types=parse_op_types(args.exclude_op_types, args.target),
                 exclude_nodes=[n for n in args.exclude_nodes.split(",") if n], percentile=args.percentile,
                 num_bins=args.num_bins, inputs=inputs, list_path=list_path, eval_coco=args.eval_coco,
                 eval_images=args.eval_images, max_ap_drop=args.max_ap_drop, force=args.force, flip=args.flip,
                 threads=args.threads, report_path=args.report)
    text = format_report(report)
    if text:
        print(text)
    if report["written"] is None:
        best = report["int8"][report["chosen"]]
        print("refused: INT8 AP %.4f (%s) is %.4f below FP32 AP %.4f, more than --max-ap-drop %.4f; nothing "
              "written (report: %s). Try --method auto, more or better calibration crops, --exclude-op-types, "
              "or --force to write it anyway." % (best["AP"], report["chosen"], report["drop"], report["fp32"]["AP"],
                                                   report["max_ap_drop"], report["report"]), file=sys.stderr)
        return EXIT_REFUSED
    if report["passed"] is False:
        print("warning: --force: wrote %s although INT8 AP is %.4f below FP32 (limit %.4f)"
              % (report["written"], report["drop"], report["max_ap_drop"]), file=sys.stderr)
    elif report["passed"] is None:
        print("warning: no accuracy gate (--force without --eval-coco)", file=sys.stderr)
    print("wrote %s (%s, target %s; calibration list %s; report %s)" % (
        report["written"], report["chosen"], report["target"], report["calibration_list"], report["report"]))
    return 0
